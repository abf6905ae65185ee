"""Identifiers, canonical JSON / Merkle roots and Ed25519 signed documents (SNAP-1, DRIFT-3, GOV-6)."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rai_assets.domain.canonical import EMPTY_MERKLE_ROOT, canonical_json, merkle_root, row_digests, sha256_hex
from rai_assets.domain.ids import InvalidIdentifierError, season_id, tenant_id
from rai_assets.domain.signing import KeyPair, SignatureError, verify
from rai_assets.domain.signing_envelope import sign_document, verify_document


@pytest.mark.parametrize("good", ["langan", "coop-7", "0", "a" * 63])
def test_valid_slugs(good):
    assert tenant_id(good) == good and season_id(good) == good


@pytest.mark.parametrize("bad", ["", "../x", "a|b", "A", "-a", "a b", "a/b", "a" * 64, "é", 7, None])
def test_invalid_slugs_name_the_problem(bad):
    with pytest.raises(InvalidIdentifierError, match="tenant id"):
        tenant_id(bad)


def test_canonical_json_is_sorted_compact_and_refuses_nan():
    assert canonical_json({"b": 1, "a": [1.5, "x"]}) == b'{"a":[1.5,"x"],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_merkle_root_by_hand():
    """RFC 6962-style: leaf = H(0x00||d), node = H(0x01||l||r), odd node promoted."""
    digests = [sha256_hex(x) for x in (b"a", b"b", b"c")]
    leaf = [hashlib.sha256(b"\x00" + bytes.fromhex(d)).digest() for d in digests]
    ab = hashlib.sha256(b"\x01" + leaf[0] + leaf[1]).digest()
    expected = hashlib.sha256(b"\x01" + ab + leaf[2]).hexdigest()
    assert merkle_root(digests) == expected
    assert merkle_root([]) == EMPTY_MERKLE_ROOT
    assert merkle_root(digests[:1]) == leaf[0].hex()


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), min_size=1, max_size=20))
def test_merkle_root_is_deterministic_and_order_sensitive(rows):
    """SNAP-1: the same rows give the same root; changing one row changes it."""
    root = merkle_root(row_digests(rows))
    assert root == merkle_root(row_digests([dict(r) for r in rows]))
    changed = [*rows[:-1], {**rows[-1], "__changed__": 1}]
    assert merkle_root(row_digests(changed)) != root


def test_signed_document_roundtrip_and_tamper_detection():
    key = KeyPair.generate()
    doc = sign_document({"verdict": "drift", "psi": 0.3}, key)
    stored = doc.to_bytes()
    assert verify_document(stored, key.public_key_b64).body == {"verdict": "drift", "psi": 0.3}
    tampered = json.loads(stored)
    tampered["body"]["verdict"] = "no_drift"
    with pytest.raises(SignatureError, match="SHA-256"):
        verify_document(json.dumps(tampered).encode())
    tampered["body_sha256"] = sha256_hex(canonical_json(tampered["body"]))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_document(json.dumps(tampered).encode())
    with pytest.raises(SignatureError, match="different key"):
        verify_document(stored, KeyPair.generate().public_key_b64)


def test_verify_rejects_malformed_keys_and_signatures():
    key = KeyPair.generate()
    sig = key.sign(b"m")
    verify(key.public_key_b64, b"m", sig)
    with pytest.raises(SignatureError, match="base64"):
        verify("!!!", b"m", sig)
    with pytest.raises(SignatureError, match="64 bytes"):
        verify(key.public_key_b64, b"m", key.public_key_b64)
    with pytest.raises(SignatureError):
        KeyPair.from_b64("c2hvcnQ=")
