"""Stored OAuth tokens: handing out a current access token, refreshing it safely.

Several workers (threads, processes, machines) may find the same token about to
expire at once. Refreshing happens inside a write transaction that locks the
token row (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite) and re-reads it first: whoever comes second finds the fresh token and
uses it instead of spending (and, with rotation, invalidating) the refresh token
again. Tokens are encrypted at rest with the ``SecretBox``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import write_transaction
from docmail.adapters.oauth import client
from docmail.adapters.oauth.errors import NeedsReauthentication
from docmail.adapters.oauth.providers import ClientCredentials, OAuthProvider
from docmail.adapters.secrets import SecretBox

REFRESH_MARGIN = timedelta(minutes=5)
T = t.OAuthToken.__table__
TOKENS = t.OAuthToken


@dataclass
class OAuthTokenSource:
    """The ``oauth_token`` / ``oauth_refresh`` callbacks of one account's SMTP settings."""

    engine: Engine
    secrets: SecretBox
    provider: OAuthProvider
    credentials: Callable[[], ClientCredentials]
    account_id: int
    clock: Callable[[], datetime]
    margin: timedelta = REFRESH_MARGIN

    def access_token(self) -> str:
        """A token valid for at least ``margin``; refreshed first when it is not."""
        with self.engine.connect() as conn:
            row = conn.execute(select(T).where(T.c.account_id == self.account_id)).one_or_none()
        if row is not None and self._usable(row, rejected=None):
            return self.secrets.decrypt(row.access_token_encrypted)
        return self._refresh(rejected=None)

    def refresh_after_rejection(self, rejected: str) -> str:
        """The server refused ``rejected``: get another one (unless a worker already did)."""
        return self._refresh(rejected=rejected)

    # -- internals --------------------------------------------------------------------

    def _usable(self, row: Any, rejected: str | None) -> bool:
        if row.needs_reauth or not row.access_token_encrypted or row.expires_at is None:
            return False
        expires_at: datetime = row.expires_at
        if expires_at.tzinfo is None:  # SQLite through Core: naive UTC
            expires_at = expires_at.replace(tzinfo=self.clock().tzinfo)
        if expires_at - self.margin <= self.clock():
            return False
        return rejected is None or self.secrets.decrypt(row.access_token_encrypted) != rejected

    def _refresh(self, rejected: str | None) -> str:
        failure: NeedsReauthentication | None = None
        # Read the client credentials before locking the token row: they need a
        # transaction of their own, which SQLite could not start inside this one.
        credentials = self.credentials()
        with write_transaction(self.engine) as conn:
            query = select(T).where(T.c.account_id == self.account_id).with_for_update()
            row = conn.execute(query).one_or_none()
            if row is None:
                raise NeedsReauthentication(
                    f"the {self.provider.label} mailbox was never connected"
                )
            if row.needs_reauth:
                raise NeedsReauthentication(row.reauth_reason or "the authorization is gone")
            if self._usable(row, rejected):
                return self.secrets.decrypt(row.access_token_encrypted)  # another worker did it
            try:
                return self._refresh_row(conn, row, credentials)
            except NeedsReauthentication as exc:
                self._mark_needs_reauth(conn, exc)
                failure = exc  # committed below, raised after the transaction
        raise failure

    def _refresh_row(self, conn: Connection, row: Any, credentials: Any) -> str:
        if not row.refresh_token_encrypted:
            raise NeedsReauthentication(f"{self.provider.label} gave no refresh token")
        refresh_token = self.secrets.decrypt(row.refresh_token_encrypted)
        now = self.clock()
        tokens = client.refresh(self.provider, credentials, refresh_token, now)
        values: dict[str, Any] = {
            "access_token_encrypted": self.secrets.encrypt(tokens.access_token),
            "expires_at": tokens.expires_at,
            "version": row.version + 1,
            "refreshed_at": now,
        }
        if tokens.refresh_token:  # rotated: the old one no longer works
            values["refresh_token_encrypted"] = self.secrets.encrypt(tokens.refresh_token)
        if tokens.scope:
            values["scope"] = tokens.scope
        conn.execute(update(TOKENS).where(TOKENS.account_id == self.account_id).values(**values))
        return tokens.access_token

    def _mark_needs_reauth(self, conn: Connection, exc: NeedsReauthentication) -> None:
        conn.execute(
            update(TOKENS)
            .where(TOKENS.account_id == self.account_id)
            .values(needs_reauth=True, reauth_reason=exc.message, access_token_encrypted=None)
        )
