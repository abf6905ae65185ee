"""The partition ingestion path the asset and ``benchmarks/ingest.py`` share (ING-1..4, issue 12 goal 5)."""

from __future__ import annotations

from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.tenants import register_tenant
from rai_assets.assets.ingest_pipeline import Upload, ingest_uploads
from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.contract import reader_for_major
from rai_assets.domain.ingestion import LINE_CHUNK, build_manifest
from rai_assets.domain.signing import KeyPair
from rai_assets.resource_files import resources_dir
from rai_assets_tests.assets.test_ingestion_bad_input import _event


def _upload(tenant: str, season: str, name: str, lines: list[bytes], key: KeyPair) -> Upload:
    manifest = build_manifest(tenant, season, name, lines, "1.0.0", key)
    return Upload(f"tenants/{tenant}/landing/{season}/{name}", b"\n".join(lines) + b"\n", canonical_json(manifest))


def test_uploads_are_written_chunk_by_chunk_deduplicated_and_idempotent(ledger, suffix):
    """ING-2, ING-3, ING-4: several chunks of a first upload and a second one with duplicates, a conflict and a
    tampered line: new events are written while later chunks are validated, the season (not registered
    before) is registered ahead of its first event, and a re-run writes nothing."""
    tenant, season = f"pipe-{suffix}", "s07"
    key = KeyPair.generate()
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, key.public_key_b64, "rice-yield-v1")
    contract = reader_for_major(resources_dir() / "contracts", "learning-event", 1)
    first = [canonical_json(_event(tenant, f"f-{i}", season_id=season)) for i in range(2 * LINE_CHUNK + 10)]
    conflict = canonical_json(_event(tenant, "f-3", season_id=season, harvest={
        "gross_output_kg": 1.0, "net_output_kg": 1.0, "price_rp_per_kg": 1.0}))
    fresh = [canonical_json(_event(tenant, f"g-{i}", season_id=season)) for i in range(5)]
    second = [*first[:4], conflict, *fresh, b"{}"]
    uploads = [_upload(tenant, season, "a.jsonl", first, key), _upload(tenant, season, "b.jsonl", second, key)]
    tampered = b'{"tampered":true}'
    uploads[1] = Upload(uploads[1].data_source, uploads[1].data.replace(b"{}\n", tampered + b"\n"),
                        uploads[1].manifest_bytes)

    with ledger.connect(tenant) as conn:
        done = ingest_uploads(conn, tenant=tenant, season=season, uploads=iter(uploads),
                              public_key_b64=key.public_key_b64, contract=contract, target=None, run_id="run-1")
    assert done.verified and done.outcome.manifest_verified
    assert done.written == len(first) + len(fresh) == len(done.dedup.new)
    assert [e.field_id for e in done.dedup.duplicates] == ["f-0", "f-1", "f-2", "f-3"]
    assert [(e.field_id, e.line_no) for e, _ in done.dedup.conflicts] == [("f-3", 5)]
    assert [(d.line_no, d.raw) for d in done.outcome.dead_letters] == [(len(second), tampered)]
    with ledger.connect(tenant) as conn:
        assert event_store.count_events(conn, tenant, season) == done.written
        stored = event_store.stored_digests(conn, tenant, season)
    assert stored == {e.field_id: e.payload_sha256 for e in done.dedup.new}

    with ledger.connect(tenant) as conn:
        again = ingest_uploads(conn, tenant=tenant, season=season, uploads=uploads, public_key_b64=key.public_key_b64,
                               contract=contract, target=None, run_id="run-2")
    assert again.written == 0 and len(again.dedup.duplicates) == len(first) + len(fresh) + 4
    with ledger.connect(tenant) as conn:
        assert event_store.count_events(conn, tenant, season) == done.written


def test_a_failed_write_rolls_the_partition_back(ledger, suffix, monkeypatch):
    """ING-2: an error on the writer thread (here: the database refusing a row) reaches the caller and nothing of
    the partition is stored."""
    import psycopg
    import pytest

    tenant, season = f"fail-{suffix}", "s01"
    key = KeyPair.generate()
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, key.public_key_b64, "rice-yield-v1")
    contract = reader_for_major(resources_dir() / "contracts", "learning-event", 1)
    lines = [canonical_json(_event(tenant, f"f-{i}", season_id=season)) for i in range(LINE_CHUNK + 1)]
    real_insert = event_store.insert_events

    def corrupting_insert(conn, tenant, season, events, run_id):  # a wrong digest: the table's CHECK refuses it
        from dataclasses import replace
        return real_insert(conn, tenant, season, [replace(e, payload_sha256="0" * 64) for e in events], run_id)

    monkeypatch.setattr(event_store, "insert_events", corrupting_insert)
    with pytest.raises(psycopg.errors.CheckViolation), ledger.connect(tenant) as conn:
        ingest_uploads(conn, tenant=tenant, season=season, uploads=[_upload(tenant, season, "a.jsonl", lines, key)],
                       public_key_b64=key.public_key_b64, contract=contract, target=None, run_id="run-1")
    monkeypatch.undo()
    with ledger.connect(tenant) as conn:
        assert event_store.count_events(conn, tenant, season) == 0


def test_validation_runs_in_process_on_two_cpus_and_on_the_pool_beyond(monkeypatch):
    """Issue 12 goal 5: on ≤ 2 usable CPUs the lines are validated in the calling process (the database backend
    needs the other core); with more, large uploads go to the worker pool and small ones stay in-process."""
    from rai_assets.assets import ingest_pipeline

    monkeypatch.setattr(ingest_pipeline.os, "sched_getaffinity", lambda pid: {0, 1})
    assert ingest_pipeline.usable_cpus() == 2 and ingest_pipeline.validation_map(100_000) is None
    monkeypatch.setattr(ingest_pipeline.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert ingest_pipeline.usable_cpus() == 8
    assert callable(ingest_pipeline.validation_map(100_000)) and ingest_pipeline.validation_map(10) is None
