"""Signed canonical-JSON documents: drift reports and bias audits (DRIFT-3, GOV-6).

A document is stored as ``{"body": …, "body_sha256": …, "signature": …, "signer_public_key": …}``
where ``body_sha256`` is the SHA-256 of the body's canonical JSON and ``signature`` the Ed25519
signature of those same canonical bytes. Anyone holding the public key can verify it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rai_assets.domain.canonical import canonical_json, sha256_hex
from rai_assets.domain.signing import KeyPair, SignatureError, verify


@dataclass(frozen=True)
class SignedDocument:
    """A canonical-JSON body with its digest and detached Ed25519 signature."""

    body: dict[str, Any]
    body_sha256: str
    signature: str
    signer_public_key: str

    def to_bytes(self) -> bytes:
        """The stored form (itself canonical JSON)."""
        return canonical_json(
            {
                "body": self.body,
                "body_sha256": self.body_sha256,
                "signature": self.signature,
                "signer_public_key": self.signer_public_key,
            }
        )


def sign_document(body: dict[str, Any], key: KeyPair) -> SignedDocument:
    """Sign ``body`` (must be JSON without NaN/Infinity).

    Raises:
        ValueError: the body contains NaN/Infinity; TypeError: a non-JSON value.
    """
    data = canonical_json(body)
    return SignedDocument(
        body=body, body_sha256=sha256_hex(data), signature=key.sign(data), signer_public_key=key.public_key_b64
    )


def verify_document(stored: bytes, expected_public_key: str | None = None) -> SignedDocument:
    """Parse and verify a stored signed document.

    Args:
        stored: the bytes written by :meth:`SignedDocument.to_bytes`.
        expected_public_key: when given, the document must be signed by this key.

    Raises:
        SignatureError: the digest does not match the body, the signer is not the expected key,
            or the signature does not verify.
    """
    doc = json.loads(stored)
    body = doc["body"]
    data = canonical_json(body)
    if sha256_hex(data) != doc["body_sha256"]:
        raise SignatureError("document body does not match its recorded SHA-256")
    if expected_public_key is not None and doc["signer_public_key"] != expected_public_key:
        raise SignatureError("document is signed by a different key than expected")
    verify(doc["signer_public_key"], data, doc["signature"])
    return SignedDocument(body, doc["body_sha256"], doc["signature"], doc["signer_public_key"])
