"""Encryption at rest for secrets Purser must be able to read back (webhook signing
secrets): Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

The key comes from ``PURSER_SECRET_KEY``. A sandbox without one generates a key file in
its data folder (mode 0600) on first use; live mode refuses to run without the setting.
"""

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from app.errors import ServiceUnavailable


class SecretsUnavailable(ServiceUnavailable):
    code = "secrets_unavailable"


class SecretBox:
    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretsUnavailable(
                "a stored secret cannot be decrypted with the configured PURSER_SECRET_KEY"
            ) from None


def load_secret_box(configured_key: str | None, *, sandbox: bool, data_dir: Path) -> SecretBox:
    if configured_key:
        return SecretBox(configured_key)
    if not sandbox:
        raise SecretsUnavailable("PURSER_SECRET_KEY must be set in live mode")
    key_file = data_dir / "secret.key"
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(Fernet.generate_key())
    return SecretBox(key_file.read_bytes().strip())
