"""`rai-assets tenant register` refuses what it cannot use, in one sentence, before touching the ledger.
REQ: GOV-1, ING-1."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rai_assets.cli import main as cli
from rai_assets.domain.signing import KeyPair


@pytest.mark.parametrize(("args", "message"), [
    (["Bad Tenant!", "--public-key", KeyPair.generate().public_key_b64], "tenant"),
    (["barley-farm", "--public-key", KeyPair.generate().public_key_b64, "--spec", "no-such-spec"], "no-such-spec"),
    (["barley-farm", "--public-key", "not base64 at all!"], "public key is not valid base64"),
    (["barley-farm", "--public-key", "AAAA"], "public key must be 32 bytes"),
])
def test_tenant_register_errors_are_one_sentence(args, message, tmp_path, monkeypatch):
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("RAI_LEDGER_URL", "postgresql://nobody@127.0.0.1:1/never-reached")  # must not be used
    out = CliRunner().invoke(cli, ["tenant", "register", *args])
    assert out.exit_code != 0 and message in out.output, out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1


def test_a_refused_database_url_is_one_sentence_without_its_password(tmp_path, monkeypatch):
    """A ledger that cannot be reached: one sentence, exit 1, the URL's password never printed."""
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("RAI_LEDGER_URL", "postgresql://rai_app:s3cret-pw@127.0.0.1:1/ledger?connect_timeout=2")
    out = CliRunner().invoke(cli, ["models", "list", "--tenant", "langan"])
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output and "s3cret-pw" not in out.output
    assert len(out.output.strip().splitlines()) == 1 and out.output.startswith("Error: ")


def test_redact_hides_url_passwords_only():
    from rai_assets.cli import redact

    assert redact("postgresql://u:p@h:5432/db and s3://bucket/key") == "postgresql://u:***@h:5432/db and s3://bucket/key"


def test_library_warnings_stay_off_the_console(tmp_path):
    """A real process without ``XDG_RUNTIME_DIR``: a command that imports pgserver (as every ledger command
    does) makes platformdirs warn; the console gets the command's one sentence only and the warning is kept
    in ``<state>/cli.log`` (issue 10, item 6)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["RAI_STATE_DIR"] = str(tmp_path)
    code = (
        "import sys, click\n"
        "from rai_assets.cli import main\n"
        "@main.command('probe')\n"
        "def probe():\n"
        "    import pgserver  # noqa: F401  (first import inside a command, as the ledger commands do)\n"
        "    raise click.ClickException('probe done')\n"
        "sys.exit(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code, "probe"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert (out.stdout + out.stderr).strip().splitlines() == ["Error: probe done"], out.stderr
    assert "XDG_RUNTIME_DIR" in (tmp_path / "cli.log").read_text(encoding="utf-8")
