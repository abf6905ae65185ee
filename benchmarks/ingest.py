"""Benchmark of ingestion (ING-1..4): signed batches → verified, contract-checked, de-duplicated ledger rows.

Usage::

    python benchmarks/ingest.py [--events 200000] [--batch-size 10000] [--out PATH] [--profile PATH]

Setup (not timed): a temporary embedded Postgres (pgserver) in a temporary directory, migrated to
head; one tenant registered with a fresh Ed25519 key, and one season per batch (``s001``,
``s002``, ...). ``--events`` realistic learning events are generated from the RiceFarms panel
(``rai_assets.demo.ricefarms.to_event``, cycling over the 1,026 real rows) with field ids
``farm-<i>`` unique within each season, serialised as canonical JSON lines and grouped into batches
of ``--batch-size`` lines, each with its signed manifest (``build_manifest``: one Ed25519 signature
over the canonical JSON listing every line's SHA-256). Each batch is one tenant-season partition.

Measured in the same run (wall clock, ``time.perf_counter``):

* **baseline — signature check only**: for every batch, parse the manifest, verify its Ed25519
  signature over the canonical body (``rai_assets.domain.signing.verify``) and compare each line's
  SHA-256 with the signed digest. This is the integrity floor every ingestion design pays; the
  pipeline is reported as a ratio of its throughput.
* **per-event signatures (information)**: ``verify`` of one 64-byte Ed25519 signature per event over
  20,000 events, extrapolated to ``--events`` — what a one-signature-per-event design would cost.
* **full pipeline**: per batch, exactly as the ``learning_events`` asset does per partition, in one
  ledger transaction: connect (tenant context) → ``get_tenant`` → ``ingest_uploads``
  (``rai_assets.assets.ingest_pipeline``, the asset's own code path: ``lock_partition`` →
  ``stored_digests`` → ``process_batch`` — manifest signature, line digests, strict JSON parse, contract
  validation, payload digest — chunk by chunk, each chunk's new events de-duplicated and written by a
  ledger-writer thread (COPY into the staging table, INSERT … SELECT under RLS and the digest CHECK) while
  the next chunk is validated) → commit. Validation and writing overlap, so they are timed together
  (``validate_and_write``); ``commit`` is the rest (dead letters, if any, and the commit).

After the run the ledger must hold exactly ``--events`` events (a sanity assertion, not a timing
one). The embedded server is always stopped (by its postmaster PID) and its directory removed.
Results go to ``--out`` (default ``benchmarks/results/ingest.json``); the last line printed is
``ingest_events_per_s=<int> events/s``. ``--profile PATH`` runs the pipeline under cProfile
(timings then include the profiler's overhead), writes the pstats file and prints the top entries.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rai_assets.adapters.ledger import events as event_store  # noqa: E402
from rai_assets.adapters.ledger.embedded import start_embedded_postgres, stop_embedded_postgres  # noqa: E402
from rai_assets.adapters.ledger.resource import LedgerResource  # noqa: E402
from rai_assets.adapters.ledger.tenants import get_tenant, register_season, register_tenant  # noqa: E402
from rai_assets.assets.ingest_pipeline import Upload, ingest_uploads, validation_map  # noqa: E402
from rai_assets.domain.canonical import canonical_json, sha256_hex  # noqa: E402
from rai_assets.domain.contract import MajorReader, reader_for_major  # noqa: E402
from rai_assets.domain.ingestion import DATA_SUFFIX, build_manifest  # noqa: E402
from rai_assets.domain.signing import KeyPair, verify  # noqa: E402
from rai_assets.resource_files import resources_dir  # noqa: E402

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "ingest.json"
TARGET_EVENTS_PER_S = 30_000  # issue 12 goal 5
TENANT = "bench-tenant"
CONTRACT_VERSION = "1.0.0"
MODEL_SPEC = "rice-yield-v1"
PER_EVENT_SAMPLE = 20_000
RUN_ID = "benchmark-ingest"


@dataclass(frozen=True)
class Batch:
    """One pre-generated signed upload: the data file's bytes and its signed manifest's bytes."""

    season: str
    data_source: str
    data: bytes
    manifest_bytes: bytes
    lines: int


@dataclass
class StageTimes:
    """Seconds spent in each pipeline stage, summed over batches."""

    connect: float = 0.0  # open the connection, set the tenant context, read the tenant's key
    validate_and_write: float = 0.0  # ingest_uploads: lock, stored digests, checks and writes overlapped
    commit: float = 0.0  # dead letters (none here) + commit
    total: float = 0.0
    accepted: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    conflicts: int = 0
    per_batch: list[float] = field(default_factory=list)


def base_events() -> list[dict[str, Any]]:
    """The RiceFarms panel rows as learning events (1,026 realistic payloads)."""
    from rai_assets.demo.ricefarms import load_panel, to_event

    panel = load_panel()
    return [to_event(row) for _, row in panel.iterrows()]


def make_batches(events: int, batch_size: int, key: KeyPair) -> list[Batch]:
    """Signed batches of ``batch_size`` events (the last may be smaller), one season each."""
    bases = base_events()
    batches: list[Batch] = []
    produced = 0
    number = 0
    while produced < events:
        number += 1
        season = f"s{number:03d}"
        size = min(batch_size, events - produced)
        lines = [
            canonical_json(
                {
                    **bases[(produced + i) % len(bases)],
                    "tenant_id": TENANT,
                    "season_id": season,
                    "field_id": f"farm-{i}",
                }
            )
            for i in range(size)
        ]
        name = f"bench-{season}{DATA_SUFFIX}"
        manifest = build_manifest(TENANT, season, name, lines, CONTRACT_VERSION, key)
        batches.append(
            Batch(
                season=season,
                data_source=f"tenants/{TENANT}/landing/{season}/{name}",
                data=b"".join(line + b"\n" for line in lines),
                manifest_bytes=canonical_json(manifest),
                lines=size,
            )
        )
        produced += size
    return batches


def signature_check_only(batches: list[Batch], public_key_b64: str) -> int:
    """The integrity stage alone: manifest signature + per-line SHA-256 comparison. Returns lines checked."""
    checked = 0
    for batch in batches:
        lines = batch.data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        manifest = json.loads(batch.manifest_bytes)
        signature = manifest["signature"]
        body = {k: v for k, v in manifest.items() if k != "signature"}
        verify(public_key_b64, canonical_json(body), signature)
        digests = body["line_sha256"]
        if len(digests) != len(lines):
            raise AssertionError(f"{batch.data_source}: {len(lines)} lines, manifest lists {len(digests)}")
        for line, digest in zip(lines, digests, strict=True):
            if sha256_hex(line) != digest:
                raise AssertionError(f"{batch.data_source}: line digest mismatch")
        checked += len(lines)
    return checked


def per_event_verify_seconds(batches: list[Batch], key: KeyPair, sample: int) -> tuple[int, float]:
    """Seconds to verify one detached Ed25519 signature per event over ``sample`` events."""
    lines: list[bytes] = []
    for batch in batches:
        lines.extend(batch.data.split(b"\n")[:-1])
        if len(lines) >= sample:
            break
    lines = lines[:sample]
    signed = [(line, key.sign(line)) for line in lines]  # not timed: the tenant signs
    public_key = key.public_key_b64
    start = time.perf_counter()
    for line, signature in signed:
        verify(public_key, line, signature)
    return len(signed), time.perf_counter() - start


def run_pipeline(ledger: LedgerResource, batches: list[Batch], contract: MajorReader) -> StageTimes:
    """Ingest every batch as the ``learning_events`` asset does, one ledger transaction per batch.

    Calls the asset's own code path, :func:`rai_assets.assets.ingest_pipeline.ingest_uploads` (lock, stored
    digests, ``process_batch`` on the worker pool, incremental de-duplication, chunk writes on the ledger
    writer thread overlapping validation). Validation and writing overlap, so the stages are not timed
    apart: ``process_batch`` here is the time inside ``ingest_uploads`` and ``db_write`` the commit.
    """
    times = StageTimes()
    clock = time.perf_counter
    for batch in batches:
        t0 = clock()
        with ledger.connect(TENANT) as conn:
            public_key = get_tenant(conn, TENANT).public_key
            t1 = clock()
            ingested = ingest_uploads(
                conn,
                tenant=TENANT,
                season=batch.season,
                uploads=[Upload(batch.data_source, batch.data, batch.manifest_bytes)],
                public_key_b64=public_key,
                contract=contract,
                target=None,
                run_id=RUN_ID,
            )
            t2 = clock()
            if ingested.outcome.dead_letters:
                event_store.insert_dead_letters(conn, TENANT, batch.season, ingested.outcome.dead_letters, RUN_ID)
        t3 = clock()  # after commit
        times.connect += t1 - t0
        times.validate_and_write += t2 - t1
        times.commit += t3 - t2
        times.total += t3 - t0
        times.per_batch.append(t3 - t0)
        times.accepted += ingested.written
        times.duplicates += len(ingested.dedup.duplicates)
        times.conflicts += len(ingested.dedup.conflicts)
        times.dead_letters += len(ingested.outcome.dead_letters)
    return times


def stored_event_count(ledger: LedgerResource) -> int:
    with ledger.connect(TENANT) as conn:
        row = conn.execute("SELECT count(*) AS n FROM learning_events WHERE tenant_id = %s", (TENANT,)).fetchone()
    return int(row["n"]) if row else 0


def setup_ledger(ledger: LedgerResource, key: KeyPair, seasons: list[str]) -> None:
    """Migrate the fresh ledger, register the tenant and one season per batch."""
    with ledger.connect(TENANT) as conn:
        register_tenant(conn, TENANT, key.public_key_b64, MODEL_SPEC, "ingest benchmark")
        for ordinal, season in enumerate(seasons, start=1):
            register_season(conn, TENANT, season, ordinal)


def profile_summary(profiler: cProfile.Profile, path: Path, limit: int = 25) -> str:
    profiler.dump_stats(str(path))
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(limit)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to ingest (default 200,000)")
    parser.add_argument("--batch-size", type=int, default=10_000, help="events per signed batch (default 10,000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON result (default {DEFAULT_OUT})")
    parser.add_argument("--profile", type=Path, default=None, help="run the pipeline under cProfile; pstats file")
    args = parser.parse_args(argv)
    if args.events < 1 or args.batch_size < 1:
        parser.error("--events and --batch-size must be >= 1")

    cpu_count = os.cpu_count() or 1
    load_at_start = os.getloadavg()[0]
    print(
        f"ingest benchmark: {args.events:,} events in batches of {args.batch_size:,} (one season each), "
        f"{cpu_count} CPU(s), python {platform.python_version()}, load average {load_at_start:.2f}"
    )
    key = KeyPair.generate()
    contract = reader_for_major(resources_dir() / "contracts", "learning-event", 1)

    start = time.perf_counter()
    batches = make_batches(args.events, args.batch_size, key)
    data_bytes = sum(len(b.data) for b in batches)
    manifest_bytes = sum(len(b.manifest_bytes) for b in batches)
    print(
        f"generated {len(batches)} signed batches in {time.perf_counter() - start:.1f} s (not timed): "
        f"{data_bytes / 2**20:.1f} MiB of JSON lines ({data_bytes / args.events:.0f} B/event), "
        f"{manifest_bytes / 2**20:.1f} MiB of manifests"
    )

    # --- baseline: the signature-check stage alone
    start = time.perf_counter()
    checked = signature_check_only(batches, key.public_key_b64)
    sig_seconds = time.perf_counter() - start
    assert checked == args.events
    sig_rate = args.events / sig_seconds
    print(f"baseline, signature check only (1 Ed25519 verify/batch + 1 SHA-256/line): "
          f"{sig_seconds:.3f} s, {sig_rate:,.0f} events/s")

    sample, per_event_seconds = per_event_verify_seconds(batches, key, min(PER_EVENT_SAMPLE, args.events))
    per_event_rate = sample / per_event_seconds
    per_event_extrapolated = args.events / per_event_rate
    print(f"per-event Ed25519 verify (information): {per_event_rate:,.0f} events/s over {sample:,} events, "
          f"{per_event_extrapolated:.2f} s extrapolated to {args.events:,} "
          f"({per_event_extrapolated / sig_seconds:.1f}x the per-batch manifest check)")

    # --- full pipeline against a temporary embedded Postgres
    with tempfile.TemporaryDirectory(prefix="rai-ingest-bench-") as tmp:
        pid: int | None = None
        try:
            start = time.perf_counter()
            url, pid = start_embedded_postgres(tmp)
            ledger = LedgerResource(owner_url=url)  # the assets' role (rai_app) is derived from it
            setup_ledger(ledger, key, [b.season for b in batches])
            print(f"embedded Postgres PID {pid} started and migrated in {time.perf_counter() - start:.1f} s "
                  "(not timed)")
            # a long-running code server has its worker pool warm (used only on > 2 CPUs)
            warm = validation_map(batches[0].lines)
            if warm is not None:
                list(warm(abs, range(64)))

            profile_text = ""
            if args.profile is not None:
                profiler = cProfile.Profile()
                profiler.enable()
                times = run_pipeline(ledger, batches, contract)
                profiler.disable()
                args.profile.parent.mkdir(parents=True, exist_ok=True)
                profile_text = profile_summary(profiler, args.profile)
            else:
                times = run_pipeline(ledger, batches, contract)

            stored = stored_event_count(ledger)
        finally:
            stopped = stop_embedded_postgres(tmp)
            if pid is not None and stopped is not None and stopped != pid:
                print(f"warning: stopped PID {stopped}, but the server reported PID {pid}", file=sys.stderr)
            print(f"embedded Postgres PID {stopped} stopped")

    assert times.dead_letters == 0 and times.conflicts == 0 and times.duplicates == 0, times
    assert times.accepted == args.events, (times.accepted, args.events)
    assert stored == args.events, f"ledger holds {stored} events, expected {args.events}"

    pipeline_rate = args.events / times.total
    stages = {
        "connect_and_tenant_lookup": times.connect,
        "validate_and_write (ingest_uploads: lock, stored digests, checks and writes overlapped)":
            times.validate_and_write,
        "commit (and dead letters)": times.commit,
    }
    result: dict[str, Any] = {
        "benchmark": "ingest",
        "events": args.events,
        "batch_size": args.batch_size,
        "batches": len(batches),
        "cpu_count": cpu_count,
        "python": platform.python_version(),
        "profiled": args.profile is not None,
        "data_bytes": data_bytes,
        "manifest_bytes": manifest_bytes,
        "signature_check_seconds": sig_seconds,
        "signature_check_events_per_s": sig_rate,
        "per_event_verify_sample": sample,
        "per_event_verify_events_per_s": per_event_rate,
        "per_event_verify_seconds_extrapolated": per_event_extrapolated,
        "load_average_1min_at_start_and_end": [load_at_start, os.getloadavg()[0]],
        "pipeline_seconds": times.total,
        "pipeline_events_per_s": pipeline_rate,
        "pipeline_over_signature_check_throughput": pipeline_rate / sig_rate,
        "per_event_signature_over_signature_check_seconds": per_event_extrapolated / sig_seconds,
        "stage_seconds": stages,
        "stage_us_per_event": {name: s / args.events * 1e6 for name, s in stages.items()},
        "batch_seconds": {"min": min(times.per_batch), "max": max(times.per_batch)},
        "stored_events": stored,
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "target_met": pipeline_rate >= TARGET_EVENTS_PER_S,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    if profile_text:
        print(f"cProfile of the pipeline (timings below include profiler overhead), saved to {args.profile}:")
        print(profile_text)
    print(f"full pipeline: {times.total:.3f} s for {args.events:,} events in {len(batches)} transactions, "
          f"{pipeline_rate:,.0f} events/s; ledger holds {stored:,} events")
    print("stage breakdown (s, µs/event):")
    for name, seconds in stages.items():
        print(f"  {name}: {seconds:.3f} s, {seconds / args.events * 1e6:.1f} µs/event, "
              f"{seconds / times.total:.0%} of pipeline")
    print(f"pipeline / signature-check-only (throughput): {pipeline_rate / sig_rate:.3f}x "
          f"(the pipeline spends {sig_rate / pipeline_rate:.0f}x the time of the signature check alone)")
    print(f"per-event-signature verify / signature-check-only (time): {per_event_extrapolated / sig_seconds:.1f}x")
    print(f"target >= {TARGET_EVENTS_PER_S:,} events/s: {'met' if result['target_met'] else 'MISSED'}; "
          f"results: {args.out}")
    print(f"ingest_events_per_s={int(pipeline_rate)} events/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
