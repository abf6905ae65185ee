"""The demo's console shows progress and the summary only; library output goes to a log file.

While :func:`log_to_file` is active, everything written to ``sys.stderr`` — Dagster's JSON log lines
(the instance's ``python_logs`` handler and the run's console logger resolve ``sys.stderr`` when a run
starts), Python warnings (Dagster's beta/preview warnings), MLflow's event lines ("Created version …")
and Dagster's own notices ("Blocking asset check … emitted no result") — is appended to one file under
the state directory. Nothing is dropped: errors are in the file and in the Dagster event log (the UI's
run pages), and the demo reports failed partitions on stdout.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


@contextlib.contextmanager
def log_to_file(path: Path, command: str = "demo") -> Iterator[Path]:
    """Redirect ``sys.stderr`` (and so warnings and library logging) to ``path`` (appended) while active.

    Yields ``path``. Standard output is untouched. Every warning is recorded (filter ``default``: once per
    place), not silenced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log, contextlib.redirect_stderr(log), warnings.catch_warnings():
        warnings.simplefilter("default")
        log.write(f"--- rai-assets {command} {datetime.now(UTC).isoformat(timespec='seconds')} ---\n")
        yield path
