"""`rai-assets upload`: a tenant's season file, signed with the tenant's key, lands as one batch that the landing
sensor requests and ingestion accepts; a bad file is refused in one sentence before anything is written.
REQ: ING-1 (contract), ING-3 (signed manifests)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dagster import DagsterInstance

from rai_assets.assets.partitions import partition_key
from rai_assets.cli import main as cli
from rai_assets.demo.ricefarms import tenant_key_pair, to_event
from rai_assets.demo.runner import land_and_register
from rai_assets.loop.landing_sensor import landing_zone_sensor
from rai_assets_tests.helpers import panel_slice
from rai_assets_tests.sensor_ticks import evaluate_sensor


def _flat(event: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif key not in ("tenant_id", "season_id", "schema_version"):
            out[f"{prefix}{key}"] = value
    return out


def _write_csv(path: Path, events: list[dict[str, Any]]) -> Path:
    rows = [_flat(e) for e in events]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_upload_a_new_season_by_hand_then_the_landing_sensor_requests_it(resources, suffix, tmp_path, monkeypatch):
    """ING-3: the CLI signs with the tenant's key from the demo's keys dir; the sensor sees the new season."""
    state = tmp_path  # resources' local object store is <tmp_path>/objects, as the CLI's is <state>/objects
    monkeypatch.setenv("RAI_STATE_DIR", str(state))
    monkeypatch.delenv("RAI_S3_BUCKET", raising=False)
    instance = DagsterInstance.ephemeral()
    panel = panel_slice(["langan"], seasons=3, suffix=suffix)
    tenant = panel["tenant"].iloc[0]
    land_and_register(resources["ledger"], resources["object_store"], instance, panel[panel["season"] != "s03"],
                      state / "demo" / "tenant-keys", bad_uploads=False)
    first = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources)

    new_season = panel[panel["season"] == "s03"]
    rows = _write_csv(tmp_path / "s03.csv", [to_event(r) for _, r in new_season.iterrows()])
    out = CliRunner().invoke(cli, ["upload", "--tenant", tenant, "--season", "s03", "--file", str(rows),
                                   "--name", "by-hand"])
    assert out.exit_code == 0, out.output
    assert f"{len(new_season)} events signed" in out.output

    again = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources, cursor=first.cursor)
    assert [r.partition_key for r in again.run_requests] == [str(partition_key(tenant, "s03"))]

    # the same name with the same rows is an idempotent no-op; different rows under that name are refused
    same = CliRunner().invoke(cli, ["upload", "--tenant", tenant, "--season", "s03", "--file", str(rows),
                                    "--name", "by-hand"])
    assert same.exit_code == 0, same.output
    other = _write_csv(tmp_path / "other.csv", [to_event(r) for _, r in new_season.head(2).iterrows()])
    clash = CliRunner().invoke(cli, ["upload", "--tenant", tenant, "--season", "s03", "--file", str(other),
                                     "--name", "by-hand"])
    assert clash.exit_code == 1 and "pass another --name" in clash.output, clash.output


def test_uploaded_batch_verifies_against_the_tenants_key_and_ingests(resources, suffix, tmp_path, monkeypatch):
    """ING-1, ING-3: a JSONL upload (tenant/season filled in) ingests with no dead letters."""
    from rai_assets.definitions import TENANT_SEASON_JOB, build_definitions
    from rai_assets.demo.runner import materialize_partitions
    from rai_assets.domain.canonical import canonical_json

    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("RAI_S3_BUCKET", raising=False)
    instance = DagsterInstance.ephemeral()
    panel = panel_slice(["langan"], seasons=1, suffix=suffix)
    tenant = panel["tenant"].iloc[0]
    land_and_register(resources["ledger"], resources["object_store"], instance, panel, tmp_path / "keys",
                      bad_uploads=False)
    extra = panel.copy()
    extra["field"] = extra["field"] + "-b"
    lines = []
    for _, r in extra.head(3).iterrows():
        event = to_event(r)
        del event["tenant_id"], event["season_id"]
        lines.append(canonical_json(event).decode())
    rows = tmp_path / "more.jsonl"
    rows.write_text("\n".join(lines) + "\n")
    key = tmp_path / "my.key"
    key.write_text(tenant_key_pair(tmp_path / "keys", tenant).seed_b64)
    out = CliRunner().invoke(cli, ["upload", "--tenant", tenant, "--season", "s01", "--file", str(rows),
                                   "--key-file", str(key)])
    assert out.exit_code == 0, out.output

    job = build_definitions(resources).resolve_job_def(TENANT_SEASON_JOB)
    runs = materialize_partitions(job, instance, [tenant], ["s01"], progress=lambda _: None)
    assert runs[0].success
    with resources["ledger"].connect(tenant) as conn:
        n = conn.execute("SELECT count(*) AS n FROM learning_events WHERE tenant_id = %s", (tenant,)).fetchone()["n"]
        dead = conn.execute("SELECT count(*) AS n FROM dead_letters WHERE tenant_id = %s", (tenant,)).fetchone()["n"]
    assert (n, dead) == (len(panel) + 3, 0)


@pytest.mark.parametrize(("content", "suffix_", "message"), [
    ("field_id,farm.size_ha\nf-1,big\n", ".csv", "line 2, column 'farm.size_ha': 'big' is not a number"),
    ("field_id,farm.acres\nf-1,1\n", ".csv", "column 'farm.acres' is no field of the contract"),
    ("field_id,farm.size_ha\nf-1,0.5\n", ".csv", "line 2: contract learning-event"),
    ('{"tenant_id": "someone-else"}\n', ".jsonl", "tenant_id is 'someone-else'"),
    ("not json\n", ".jsonl", "line 1: not JSON"),
    ("", ".jsonl", "no rows"),
    ("a,b\n", ".txt", "unknown file type '.txt'"),
])
def test_upload_refuses_a_bad_file_in_one_sentence_before_writing(content, suffix_, message, tmp_path, monkeypatch):
    """ING-1: the whole file is refused, naming the line and field; nothing lands."""
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    tenant_key_pair(tmp_path / "demo" / "tenant-keys", "langan")
    rows = tmp_path / f"rows{suffix_}"
    rows.write_text(content)
    out = CliRunner().invoke(cli, ["upload", "--tenant", "langan", "--season", "s07", "--file", str(rows)])
    assert out.exit_code == 1 and message in out.output, out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1
    assert not (tmp_path / "objects").exists()


def test_upload_without_a_key_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("RAI_STATE_DIR", str(tmp_path))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("{}\n")
    out = CliRunner().invoke(cli, ["upload", "--tenant", "langan", "--season", "s07", "--file", str(rows)])
    assert out.exit_code == 1 and "no signing key for tenant 'langan'" in out.output
    assert str(tmp_path / "demo" / "tenant-keys" / "langan.key") in out.output
