"""API tokens: create (shown once), list, revoke, expire, and check on every request.

A token is ``dm_`` plus 32 random bytes (URL-safe base64). Only its SHA-256 is
stored, with its first characters (``prefix``) so people recognise it in a list.
Each token has one company and one role, never above the role of whoever made it.

Checking a token only reads (no write lock on SQLite); its last use is written at
most once per :data:`LAST_USED_RESOLUTION`, in its own short transaction after the
read, so a busy integration does not turn every request into a write.
"""

from __future__ import annotations

import hashlib
import secrets as pysecrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import Field, field_validator
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.errors import (
    AuthenticationRequired,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from docmail.services import audit
from docmail.services.inputs import Strict, _single_line
from docmail.services.runtime import Actor, Role, Runtime

TOKEN_PREFIX = "dm_"  # noqa: S105 - a public marker, not a secret
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8  # "dm_" and 8 characters of the random part
LAST_USED_RESOLUTION = timedelta(minutes=5)
_RANK = {Role.VIEWER: 0, Role.SENDER: 1, Role.ADMIN: 2}


class TokenIn(Strict):
    """A new token: a name people recognise, a role, an optional expiry (UTC if no offset)."""

    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.SENDER
    expires_at: datetime | None = None

    _line = field_validator("name")(_single_line)

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def parse_expiry(value: str | None, field: str = "expires_at") -> datetime | None:
    """An expiry typed by a person (``2026-12-31`` or ``2026-12-31T18:00``, UTC), or None."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"{field} {value!r} is not a date or date and time such as 2026-12-31T18:00",
            field=field,
            value=value,
        ) from None


@dataclass(frozen=True)
class NewToken:
    row: t.ApiToken
    token: str  # in clear: the only time it exists outside the caller's hands


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token_row(
    company_id: int, name: str, role: Role, *, created_by: str, expires_at: datetime | None = None
) -> NewToken:
    """A token row (not yet added) and its clear text."""
    token = TOKEN_PREFIX + pysecrets.token_urlsafe(32)
    row = t.ApiToken(
        company_id=company_id,
        name=name,
        token_hash=hash_token(token),
        role=role.value,
        prefix=token[:PREFIX_LENGTH],
        expires_at=expires_at,
        created_by=created_by[:200],
    )
    return NewToken(row, token)


def _check_role(actor: Actor, role: Role) -> None:
    if _RANK[role] > _RANK[actor.role]:
        raise PermissionDenied(
            f"role {role.value!r} is higher than your own ({actor.role.value}); "
            "a token can have your role or a smaller one",
            field="role",
            value=role.value,
        )


def create_token(runtime: Runtime, actor: Actor, data: TokenIn) -> NewToken:
    """Create a token for the actor's company; its clear text is returned only here."""
    _check_role(actor, data.role)
    actor.require(Role.ADMIN)
    now = runtime.clock()
    if data.expires_at is not None and data.expires_at <= now:
        raise ValidationError(
            f"expires_at {data.expires_at.isoformat()} is not in the future",
            field="expires_at",
            value=data.expires_at.isoformat(),
        )
    with runtime.session() as session:
        _check_unique_name(session, actor, data.name)
        made = new_token_row(
            actor.company_id,
            data.name,
            data.role,
            created_by=actor.label,
            expires_at=data.expires_at,
        )
        made.row.created_at = now
        session.add(made.row)
        session.flush()
        audit.record(session, actor, "token.created", _target(made.row), _detail(made.row))
    return made


def _check_unique_name(session: Session, actor: Actor, name: str) -> None:
    """Names tell tokens apart in lists and in ``created_by`` (``token:<name>``)."""
    clash = session.scalar(
        select(t.ApiToken.id).where(
            t.ApiToken.company_id == actor.company_id,
            t.ApiToken.name == name,
            t.ApiToken.revoked_at.is_(None),
        )
    )
    if clash is not None:
        raise Conflict(
            f"a token named {name!r} exists; choose another name or revoke that one",
            field="name",
            value=name,
        )


def _target(row: t.ApiToken) -> str:
    return f"token:{row.id} {row.name}"


def _detail(row: t.ApiToken) -> dict[str, object]:
    expires = row.expires_at.isoformat() if row.expires_at else None
    return {"name": row.name, "role": row.role, "prefix": row.prefix, "expires_at": expires}


def get_token_row(session: Session, actor: Actor, token_id: int) -> t.ApiToken:
    """The company's token by id; another company's token is absent (404)."""
    row = session.get(t.ApiToken, token_id)
    if row is None or row.company_id != actor.company_id:
        raise NotFound(f"API token {token_id} not found", field="token_id", value=token_id)
    return row


def list_tokens(runtime: Runtime, actor: Actor) -> list[t.ApiToken]:
    """Every token of the company, revoked ones included, newest first."""
    actor.require(Role.ADMIN)
    with runtime.read_session() as session:
        query = select(t.ApiToken).where(t.ApiToken.company_id == actor.company_id)
        return list(session.scalars(query.order_by(t.ApiToken.id.desc())))


def revoke_token(runtime: Runtime, actor: Actor, token_id: int) -> t.ApiToken:
    """Revoke a token; the next request with it gets 401. Revoking twice changes nothing."""
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        row = get_token_row(session, actor, token_id)
        if row.revoked_at is None:
            row.revoked_at = runtime.clock()
            audit.record(session, actor, "token.revoked", _target(row), _detail(row))
    return row


def authenticate_token(runtime: Runtime, token: str) -> Actor:
    """The actor for a token, or 401 when it is unknown, revoked or expired."""
    if not token:
        raise AuthenticationRequired("missing API token; send 'Authorization: Bearer <token>'")
    now = runtime.clock()
    with runtime.read_session() as session:
        row = session.scalar(select(t.ApiToken).where(t.ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise AuthenticationRequired("the API token is not valid", field="authorization")
    if row.revoked_at is not None:
        raise AuthenticationRequired(
            f"the API token {row.prefix or row.name!r} was revoked on "
            f"{row.revoked_at:%Y-%m-%d %H:%M} UTC; ask an admin for a new one",
            field="authorization",
        )
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthenticationRequired(
            f"the API token {row.prefix or row.name!r} expired on "
            f"{row.expires_at:%Y-%m-%d %H:%M} UTC; ask an admin for a new one",
            field="authorization",
        )
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        _touch(runtime, row.id, now)
    return Actor(company_id=row.company_id, role=Role(row.role), label=f"token:{row.name}")


def _touch(runtime: Runtime, token_id: int, now: datetime) -> None:
    """Record the use in its own transaction; of concurrent requests only one writes."""
    stale = now - LAST_USED_RESOLUTION
    with runtime.session() as session:
        session.execute(
            update(t.ApiToken)
            .where(
                t.ApiToken.id == token_id,
                or_(t.ApiToken.last_used_at.is_(None), t.ApiToken.last_used_at <= stale),
            )
            .values(last_used_at=now)
        )
