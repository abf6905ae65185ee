"""Ingest the landing uploads of one tenant-season into the ledger, validating and writing at once (ING-1..4).

The one code path both the ``learning_events`` asset and ``benchmarks/ingest.py`` run. Per upload,
:func:`~rai_assets.domain.ingestion.process_batch` checks the signed manifest and then the lines chunk by
chunk (on the worker pool for large uploads); each chunk's accepted events are de-duplicated as they arrive
and handed to a single ledger-writer thread, which COPYs them through the staging table into
``learning_events`` (the database's digest CHECK, foreign keys and row-level security apply to every row)
while the next chunks are still being validated. Postgres runs in its own process, so on two cores the
database write of chunk k overlaps the validation of chunk k+1.

The writer thread is the only user of the connection until it has drained; everything happens in the
caller's transaction, so a failed write (or any error) rolls the whole partition back.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.resource import Conn
from rai_assets.adapters.ledger.tenants import register_season
from rai_assets.assets.worker_pool import chunk_map
from rai_assets.domain.contract import MajorReader
from rai_assets.domain.ingestion import (
    AcceptedEvent,
    BatchOutcome,
    Deduplicator,
    DedupResult,
    TargetRule,
    process_batch,
)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, e.g. under ``taskset``)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def validation_map(n_lines: int) -> Callable[..., Iterable[Any]] | None:
    """Where the lines of an upload of ``n_lines`` lines are validated: None (in this thread) on ≤ 2 CPUs.

    On two cores, the database backend executing the previous chunk's write needs the other core: validating
    in this thread while Postgres writes measured ~52 µs of CPU per event against ~62 µs with the worker pool
    (which pickles every job and result across processes, ~5 µs per event, and competes with Postgres for the
    cores). With more CPUs the shared worker pool (:func:`chunk_map`) takes large uploads.
    """
    if usable_cpus() <= 2:
        return None
    return chunk_map(n_lines)


@dataclass(frozen=True)
class Upload:
    """One landing upload: the data file's object key and bytes, and its signed manifest (None: missing)."""

    data_source: str
    data: bytes
    manifest_bytes: bytes | None


@dataclass
class PartitionIngest:
    """What ingesting one tenant-season's uploads did.

    ``outcome`` holds every accepted event and dead letter of the uploads (conflicts are not dead letters
    yet: the caller records them); ``dedup`` splits the accepted events against the ledger; ``written`` is
    the number of events inserted; ``verified`` whether any manifest verified against the tenant's key (the
    season is then registered in the tenant's calendar).
    """

    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    dedup: DedupResult = field(default_factory=DedupResult)
    written: int = 0
    verified: bool = False


def ingest_uploads(
    conn: Conn,
    *,
    tenant: str,
    season: str,
    uploads: Iterable[Upload],
    public_key_b64: str | None,
    contract: MajorReader,
    target: TargetRule | None,
    run_id: str,
    map_for: Callable[[int], Callable[..., Iterable[Any]] | None] | None = None,
) -> PartitionIngest:
    """Verify, validate, de-duplicate and store the uploads of (tenant, season) in ``conn``'s transaction.

    Takes the partition's advisory lock first, reads the digests already stored, then per upload runs
    :func:`process_batch` (``map_for(line_count)`` gives its chunk ``map``; by default :func:`validation_map`)
    and writes each chunk's new events on a background thread as soon as they are checked. When
    a manifest verifies, the season is registered before its first event is written (the events' foreign
    key needs it). Dead letters are not written here.

    Args:
        conn: a ledger session of ``tenant`` inside an open transaction (``LedgerResource.connect``).
        uploads: the partition's uploads, read lazily one after the other.
        public_key_b64: the tenant's registered key; None for an unknown tenant (every line dead-lettered).
        contract, target: the tenant's contract reader and target rule (see :func:`process_batch`).
        run_id: the Dagster run id recorded with each event.

    Raises:
        psycopg.Error: a ledger write failed (e.g. a database CHECK); the transaction is then aborted.
    """
    with _switch_interval(WRITER_SWITCH_INTERVAL_S):
        result = PartitionIngest()
        event_store.lock_partition(conn, tenant, season)
        dedup = Deduplicator(event_store.stored_digests(conn, tenant, season))
        result.dedup = dedup.result
        registered = False
        writes: list[Future[int]] = []

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer") as writer:

            def register() -> int:
                register_season(conn, tenant, season)
                return 0

            def write(events: list[AcceptedEvent]) -> None:
                nonlocal registered
                for done in writes:  # fail fast: a write that failed aborted the transaction
                    if done.done() and done.exception() is not None:
                        done.result()
                new = dedup.add(events)
                if not new:
                    return
                if not registered:
                    writes.append(writer.submit(register))
                    registered = True
                writes.append(writer.submit(event_store.insert_events, conn, tenant, season, new, run_id))

            try:
                for upload in uploads:
                    batch = process_batch(
                        tenant=tenant,
                        season=season,
                        data_source=upload.data_source,
                        data=upload.data,
                        manifest_bytes=upload.manifest_bytes,
                        public_key_b64=public_key_b64,
                        contract=contract,
                        target=target,
                        map_chunks=(map_for or validation_map)(upload.data.count(b"\n")),
                        on_events=write,
                    )
                    result.outcome.events.extend(batch.events)
                    result.outcome.dead_letters.extend(batch.dead_letters)
                    result.verified = result.verified or batch.manifest_verified
            finally:
                for pending in writes:  # the connection is the caller's again only once the writer is idle
                    pending.exception()
            result.written = sum(pending.result() for pending in writes)
        if result.verified and not registered:  # a verified upload whose lines were all rejected or duplicates
            register_season(conn, tenant, season)
        result.outcome.manifest_verified = result.verified
        return result


#: The writer thread needs the GIL briefly after each database round trip; with the default 5 ms switch
#: interval the validating thread keeps it that long each time and Postgres idles (measured: 19.8k → 27.3k
#: events/s with 0.2 ms). Shortened while :func:`ingest_uploads` runs.
WRITER_SWITCH_INTERVAL_S = 0.0002


@contextlib.contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    """Python's thread switch interval at most ``seconds`` while active, then as it was."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


