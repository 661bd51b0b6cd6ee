"""Encryption of secrets at rest (SMTP passwords, later OAuth tokens) with MultiFernet.

Keys come from ``DOCMAIL_SECRET_KEY`` (comma-separated, newest first) or, for the
embedded default, from a key file generated once in the data directory with mode 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from docmail.errors import ConfigurationError


class SecretBox:
    """Encrypts and decrypts short secrets; the first key encrypts, all keys decrypt."""

    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        if not keys:
            raise ConfigurationError("no secret key configured; set DOCMAIL_SECRET_KEY")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            raise ConfigurationError(
                "DOCMAIL_SECRET_KEY is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; make one with `docmail secrets new-key`)",
                field="DOCMAIL_SECRET_KEY",
            ) from exc

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "a stored secret cannot be decrypted with the configured keys; "
                "was DOCMAIL_SECRET_KEY changed without keeping the old key?"
            ) from exc

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()


def load_or_create_keys(configured: tuple[str, ...], key_file: Path) -> tuple[str, ...]:
    """Use configured keys, else the key file, else create the key file (owner-only)."""
    if configured:
        return configured
    if key_file.exists():
        return tuple(line.strip() for line in key_file.read_text().splitlines() if line.strip())
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(SecretBox.new_key() + "\n")
    return load_or_create_keys(configured, key_file)
