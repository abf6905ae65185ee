"""Ingestion edge cases through the real learning_events asset, ledger and object store.

Every bad input ends in the dead-letter table (with its reason, raw payload and source) or in a
clear error before it reaches storage — never a crash, never a silent drop. REQ: ING-1..4.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from rai_assets.adapters import metrics
from rai_assets.adapters.ledger import events as event_store
from rai_assets.adapters.ledger.resource import LedgerResource
from rai_assets.adapters.ledger.tenants import register_season, register_tenant
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
    with ledger.connect() as conn:
        register_season(conn, SEASON, 1)
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
