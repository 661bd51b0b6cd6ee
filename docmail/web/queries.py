"""Read-only queries the pages need and the services do not offer (lean rows, one round trip).

Everything is scoped by the actor's company, like the services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import String, cast, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from docmail.adapters.db import tables as t
from docmail.errors import NotFound
from docmail.services.runtime import Actor, Runtime

PAGE_SIZE = 25
Q = TypeVar("Q", bound=Select)


@dataclass(frozen=True)
class DocumentQuery:
    type: str = ""
    status: str = ""
    party: str = ""
    number: str = ""
    date_from: date | None = None
    date_to: date | None = None
    sent: str = ""  # "sent" | "unsent" | "failed"
    page: int = 1


@dataclass(frozen=True)
class DocumentRow:
    id: int
    doc_type: str
    number: str
    party_code: str
    party_name: str
    issue_date: date | None
    total: Decimal | None
    currency: str | None
    status: str
    last_state: str | None


def _documents_with_message(actor: Actor, state: str) -> Any:
    """Ids of documents with a message in ``state``: computed once, not per document row
    (a correlated EXISTS made SQLite walk every failed message for each document)."""
    return (
        select(t.MessageDocument.document_id)
        .join(t.Message, t.Message.id == t.MessageDocument.message_id)
        .where(t.Message.company_id == actor.company_id, t.Message.state == state)
    )


def _has_any_message() -> Any:
    return exists(
        select(t.MessageDocument.document_id).where(t.MessageDocument.document_id == t.Document.id)
    )


def _document_filters(query: Q, actor: Actor, q: DocumentQuery) -> Q:
    query = query.where(t.Document.company_id == actor.company_id)
    if q.type:
        query = query.where(t.Document.doc_type == q.type)
    if q.status:
        query = query.where(t.Document.status == q.status)
    if q.number:
        query = query.where(t.Document.number.contains(q.number, autoescape=True))
    if q.party:
        like = f"%{q.party.lower()}%"
        query = query.where(
            or_(func.lower(t.Party.code).like(like), func.lower(t.Party.name).like(like))
        )
    if q.date_from:
        query = query.where(t.Document.issue_date >= q.date_from)
    if q.date_to:
        query = query.where(t.Document.issue_date <= q.date_to)
    if q.sent in ("sent", "failed"):
        query = query.where(t.Document.id.in_(_documents_with_message(actor, q.sent)))
    elif q.sent == "unsent":
        query = query.where(~_has_any_message())
    return query


def search_documents(
    runtime: Runtime, actor: Actor, q: DocumentQuery
) -> tuple[list[DocumentRow], int]:
    columns = select(
        t.Document.id,
        t.Document.doc_type,
        t.Document.number,
        t.Party.code,
        t.Party.name,
        t.Document.issue_date,
        t.Document.total,
        t.Document.currency,
        t.Document.status,
    ).join(t.Party, t.Party.id == t.Document.party_id)
    query = _document_filters(columns, actor, q)
    counter = _document_filters(
        select(func.count(t.Document.id)).join(t.Party, t.Party.id == t.Document.party_id), actor, q
    )
    with runtime.session() as session:
        total = session.scalar(counter) or 0
        page = session.execute(
            query.order_by(t.Document.id.desc())
            .limit(PAGE_SIZE)
            .offset((max(q.page, 1) - 1) * PAGE_SIZE)
        ).all()
        states = _last_states(session, [row[0] for row in page])
    return [_document_row(row, states.get(row[0])) for row in page], total


def _document_row(row: Any, state: str | None) -> DocumentRow:
    return DocumentRow(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], last_state=state
    )


def _last_states(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(t.MessageDocument.document_id, t.Message.state)
        .join(t.Message, t.Message.id == t.MessageDocument.message_id)
        .where(t.MessageDocument.document_id.in_(ids))
        .order_by(t.Message.id)
    ).all()
    return {doc_id: state for doc_id, state in rows}  # later (newer) messages overwrite


@dataclass(frozen=True)
class MessageRow:
    id: int
    state: str
    to: list[str]
    subject: str
    attempts: int
    last_error: str | None
    server_reply: str | None
    created_at: datetime
    sent_at: datetime | None


def search_messages(
    runtime: Runtime, actor: Actor, state: str, text: str, page: int
) -> tuple[list[MessageRow], int]:
    where = [t.Message.company_id == actor.company_id]
    if state:
        where.append(t.Message.state == state)
    if text:
        like = f"%{text.lower()}%"
        where.append(
            or_(
                func.lower(t.Message.subject).like(like),
                func.lower(cast(t.Message.to, String)).like(like),
            )
        )
    columns = select(
        t.Message.id,
        t.Message.state,
        t.Message.to,
        t.Message.subject,
        t.Message.attempts,
        t.Message.last_error,
        t.Message.server_reply,
        t.Message.created_at,
        t.Message.sent_at,
    ).where(*where)
    with runtime.session() as session:
        total = session.scalar(select(func.count(t.Message.id)).where(*where)) or 0
        rows = session.execute(
            columns.order_by(t.Message.id.desc())
            .limit(PAGE_SIZE)
            .offset((max(page, 1) - 1) * PAGE_SIZE)
        ).all()
    return [MessageRow(*row) for row in rows], total


def message_state(runtime: Runtime, actor: Actor, message_id: int) -> MessageRow:
    with runtime.session() as session:
        row = session.get(t.Message, message_id)
        if row is None or row.company_id != actor.company_id:
            raise NotFound(f"message {message_id} not found", field="message_id")
        return MessageRow(
            row.id,
            row.state,
            list(row.to),
            row.subject,
            row.attempts,
            row.last_error,
            row.server_reply,
            row.created_at,
            row.sent_at,
        )


@dataclass(frozen=True)
class CaughtRow:
    id: int
    received_at: datetime
    mail_from: str
    rcpt_to: list[str]
    subject: str


def caught_messages(runtime: Runtime, company_id: int, limit: int = 200) -> list[CaughtRow]:
    """The demo catcher's messages that this company's outbox sent, newest first."""
    with runtime.session() as session:
        rows = session.execute(
            select(
                t.CaughtMessage.id,
                t.CaughtMessage.received_at,
                t.CaughtMessage.mail_from,
                t.CaughtMessage.rcpt_to,
                t.CaughtMessage.subject,
            )
            .where(t.CaughtMessage.company_id == company_id)
            .order_by(t.CaughtMessage.id.desc())
            .limit(limit)
        ).all()
    return [CaughtRow(*row) for row in rows]


def caught_raw(runtime: Runtime, company_id: int, caught_id: int) -> bytes:
    with runtime.session() as session:
        raw = session.scalar(
            select(t.CaughtMessage.raw).where(
                t.CaughtMessage.id == caught_id, t.CaughtMessage.company_id == company_id
            )
        )
    if raw is None:
        raise NotFound(f"caught message {caught_id} not found", field="id", value=caught_id)
    return raw


def recent_documents(runtime: Runtime, actor: Actor, doc_type: str) -> list[tuple[int, str]]:
    with runtime.session() as session:
        rows = session.execute(
            select(t.Document.id, t.Document.number)
            .where(t.Document.company_id == actor.company_id, t.Document.doc_type == doc_type)
            .order_by(t.Document.id.desc())
            .limit(30)
        ).all()
        return list(rows)
