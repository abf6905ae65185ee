"""Ingestion edge cases through the real learning_events asset, ledger and object store.

Every bad input ends in the dead-letter table (with its reason, raw payload and source) or in a
clear error before it reaches storage — never a crash, never a silent drop. REQ: ING-1..4.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import register_tenant
from rai_assets.adapters.object_store import InvalidObjectKeyError, ObjectStoreResource, tenant_key
from rai_assets.assets.learning_events import learning_events
from rai_assets.assets.partitions import add_partitions, partition_key
from rai_assets.demo.ricefarms import tenant_key_pair, write_batch
from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.ids import InvalidIdentifierError
from rai_assets.domain.signing import KeyPair

SEASON = "s01"


def _event(tenant: str, field: str, **override: object) -> dict:
    event = {
        "schema_version": "1.0.0", "tenant_id": tenant, "season_id": SEASON, "field_id": field,
        "farm": {"size_ha": 1.5, "tenure": "owner", "variety": "high", "bimas": "no"},
        "inputs": {"seed_kg": 40.0, "urea_kg": 300.0, "phosphate_kg": 50.0, "pesticide_rp": 1000.0,
                   "hired_labor_h": 500.0, "family_labor_h": 200.0, "total_labor_h": 700.0, "wage_rp_per_h": 50.0,
                   "seed_price_rp_per_kg": 60.0, "urea_price_rp_per_kg": 75.0, "phosphate_price_rp_per_kg": 75.0},
        "harvest": {"gross_output_kg": 5000.0, "net_output_kg": 4300.0, "price_rp_per_kg": 60.0},
    }
    event.update(override)
    return event


def _line(event: dict) -> bytes:
    return canonical_json(event)


@pytest.fixture
def tenant(suffix: str) -> str:
    return f"coop-{suffix}"


@pytest.fixture
def setup(resources: dict, tenant: str, tmp_path: Path) -> tuple[DagsterInstance, KeyPair]:
    instance = DagsterInstance.ephemeral()
    key = tenant_key_pair(tmp_path / "keys", tenant)
    ledger: LedgerResource = resources["ledger"]  # type: ignore[assignment]
    with ledger.connect(tenant) as conn:
        register_tenant(conn, tenant, key.public_key_b64, "rice-yield-v1")
    add_partitions(instance, tenants=[tenant], seasons=[SEASON])
    return instance, key


def _ingest(resources: dict, instance: DagsterInstance, tenant: str) -> dict:
    result = materialize([learning_events], partition_key=partition_key(tenant, SEASON), resources=resources,
                         instance=instance)
    assert result.success
    mat = result.asset_materializations_for_node("learning_events")[0]
    return {k: v.value for k, v in mat.metadata.items()}


def _dead(resources: dict, tenant: str) -> list[dict]:
    with resources["ledger"].connect(tenant) as conn:
        return event_store.dead_letters(conn, tenant, SEASON)


def test_good_batch_is_accepted_and_reingestion_is_a_no_op(resources, setup, tenant):
    """REQ: ING-2 — the same events ingested twice are stored once."""
    instance, key = setup
    store: ObjectStoreResource = resources["object_store"]
    write_batch(store, tenant, SEASON, "b1", [_line(_event(tenant, f"f-{i}")) for i in range(5)], key)
    first = _ingest(resources, instance, tenant)
    again = _ingest(resources, instance, tenant)
    assert (first["accepted"], first["duplicate"], first["rejected"]) == (5, 0, 0)
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 5, 0)
    assert again["events_stored"] == 5


def test_bad_signature_dead_letters_the_whole_batch(resources, setup, tenant, tmp_path):
    """REQ: ING-3 — a batch signed with a key that is not the tenant's is rejected line by line."""
    instance, _key = setup
    forger = tenant_key_pair(tmp_path / "forger", tenant)
    write_batch(resources["object_store"], tenant, SEASON, "forged", [_line(_event(tenant, "f-1")),
                                                                     _line(_event(tenant, "f-2"))], forger)
    meta = _ingest(resources, instance, tenant)
    assert (meta["accepted"], meta["rejected"]) == (0, 2)
    dead = _dead(resources, tenant)
    assert len(dead) == 2 and all(d["reason"].startswith("batch signature invalid") for d in dead)
    assert {d["line_no"] for d in dead} == {1, 2}
    assert all(d["source_file"].endswith("forged.jsonl") for d in dead)
    assert json.loads(dead[0]["raw_payload"])["field_id"] == "f-1"
    # ING-4 / OBS-1: the dead-letter count is visible as a metric, exported for Prometheus
    assert metrics.REGISTRY.get_sample_value("rai_dead_letters", {"tenant": tenant, "season": SEASON}) == 2
    assert f'rai_dead_letters{{season="{SEASON}",tenant="{tenant}"}} 2.0' in metrics.export().read_text()


def test_tampered_line_is_caught_by_the_manifest_digest(resources, setup, tenant):
    """REQ: ING-3 — a line changed after signing is rejected; its neighbours are accepted."""
    instance, key = setup
    store: ObjectStoreResource = resources["object_store"]
    lines = [_line(_event(tenant, "f-1")), _line(_event(tenant, "f-2"))]
    batch = write_batch(store, tenant, SEASON, "tampered", lines, key)
    tampered = lines[0] + b"\n" + lines[1].replace(b"5000.0", b"9000.0") + b"\n"
    path = store.local_path(batch.data_key)
    assert path is not None
    path.chmod(0o644)
    path.write_bytes(tampered)
    meta = _ingest(resources, instance, tenant)
    assert (meta["accepted"], meta["rejected"]) == (1, 1)
    assert "tampered" in _dead(resources, tenant)[0]["reason"]


@pytest.mark.parametrize(
    ("raw", "reason_fragment"),
    [
        (b'{"schema_version": "1.0.0", "tenant_id": ', "malformed JSON"),
        (b"not json at all", "malformed JSON"),
        (None, "unsupported schema major 2"),  # built below: schema_version 2.0.0
        (None, '"harvest" is a required property'),  # missing field
        (None, 'farm.size_ha: "big" is not of type "number"'),  # wrong type
        (None, "non-finite number NaN"),
        (None, "overflows to a non-finite float"),
        (None, 'field_id: "../etc" does not match'),  # field id with '../'
        (None, "does not match the batch tenant"),  # another tenant's event
    ],
    ids=["truncated", "garbage", "schema-major", "missing-field", "wrong-type", "nan", "inf", "field-dotdot",
         "tenant-mismatch"],
)
def test_bad_lines_end_in_dead_letters_with_their_reason(resources, setup, tenant, raw, reason_fragment, request):
    """REQ: ING-1, ING-4 — each bad line is dead-lettered with a reason naming the problem."""
    instance, key = setup
    case = request.node.callspec.id
    good = _line(_event(tenant, "f-ok"))
    if raw is None:
        event = _event(tenant, "f-bad")
        if case == "schema-major":
            event["schema_version"] = "2.0.0"
        elif case == "missing-field":
            del event["harvest"]
        elif case == "wrong-type":
            event["farm"] = {**event["farm"], "size_ha": "big"}
        elif case == "field-dotdot":
            event["field_id"] = "../etc"
        elif case == "tenant-mismatch":
            event["tenant_id"] = "someone-else"
        raw = _line(event)
        if case == "nan":
            raw = raw.replace(b'"size_ha":1.5', b'"size_ha":NaN')
        elif case == "inf":
            raw = raw.replace(b'"size_ha":1.5', b'"size_ha":1e999')
    write_batch(resources["object_store"], tenant, SEASON, "mixed", [good, raw], key)
    meta = _ingest(resources, instance, tenant)
    assert (meta["accepted"], meta["rejected"]) == (1, 1)
    dead = _dead(resources, tenant)
    assert len(dead) == 1
    assert reason_fragment in dead[0]["reason"], dead[0]["reason"]
    assert dead[0]["raw_payload"] == raw.decode()
    assert dead[0]["line_no"] == 2


def test_duplicate_and_conflicting_duplicate(resources, setup, tenant):
    """REQ: ING-2 — identical re-send is a no-op; a changed payload for the same key is recorded, not applied."""
    instance, key = setup
    store = resources["object_store"]
    original = _event(tenant, "f-1")
    changed = _event(tenant, "f-1", harvest={"gross_output_kg": 1.0, "net_output_kg": 1.0, "price_rp_per_kg": 1.0})
    write_batch(store, tenant, SEASON, "a", [_line(original)], key)
    write_batch(store, tenant, SEASON, "b", [_line(original), _line(changed)], key)
    meta = _ingest(resources, instance, tenant)
    assert (meta["accepted"], meta["duplicate"], meta["conflicting"]) == (1, 1, 1)
    dead = _dead(resources, tenant)
    assert len(dead) == 1 and dead[0]["reason"].startswith("conflicting duplicate")
    with resources["ledger"].connect(tenant) as conn:
        stored = event_store.load_events(conn, tenant, [SEASON])
    assert stored == [original]  # never overwritten


def test_unknown_tenant_dead_letters_everything(resources, setup, suffix, tmp_path):
    """REQ: ING-4 — an upload for a tenant with no registered key is kept as dead letters."""
    instance, _ = setup
    stranger = f"stranger-{suffix}"
    key = tenant_key_pair(tmp_path / "keys", stranger)
    add_partitions(instance, tenants=[stranger])
    write_batch(resources["object_store"], stranger, SEASON, "x", [_line(_event(stranger, "f-1"))], key)
    meta = _ingest(resources, instance, stranger)
    assert (meta["accepted"], meta["rejected"]) == (0, 1)
    assert _dead(resources, stranger)[0]["reason"].startswith(f"unknown tenant {stranger!r}")


@pytest.mark.parametrize("bad", ["../evil", "a|b", "Upper", "", "x" * 64, "a/b", "a;drop table tenants"])
def test_invalid_tenant_ids_are_refused_before_storage(bad, resources, setup):
    """Tenant ids with '../', '|' etc. never reach a partition key, the object store or the ledger."""
    instance, _ = setup
    with pytest.raises(InvalidIdentifierError):
        partition_key(bad, SEASON)
    with pytest.raises(InvalidIdentifierError):
        add_partitions(instance, tenants=[bad])
    assert bad not in instance.get_dynamic_partitions("tenant")
    with pytest.raises((InvalidObjectKeyError, ValueError)):
        tenant_key(bad, "landing")
    with resources["ledger"].connect() as conn, pytest.raises(InvalidIdentifierError):
        register_tenant(conn, bad, KeyPair.generate().public_key_b64, "rice-yield-v1")


# ---------------------------------------------------------------- hardening (issue 8, items 7-10)


def _landed_data(resources: dict, tenant: str, name: str) -> Path:
    """The local file of a landed batch's data object, made writable (to simulate a bad upload)."""
    store: ObjectStoreResource = resources["object_store"]
    path = store.local_path(f"{tenant_key(tenant, 'landing', SEASON)}/{name}.jsonl")
    assert path is not None
    path.chmod(0o644)
    return path


def _assert_raw_kept(dead: list[dict], lines: dict[int, bytes]) -> None:
    """Each line's dead letter holds its exact bytes, and raw_sha256 recomputes from them."""
    by_line = {d["line_no"]: d for d in dead}
    for line_no, raw in lines.items():
        row = by_line[line_no]
        assert bytes(row["raw_bytes"]) == raw, (line_no, row)
        assert row["raw_sha256"] == hashlib.sha256(bytes(row["raw_bytes"])).hexdigest()


def test_bytes_postgres_text_cannot_store_are_dead_lettered_losslessly(resources, setup, tenant):
    """ING-4 (issue 8 item 7): a NUL byte, invalid UTF-8, a \\u0000 escape and a lone surrogate
    end as dead letters with their exact bytes — the partition is not blocked, the good line lands."""
    instance, key = setup
    good = _line(_event(tenant, "f-ok"))
    nul_escape = _line(_event(tenant, "f-1")).replace(b'"tenure":"owner"', b'"tenure":"own\\u0000er"')
    surrogate = _line(_event(tenant, "f-2")).replace(b'"tenure":"owner"', b'"tenure":"\\ud800"')
    bad = {2: b'{"field_id": "f-\x00"}', 3: b"\xff\xfe\x00 not utf-8", 4: nul_escape, 5: surrogate}
    write_batch(resources["object_store"], tenant, SEASON, "bytes", [good, *bad.values()], key)
    meta = _ingest(resources, instance, tenant)
    assert (meta["accepted"], meta["rejected"]) == (1, 4)
    dead = _dead(resources, tenant)
    _assert_raw_kept(dead, bad)
    assert all("\x00" not in d["raw_payload"] and "\x00" not in d["reason"] for d in dead)
    again = _ingest(resources, instance, tenant)  # a re-run changes nothing
    assert (again["accepted"], again["duplicate"], again["dead_letters_new"]) == (0, 1, 0)


def test_upload_shorter_than_its_manifest_does_not_block_the_partition(resources, setup, tenant):
    """ING-4 (item 7): the lines present are checked, the missing ones are one batch-level dead letter,
    and another good batch of the partition still lands."""
    instance, key = setup
    store = resources["object_store"]
    lines = [_line(_event(tenant, f"f-{i}")) for i in range(3)]
    write_batch(store, tenant, SEASON, "short", lines, key)
    write_batch(store, tenant, SEASON, "fine", [_line(_event(tenant, "g-1"))], key)
    _landed_data(resources, tenant, "short").write_bytes(lines[0] + b"\n" + lines[1] + b"\n")
    meta = _ingest(resources, instance, tenant)
    assert (meta["accepted"], meta["rejected"]) == (3, 1)
    [dead] = _dead(resources, tenant)
    assert dead["line_no"] is None and "2 lines but the signed manifest lists 3 (truncated)" in dead["reason"]


def test_batch_level_dead_letters_are_recorded_once(resources, setup, tenant):
    """ING-4 (item 8): dead letters without a line number are idempotent per (source, line, reason) —
    a re-run adds none (before: 2 became 4)."""
    instance, _key = setup
    store: ObjectStoreResource = resources["object_store"]
    prefix = tenant_key(tenant, "landing", SEASON)
    store.put_bytes(f"{prefix}/notes.txt", b"stray file", write_once=True)
    store.put_bytes(f"{prefix}/orphan.manifest.json", b'{"kind": "no data file"}', write_once=True)
    first = _ingest(resources, instance, tenant)
    again = _ingest(resources, instance, tenant)
    assert (first["dead_letters_new"], first["dead_letters_total"]) == (2, 2)
    assert (again["dead_letters_new"], again["dead_letters_total"]) == (0, 2)
    dead = _dead(resources, tenant)
    assert [d["line_no"] for d in dead] == [None, None]
    orphan = next(d for d in dead if d["source_file"].endswith("orphan.manifest.json"))
    assert bytes(orphan["raw_bytes"]) == b'{"kind": "no data file"}'


def test_known_minor_additions_are_accepted_and_an_unknown_minor_is_named(resources, setup, tenant):
    """ING-1 (item 9): a 1.1.0 event with 1.1's fields is accepted; those fields under 1.0.0 are not;
    a minor this reader does not know is dead-lettered with a reason naming it."""
    instance, key = setup
    v11 = _event(tenant, "f-11", schema_version="1.1.0", observed_on="2024-03-31")
    v11["harvest"] = {**v11["harvest"], "moisture_pct": 14.0}
    v10_with_11_fields = _event(tenant, "f-10", observed_on="2024-03-31")
    v17 = _event(tenant, "f-17", schema_version="1.7.0")
    write_batch(resources["object_store"], tenant, SEASON, "minors", [_line(v11), _line(v10_with_11_fields),
                                                                      _line(v17)], key)
    meta = _ingest(resources, instance, tenant)
    assert (meta["accepted"], meta["rejected"]) == (1, 2)
    reasons = {d["line_no"]: d["reason"] for d in _dead(resources, tenant)}
    assert "observed_on" in reasons[2] and "1.0.0" in reasons[2]
    assert reasons[3].startswith("unknown minor version 1.7 (schema_version 1.7.0) of learning-event"), reasons[3]
    assert "knows 1.0, 1.1" in reasons[3]
    with resources["ledger"].connect(tenant) as conn:
        assert event_store.load_events(conn, tenant, [SEASON]) == [v11]


@pytest.mark.parametrize(
    ("replace", "reason_fragment"),
    [
        ((b'"size_ha":1.5', b'"size_ha":5e-324'), "is not finite"),
        ((b'"gross_output_kg":5000.0', b'"gross_output_kg":900000000.0'), "outside the spec's plausible range"),
        ((b'"seed_kg":40.0', b'"seed_kg":4e-400'), "underflows to 0.0"),
    ],
    ids=["denormal-area", "implausible-yield", "underflow"],
)
def test_impossible_values_are_dead_lettered_with_their_reason(resources, setup, tenant, replace, reason_fragment):
    """ING-1 (item 10): a derived target (yield = gross output / area) that is not finite or outside the
    spec's plausible range, and a number that would be stored as a different value, are dead letters."""
    instance, key = setup
    raw = _line(_event(tenant, "f-bad")).replace(*replace)
    assert raw != _line(_event(tenant, "f-bad"))
    write_batch(resources["object_store"], tenant, SEASON, "impossible", [_line(_event(tenant, "f-ok")), raw], key)
    meta = _ingest(resources, instance, tenant)
    assert (meta["accepted"], meta["rejected"]) == (1, 1)
    [dead] = _dead(resources, tenant)
    assert reason_fragment in dead["reason"], dead["reason"]
    assert bytes(dead["raw_bytes"]) == raw
