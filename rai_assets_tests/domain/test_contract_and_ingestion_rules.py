"""The data contract (ING-1) and the batch rules (ING-2..4), without I/O."""

from __future__ import annotations

import pytest

from rai_assets.domain.canonical import canonical_json
from rai_assets.domain.contract import ContractError, SemVer, reader_for_major
from rai_assets.domain.ingestion import build_manifest, check_event, deduplicate, parse_json_line, process_batch
from rai_assets.domain.signing import KeyPair
from rai_assets.resource_files import resources_dir
from rai_assets_tests.assets.test_ingestion_bad_input import _event


@pytest.fixture(scope="module")
def contract():
    return reader_for_major(resources_dir() / "contracts", "learning-event", 1)


def test_reader_accepts_every_known_minor_of_its_major(contract):
    """ING-1: every shipped minor (any patch of it) is accepted; 1.1's additions only under 1.1."""
    assert contract.version.major == 1 and contract.known_minors() == ["1.0", "1.1"]
    for version in ("1.0.0", "1.0.3", "1.1.0", "1.1.9"):
        contract.validate(_event("t", "f", schema_version=version))
    contract.validate(_event("t", "f", schema_version="1.1.0", observed_on="2024-01-31"))
    with pytest.raises(ContractError, match="observed_on"):
        contract.validate(_event("t", "f", schema_version="1.0.0", observed_on="2024-01-31"))


def test_reader_names_an_unknown_minor(contract):
    with pytest.raises(ContractError, match=r"unknown minor version 1\.4 \(schema_version 1\.4\.2\) of learning-event:"
                                            r" this reader knows 1\.0, 1\.1"):
        contract.validate(_event("t", "f", schema_version="1.4.2"))


def test_target_rule_of_the_spec():
    """ING-1 (issue 8 item 10): finite and within the spec's plausible range, else a reason."""
    from rai_assets.assets.common import spec_by_id
    from rai_assets.domain.ingestion import TargetRule

    rule = TargetRule.of_spec(spec_by_id("rice-yield-v1"))
    assert (rule.minimum, rule.maximum, rule.unit) == (0.0, 100000.0, "kg/ha")
    assert rule.check(_event("t", "f")) is None
    tiny = _event("t", "f", farm={**_event("t", "f")["farm"], "size_ha": 5e-324})
    assert "is not finite" in (rule.check(tiny) or "")


@pytest.mark.parametrize("version", ["2.0.0", "0.9.0"])
def test_reader_rejects_other_majors(contract, version):
    with pytest.raises(ContractError, match=f"unsupported schema major {version[0]}"):
        contract.validate(_event("t", "f", schema_version=version))


def test_semver_parsing():
    assert SemVer.parse("1.2.3") == SemVer(1, 2, 3)
    with pytest.raises(ContractError, match="not a semantic version"):
        SemVer.parse("1.2")


def test_no_contract_for_unknown_major():
    with pytest.raises(ContractError, match="major 9"):
        reader_for_major(resources_dir() / "contracts", "learning-event", 9)


def test_strict_json(contract):
    assert parse_json_line('{"a": 1.5}') == {"a": 1.5}
    for bad in ('{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', "{oops"):
        with pytest.raises(ValueError):
            parse_json_line(bad)
    overflow = canonical_json(_event("t", "f")).replace(b'"size_ha":1.5', b'"size_ha":1e400')
    reason, event = check_event(overflow, tenant="t", season="s01", contract=contract)
    assert event is None and reason is not None and "non-finite" in reason


def test_fast_paths_keep_the_checks_and_their_wording(contract):
    """ING-1/ING-4 (issue 12 goal 5): the per-event shortcuts — schema_version looked up by its text once
    it is known, the one-byte search for a negative exponent — accept and refuse exactly what the full
    checks do, with the same reasons."""
    for _ in range(2):  # the second round takes the cached schema_version path
        contract.validate(_event("t", "f", schema_version="1.0.0"))
        with pytest.raises(ContractError, match="observed_on"):
            contract.validate(_event("t", "f", schema_version="1.0.0", observed_on="2024-01-31"))
        with pytest.raises(ContractError, match="not a semantic version"):
            contract.validate(_event("t", "f", schema_version=["1.0.0"]))
        with pytest.raises(ContractError, match="unsupported schema major 2"):
            contract.validate(_event("t", "f", schema_version="2.0.0"))
    # underflow is found whatever the exponent's case and wherever other '-' characters are
    for literal in (b"4e-400", b"4E-400", b"4e-0400"):
        with pytest.raises(ValueError, match=r"underflows to 0\.0"):
            parse_json_line(b'{"x-y":"-","a":' + literal + b"}")
    assert parse_json_line(b'{"x-y":"e","a":4e-40,"b":-1}') == {"x-y": "e", "a": 4e-40, "b": -1}


def _batch(lines, key, tenant="t", season="s01"):
    return build_manifest(tenant, season, "b.jsonl", lines, "1.0.0", key)


def test_every_line_ends_in_exactly_one_bucket(contract):
    """ING-4: accepted + dead letters = lines; nothing silently dropped."""
    key = KeyPair.generate()
    lines = [canonical_json(_event("t", "f-1")), b"{oops", canonical_json(_event("t", "f-2", season_id="s02"))]
    out = process_batch(tenant="t", season="s01", data_source="b.jsonl", data=b"\n".join(lines) + b"\n",
                        manifest_bytes=canonical_json(_batch(lines, key)), public_key_b64=key.public_key_b64,
                        contract=contract)
    assert [e.field_id for e in out.events] == ["f-1"]
    assert [d.line_no for d in out.dead_letters] == [2, 3]
    assert "season_id 's02' does not match" in out.dead_letters[1].reason


def test_missing_manifest_unknown_tenant_and_extra_lines(contract):
    key = KeyPair.generate()
    lines = [canonical_json(_event("t", "f-1"))]
    data = lines[0] + b"\n"
    common = {"tenant": "t", "season": "s01", "data_source": "b.jsonl", "contract": contract}
    no_manifest = process_batch(data=data, manifest_bytes=None, public_key_b64=key.public_key_b64, **common)
    assert no_manifest.dead_letters[0].reason == "signed manifest missing"
    unknown = process_batch(data=data, manifest_bytes=canonical_json(_batch(lines, key)), public_key_b64=None,
                            **common)
    assert unknown.dead_letters[0].reason.startswith("unknown tenant")
    extra = process_batch(data=data + lines[0] + b"\n", manifest_bytes=canonical_json(_batch(lines, key)),
                          public_key_b64=key.public_key_b64, **common)
    assert len(extra.events) == 1 and extra.dead_letters[0].reason == "line not covered by the signed manifest"
    wrong_tenant = process_batch(data=data, manifest_bytes=canonical_json(_batch(lines, key, tenant="u")),
                                 public_key_b64=key.public_key_b64, **common)
    assert "landed under 't'/'s01'" in wrong_tenant.dead_letters[0].reason


def test_deduplicate_against_stored_and_within_batch(contract):
    key = KeyPair.generate()
    a, b = canonical_json(_event("t", "f-1")), canonical_json(_event("t", "f-2"))
    a2 = canonical_json(_event("t", "f-1", harvest={"gross_output_kg": 1.0, "net_output_kg": 1.0,
                                                    "price_rp_per_kg": 1.0}))
    lines = [a, b, a, a2]
    out = process_batch(tenant="t", season="s01", data_source="b.jsonl", data=b"\n".join(lines),
                        manifest_bytes=canonical_json(_batch(lines, key)), public_key_b64=key.public_key_b64,
                        contract=contract)
    result = deduplicate(out.events, stored={"f-2": out.events[1].payload_sha256})
    assert [e.field_id for e in result.new] == ["f-1"]
    assert [e.field_id for e in result.duplicates] == ["f-2", "f-1"]
    assert [(e.line_no, stored) for e, stored in result.conflicts] == [(4, out.events[0].payload_sha256)]


def test_accepted_events_stream_chunk_by_chunk_in_line_order(contract):
    """ING-2: ``on_events`` sees each chunk's accepted events as it is checked, in order; a non-canonical line's
    payload digest is that of its canonical form, a canonical line's is its signed digest."""
    from rai_assets.domain.canonical import sha256_hex
    from rai_assets.domain.ingestion import LINE_CHUNK, Deduplicator

    key = KeyPair.generate()
    n = 2 * LINE_CHUNK + 3
    lines = [canonical_json(_event("t", f"f-{i}")) for i in range(n)]
    lines[1] = lines[1].replace(b",", b", ", 1)  # valid, but not canonical
    lines[LINE_CHUNK] = b"{oops"
    parts: list[list[str]] = []
    out = process_batch(tenant="t", season="s01", data_source="b.jsonl", data=b"\n".join(lines),
                        manifest_bytes=canonical_json(_batch(lines, key)), public_key_b64=key.public_key_b64,
                        contract=contract, on_events=lambda events: parts.append([e.field_id for e in events]))
    assert [len(p) for p in parts] == [LINE_CHUNK, LINE_CHUNK - 1, 3]
    assert [f for p in parts for f in p] == [e.field_id for e in out.events]
    assert [d.line_no for d in out.dead_letters] == [LINE_CHUNK + 1]
    first, second = out.events[0], out.events[1]
    assert first.payload_sha256 == sha256_hex(lines[0]) and first.canonical == lines[0]
    assert second.canonical == canonical_json(_event("t", "f-1")) != lines[1]
    assert second.payload_sha256 == sha256_hex(second.canonical)

    dedup = Deduplicator(stored={"f-0": first.payload_sha256})
    assert [e.field_id for e in dedup.add(out.events[:2])] == ["f-1"]
    assert dedup.add(out.events[1:2]) == [] and [e.field_id for e in dedup.result.duplicates] == ["f-0", "f-1"]
    assert [e.field_id for e in dedup.result.new] == ["f-1"]


def test_accepted_event_pickles_to_an_equal_event(contract):
    """The worker pool hands events back pickled (``AcceptedEvent.__reduce__``): nothing may change on the way."""
    import pickle

    from rai_assets.domain.ingestion import AcceptedEvent

    event = AcceptedEvent("f-1", "a" * 64, "tenants/t/landing/s01/b.jsonl", 7, b'{"a":"\\\\"}')
    assert pickle.loads(pickle.dumps(event)) == event
