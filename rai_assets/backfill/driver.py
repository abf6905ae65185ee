"""The season-wave driver: launch a season's waves, wait for them, then the next season's.

Two launchers: :class:`InProcessLauncher` runs each wave in this process against a Dagster instance (the
demo's way: the runs appear in the instance's UI); :class:`GraphQLLauncher` submits them to a Dagster
webserver (``dagster_graphql.DagsterGraphQLClient``), where the run queue and the run launcher (the K8s run
launcher in production) run a season's waves side by side.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlparse

from dagster import DagsterInstance, DagsterRunStatus, JobDefinition

from rai_assets.backfill.plan import Wave
from rai_assets.backfill.wave import SEASON_WAVE_JOB

#: Run statuses after which a wave's run will not change.
_FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def wave_run_config(wave: Wave) -> dict[str, Any]:
    """The run config of ``season_wave_job`` for ``wave``."""
    return {"ops": {"season_wave": {"config": {"season": wave.season, "tenants": list(wave.tenants)}}}}


def wave_tags(wave: Wave, backfill_id: str) -> dict[str, str]:
    """The tags of a wave's run: the backfill, the season and the wave (filterable in the Dagster UI)."""
    return {"rai/backfill": backfill_id, "rai/season": wave.season, "rai/wave": f"{wave.index + 1}/{wave.of}",
            "rai/trigger": "season-backfill", "rai/tenants": str(len(wave.tenants))}


class WaveLauncher(Protocol):
    """Launches wave runs and waits for them."""

    def launch(self, wave: Wave, tags: Mapping[str, str]) -> str:
        """Start ``wave``'s run; returns its Dagster run id."""
        ...

    def wait(self, run_ids: Sequence[str]) -> dict[str, bool]:
        """Block until every run in ``run_ids`` finished; returns run id → succeeded."""
        ...


class InProcessLauncher:
    """Runs each wave in this process (``execute_in_process``) against ``instance``: one after the other."""

    def __init__(self, job: JobDefinition, instance: DagsterInstance,
                 run_config: Mapping[str, Any] | None = None) -> None:
        """``job`` is ``season_wave_job`` resolved with its resources (``Definitions.resolve_job_def``);
        ``run_config`` is merged into each wave's (e.g. the loggers' level)."""
        self._job, self._instance, self._extra = job, instance, dict(run_config or {})
        self._outcome: dict[str, bool] = {}

    def launch(self, wave: Wave, tags: Mapping[str, str]) -> str:
        """Run ``wave`` to the end; returns its run id."""
        result = self._job.execute_in_process(instance=self._instance, run_config={**self._extra,
                                              **wave_run_config(wave)}, tags=dict(tags), raise_on_error=False)
        self._outcome[result.run_id] = result.success
        return result.run_id

    def wait(self, run_ids: Sequence[str]) -> dict[str, bool]:
        """The outcomes (the runs finished when they were launched)."""
        return {run_id: self._outcome[run_id] for run_id in run_ids}


class GraphQLLauncher:
    """Submits each wave to a Dagster webserver and polls the runs' status every ``poll_s`` seconds."""

    def __init__(self, url: str, poll_s: float = 2.0, timeout_s: float = 24 * 3600.0) -> None:
        """``url``: the webserver, ``http(s)://host:port``.

        Raises:
            ValueError: ``url`` is not an http(s) URL with a host.
        """
        from dagster_graphql import DagsterGraphQLClient

        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"--dagster-url {url!r} is not an http(s)://host:port URL")
        self._client = DagsterGraphQLClient(parsed.hostname, port_number=parsed.port,
                                            use_https=parsed.scheme == "https",
                                            path_prefix=parsed.path.rstrip("/"))
        self._poll_s, self._timeout_s = poll_s, timeout_s

    def launch(self, wave: Wave, tags: Mapping[str, str]) -> str:
        """Submit ``wave``'s run (queued by the webserver's run coordinator); returns its run id."""
        return self._client.submit_job_execution(SEASON_WAVE_JOB, run_config=wave_run_config(wave), tags=dict(tags))

    def wait(self, run_ids: Sequence[str]) -> dict[str, bool]:
        """Poll until every run finished.

        Raises:
            TimeoutError: a run has not finished after ``timeout_s`` (the message names it).
        """
        deadline = time.monotonic() + self._timeout_s
        status: dict[str, DagsterRunStatus] = {}
        while True:
            for run_id in run_ids:
                if status.get(run_id) not in _FINISHED:
                    status[run_id] = self._client.get_run_status(run_id)
            if all(s in _FINISHED for s in status.values()):
                return {run_id: status[run_id] == DagsterRunStatus.SUCCESS for run_id in run_ids}
            if time.monotonic() > deadline:
                waiting = [r for r in run_ids if status[r] not in _FINISHED]
                raise TimeoutError(f"wave runs {waiting[:3]} not finished after {self._timeout_s:.0f} s")
            time.sleep(self._poll_s)


@dataclass
class BackfillReport:
    """What a season-wave backfill did: its id, each wave's run (label, run id, succeeded), the tenants whose
    later seasons were not launched (tenant → why) and the wall time (s)."""

    backfill_id: str
    runs: list[tuple[str, str, bool]] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        """Every wave's run succeeded."""
        return all(ok for _, _, ok in self.runs)


def run_season_backfill(launcher: WaveLauncher, waves_by_season: Sequence[Sequence[Wave]], *,
                        backfill_id: str | None = None, progress: Callable[[str], None] = print) -> BackfillReport:
    """Launch each season's waves (from :func:`rai_assets.backfill.plan.plan_waves`), wait for all of them,
    then go on to the next season: a tenant's seasons run in order, tenants of a season side by side.

    A wave whose run failed stops its tenants: none of their later seasons is launched (a season's
    champion decision needs the earlier ones), and the report says which run stopped them; the other
    tenants go on. Re-run the failed partitions one by one (``tenant_season_job``), then start a backfill of
    the remaining seasons.
    """
    report = BackfillReport(backfill_id or uuid.uuid4().hex[:12])
    started = time.perf_counter()
    for waves in waves_by_season:
        launched: list[tuple[Wave, str]] = []
        for wave in waves:
            tenants = tuple(t for t in wave.tenants if t not in report.stopped)
            if not tenants:
                continue
            wave = replace(wave, tenants=tenants)
            launched.append((wave, launcher.launch(wave, wave_tags(wave, report.backfill_id))))
        outcomes = launcher.wait([run_id for _, run_id in launched])
        for wave, run_id in launched:
            ok = outcomes[run_id]
            report.runs.append((wave.label, run_id, ok))
            if not ok:
                for tenant in wave.tenants:
                    report.stopped.setdefault(tenant, f"{wave.label} (run {run_id}) failed")
            progress(f"{wave.label}: {len(wave.tenants)} tenants, run {run_id[:8]} {'ok' if ok else 'FAILED'}")
    report.seconds = time.perf_counter() - started
    return report
