"""Encryption of secrets at rest (SMTP passwords, later OAuth tokens) with MultiFernet.

Keys come from ``DOCMAIL_SECRET_KEY`` (comma-separated, newest first) or, for the
embedded default, from a key file generated once in the data directory with mode 0600.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from docmail.errors import ConfigurationError

MIN_REDACTED_LENGTH = 6
MAX_REMEMBERED = 10_000


class SecretBox:
    """Encrypts and decrypts short secrets; the first key encrypts, all keys decrypt."""

    def __init__(self, keys: list[str] | tuple[str, ...]) -> None:
        if not keys:
            raise ConfigurationError("no secret key configured; set DOCMAIL_SECRET_KEY")
        self.known: dict[str, None] = {}
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            raise ConfigurationError(
                "DOCMAIL_SECRET_KEY is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; make one with `docmail secrets new-key`)",
                field="DOCMAIL_SECRET_KEY",
            ) from exc

    def encrypt(self, plaintext: str) -> str:
        self._remember(plaintext)
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            plaintext = self._fernet.decrypt(token.encode()).decode()
            self._remember(plaintext)
            return plaintext
        except InvalidToken as exc:
            raise ConfigurationError(
                "a stored secret cannot be decrypted with the configured keys; "
                "was DOCMAIL_SECRET_KEY changed without keeping the old key?"
            ) from exc

    def _remember(self, plaintext: str) -> None:
        # Secrets this process has handled, so logs can be scrubbed of them (see
        # RedactSecrets); short values would redact ordinary words, so skip them.
        if len(plaintext) >= MIN_REDACTED_LENGTH:
            self.known.pop(plaintext, None)
            self.known[plaintext] = None
            while len(self.known) > MAX_REMEMBERED:
                self.known.pop(next(iter(self.known)))

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


class RedactSecrets(logging.Filter):
    """Replace every secret the box has handled with ``***`` in log records."""

    def __init__(self, box: SecretBox) -> None:
        super().__init__("docmail.redact")
        self.box = box

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.box.known:
            return True
        message = record.getMessage()
        cleaned = message
        for secret in list(self.box.known):
            if secret in cleaned:
                cleaned = cleaned.replace(secret, "***")
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and record.exc_text is None and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in list(self.box.known):
                text = text.replace(secret, "***")
            record.exc_text = text
        return True


_SECRET_QUERY = re.compile(
    r"([?&](?:code|state|token|access_token|refresh_token|id_token|client_secret|password)=)"
    r"[^&#\s\"]*",
    re.IGNORECASE,
)


class RedactQuerySecrets(logging.Filter):
    """Blank secret query parameters in access-log lines (the OAuth callback's ``code``
    and ``state`` arrive in the URL, and the server logs every URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = _SECRET_QUERY.sub(r"\1***", record.msg)
        return True


def install_log_redaction(box: SecretBox, logger: logging.Logger | None = None) -> RedactSecrets:
    """Attach the filter to every handler of ``logger`` (root by default)."""
    target = logger or logging.getLogger()
    redactor = RedactSecrets(box)
    for handler in target.handlers:
        handler.addFilter(redactor)
    return redactor
