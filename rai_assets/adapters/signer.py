"""The platform's signing key (Ed25519) for reports and audits (DRIFT-3, GOV-5, GOV-6)."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from rai_assets.domain.signing import KeyPair


class SignerResource(ConfigurableResource):
    """Signs canonical documents with the platform key.

    ``signing_key_b64`` (env ``RAI_SIGNING_KEY``, a K8s Secret in production) is the URL-safe
    base64 of the 32-byte Ed25519 seed. When empty, a local key is created once under
    ``<state_dir>/keys/platform-ed25519.key`` (mode 0600) — for the embedded default only.
    """

    signing_key_b64: str = ""
    state_dir: str = ".rai"

    def key(self) -> KeyPair:
        """The signing key pair.

        Raises:
            SignatureError: the configured seed is not base64 of 32 bytes.
        """
        if self.signing_key_b64:
            return KeyPair.from_b64(self.signing_key_b64)
        path = Path(self.state_dir) / "keys" / "platform-ed25519.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(KeyPair.generate().seed_b64)
        return KeyPair.from_b64(path.read_text())
