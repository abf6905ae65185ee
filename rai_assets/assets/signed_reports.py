"""Signing, storing and recording drift reports and bias audits (DRIFT-3, GOV-6)."""

from __future__ import annotations

from typing import Any

from rai_assets.adapters.object_store import ObjectStoreResource, tenant_key
from rai_assets.adapters.signer import SignerResource
from rai_assets.domain.signing import SignatureError
from rai_assets.domain.signing_envelope import SignedDocument, sign_document, verify_document


def sign_and_store(store: ObjectStoreResource, signer: SignerResource, *, tenant: str, season: str, kind: str,
                   body: dict[str, Any]) -> tuple[SignedDocument, str]:
    """Sign ``body`` and store it write-once at ``tenants/<t>/<kind>/<season>/<sha256>.json``.

    Returns:
        The signed document and its object key.
    """
    doc = sign_document(body, signer.key())
    key = tenant_key(tenant, kind, season, f"{doc.body_sha256}.json")
    store.put_bytes(key, doc.to_bytes(), write_once=True, content_type="application/json")
    return doc, key


def read_back_and_verify(store: ObjectStoreResource, signer: SignerResource, key: str, expected_sha256: str
                         ) -> tuple[bool, str]:
    """Read a stored signed document back and verify digest and signature against the platform key.

    Returns:
        (verified, detail) — recorded as an integrity check in the ledger.
    """
    try:
        doc = verify_document(store.get_bytes(key), signer.key().public_key_b64)
    except (SignatureError, ValueError, KeyError, LookupError) as exc:
        return False, f"verification failed: {exc}"
    if doc.body_sha256 != expected_sha256:
        return False, f"stored digest {doc.body_sha256} differs from the expected {expected_sha256}"
    return True, "sha256 and Ed25519 signature verified on the stored object"
