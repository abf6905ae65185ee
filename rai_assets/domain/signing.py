"""Ed25519 signing and verification of canonical documents (ING-3, DRIFT-3, GOV-6).

Thin helpers over PyNaCl (libsodium). Keys travel as URL-safe base64 of their 32 raw bytes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey


class SignatureError(ValueError):
    """A signature is malformed or does not verify against the given public key."""


def b64encode(data: bytes) -> str:
    """URL-safe base64 without padding removal (standard ``=`` padding kept)."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Decode URL-safe base64 ``text``; ``what`` names the value in the error.

    Raises:
        SignatureError: ``text`` is not valid base64.
    """
    try:
        return base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (ValueError, UnicodeEncodeError) as exc:  # binascii.Error is a ValueError
        raise SignatureError(f"{what} is not valid base64: {exc}") from exc


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair; ``seed`` is the 32-byte private seed."""

    seed: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh random key pair (libsodium CSPRNG)."""
        return cls(bytes(SigningKey.generate()))

    @classmethod
    def from_b64(cls, seed_b64: str) -> KeyPair:
        """Load from the URL-safe base64 of the 32-byte seed.

        Raises:
            SignatureError: not base64, or not 32 bytes.
        """
        seed = b64decode(seed_b64.strip(), "signing key seed")
        if len(seed) != 32:
            raise SignatureError(f"signing key seed must be 32 bytes, got {len(seed)}")
        return cls(seed)

    @property
    def public_key_b64(self) -> str:
        """URL-safe base64 of the 32-byte public key."""
        return b64encode(bytes(SigningKey(self.seed).verify_key))

    @property
    def seed_b64(self) -> str:
        """URL-safe base64 of the private seed (keep secret)."""
        return b64encode(self.seed)

    def sign(self, message: bytes) -> str:
        """Detached Ed25519 signature of ``message`` (64 bytes), URL-safe base64."""
        return b64encode(SigningKey(self.seed).sign(message).signature)


def parse_public_key(public_key_b64: str) -> VerifyKey:
    """An Ed25519 public key from URL-safe base64 (32 bytes), as tenants register it.

    Raises:
        SignatureError: not base64, or not 32 bytes.
    """
    key = b64decode(public_key_b64, "public key")
    if len(key) != 32:
        raise SignatureError(f"public key must be 32 bytes of URL-safe base64, got {len(key)} bytes")
    return VerifyKey(key)


def verify(public_key_b64: str, message: bytes, signature_b64: str) -> None:
    """Verify a detached Ed25519 signature.

    Raises:
        SignatureError: the key or signature is malformed, or the signature does not verify.
    """
    key = b64decode(public_key_b64, "public key")
    sig = b64decode(signature_b64, "signature")
    if len(key) != 32:
        raise SignatureError(f"public key must be 32 bytes, got {len(key)}")
    if len(sig) != 64:
        raise SignatureError(f"signature must be 64 bytes, got {len(sig)}")
    try:
        VerifyKey(key).verify(message, sig)
    except BadSignatureError as exc:
        raise SignatureError("Ed25519 signature does not verify against the registered public key") from exc
