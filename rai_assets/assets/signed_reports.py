"""Signing, storing and recording drift reports and bias audits (DRIFT-3, GOV-6)."""

from __future__ import annotations

from typing import Any

from rai_assets.adapters.object_store import ObjectStoreResource, tenant_key
from rai_assets.adapters.signer import SignerResource
from rai_assets.domain.signing_envelope import SignedDocument, sign_document


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
