"""The audit list: who changed what in a company, written with the change itself.

:func:`record` adds an :class:`~docmail.adapters.db.tables.AuditEvent` to the
caller's session, so the event commits or rolls back with the change it
describes (the outbox rule: nothing that must not be lost runs after the
commit). A refused or failed change therefore leaves no event behind.

Details never hold secrets: values under secret-looking keys (passwords, tokens,
client secrets, keys) and values that look like docmail API tokens are replaced
by ``***`` before they are stored, whatever the caller passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.errors import ValidationError
from docmail.services.runtime import Actor, Role, Runtime

REDACTED = "***"
MAX_PAGE = 200
# Keys whose values are secrets by their name (``password``, ``client_secret``,
# ``refresh_token``, ``secret_access_key``, ``token``, ``code_verifier``...).
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|verifier|credential|private|api_?key", re.I)
# A docmail API token anywhere in a value ("dm_" and a long random part).
_TOKEN_VALUE = re.compile(r"dm_[A-Za-z0-9_\-]{16,}")
_ACTION = re.compile(r"^[a-z_]+(\.[a-z_]+)*\.?$")


def _clean(value: Any, depth: int = 0) -> Any:
    """The value with secrets replaced; nested dicts and lists are cleaned too."""
    if depth > 5:
        return REDACTED  # deeper than any detail we write: refuse to guess
    if isinstance(value, dict):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) else _clean(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, str):
        return _TOKEN_VALUE.sub(REDACTED, value)[:500]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:500]


def safe_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """What :func:`record` stores for ``detail``: JSON-safe, secrets replaced, values cut."""
    cleaned = _clean(detail or {})
    assert isinstance(cleaned, dict)
    return cleaned


def record(
    session: Session,
    actor: Actor,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> t.AuditEvent:
    """Add an audit event for ``actor``'s company to ``session`` (committed with the change).

    ``action`` is a dotted lower-case name (``token.created``, ``template.saved``);
    ``target`` names the object (``token:7 erp``, ``template:invoice/es``).
    """
    event = t.AuditEvent(
        company_id=actor.company_id,
        actor=(actor.label or f"role:{actor.role.value}")[:200],
        action=action[:60],
        target=target[:200],
        detail=safe_detail(detail),
    )
    session.add(event)
    return event


def changed(row: object, changes: dict[str, Any]) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for each field of ``changes`` that differs.

    Call it before applying the changes. Long values (template bodies) are cut by
    :func:`record`; secret-looking fields are replaced there.
    """
    diff: dict[str, Any] = {}
    for key, new in changes.items():
        old = getattr(row, key, None)
        if old != new:
            diff[key] = {"from": old, "to": new}
    return diff


@dataclass(frozen=True)
class AuditPage:
    items: list[t.AuditEvent]
    total: int
    actions: list[str]  # every action the company's list holds, for a filter


def _check_action(action: str | None) -> str | None:
    if action is None or action == "":
        return None
    if len(action) > 60 or not _ACTION.match(action):
        raise ValidationError(
            f"action {action!r} is not an action name such as 'token.created' "
            "(or a prefix such as 'token.')",
            field="action",
            value=action,
        )
    return action


def list_events(
    runtime: Runtime, actor: Actor, *, action: str | None = None, limit: int = 50, offset: int = 0
) -> AuditPage:
    """The company's events, newest first; ``action`` exact, or a prefix ending in a dot."""
    actor.require(Role.ADMIN)
    wanted = _check_action(action)
    limit, offset = min(max(limit, 1), MAX_PAGE), max(offset, 0)
    with runtime.read_session() as session:
        mine = t.AuditEvent.company_id == actor.company_id
        query = select(t.AuditEvent).where(mine)
        if wanted is not None and wanted.endswith("."):
            query = query.where(t.AuditEvent.action.startswith(wanted, autoescape=True))
        elif wanted is not None:
            query = query.where(t.AuditEvent.action == wanted)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        ordered = query.order_by(t.AuditEvent.at.desc(), t.AuditEvent.id.desc())
        rows = list(session.scalars(ordered.limit(limit).offset(offset)))
        actions = list(
            session.scalars(
                select(t.AuditEvent.action).where(mine).distinct().order_by(t.AuditEvent.action)
            )
        )
    return AuditPage(rows, total, actions)
