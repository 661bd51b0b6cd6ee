"""The delivery log: messages, their attempts, resend and cancel."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.adapters.mime import AttachmentPart, OutgoingEmail, new_message_id, render_bytes
from docmail.domain.outbox import CLAIMABLE_STATES, MessageState
from docmail.domain.recipient_states import (
    ACCEPTED,
    Attempt,
    RecipientState,
    envelope_for_retry,
    fold,
)
from docmail.errors import Conflict, NotFound
from docmail.services.blobs import get_blob, get_blobs
from docmail.services.runtime import Actor, Role, Runtime

MESSAGE_OPTIONS = (selectinload(t.Message.attachments), selectinload(t.Message.document_links))


class _AttachmentLike(Protocol):
    @property
    def blob_sha256(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def size(self) -> int: ...


def attachment_values(source: _AttachmentLike) -> dict[str, object]:
    """A message's own reference to stored bytes (from a document's or another message's)."""
    return {
        "blob_sha256": source.blob_sha256,
        "filename": source.filename,
        "content_type": source.content_type,
        "size": source.size,
    }


def attachment_row(source: _AttachmentLike) -> t.MessageAttachment:
    return t.MessageAttachment(**attachment_values(source))


def get_message_row(session: Session, actor: Actor, message_id: int) -> t.Message:
    message = session.get(t.Message, message_id, options=list(MESSAGE_OPTIONS))
    if message is None or message.company_id != actor.company_id:
        raise NotFound(f"message {message_id} not found", field="message_id", value=message_id)
    return message


def get_message(runtime: Runtime, actor: Actor, message_id: int) -> t.Message:
    with runtime.session() as session:
        return get_message_row(session, actor, message_id)


def message_attempts(runtime: Runtime, actor: Actor, message_id: int) -> list[t.MessageAttempt]:
    with runtime.session() as session:
        get_message_row(session, actor, message_id)
        query = select(t.MessageAttempt).where(t.MessageAttempt.message_id == message_id)
        return list(session.scalars(query.order_by(t.MessageAttempt.number)))


@dataclass(frozen=True)
class MessageFilter:
    state: str | None = None
    document_id: int | None = None
    batch_id: int | None = None
    limit: int = 50
    offset: int = 0


def list_messages(
    runtime: Runtime, actor: Actor, flt: MessageFilter
) -> tuple[list[t.Message], int]:
    query = select(t.Message).where(t.Message.company_id == actor.company_id)
    if flt.state:
        query = query.where(t.Message.state == flt.state)
    if flt.batch_id is not None:
        query = query.where(t.Message.batch_id == flt.batch_id)
    if flt.document_id is not None:
        query = query.where(
            t.Message.id.in_(
                select(t.MessageDocument.message_id).where(
                    t.MessageDocument.document_id == flt.document_id
                )
            )
        )
    with runtime.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.options(*MESSAGE_OPTIONS)
            .order_by(t.Message.id.desc())
            .limit(flt.limit)
            .offset(flt.offset)
        )
        return list(rows), total


def outgoing_email(session: Session, message: t.Message) -> OutgoingEmail:
    """The exact email a message stands for, attachments loaded from the blob store."""
    parts = [
        AttachmentPart(
            a.filename, a.content_type, get_blob(session, a.blob_sha256), key=a.blob_sha256
        )
        for a in message.attachments
    ]
    return _email_of(message, parts)


@dataclass(frozen=True)
class ClaimedEmail:
    """A claimed message as the worker needs it: the email, what its retry budget counts,
    who this attempt goes to (``envelope``) and what earlier attempts got (``earlier``)."""

    email: OutgoingEmail
    company_id: int
    queued_at: datetime
    attempts_at_queue: int
    envelope: list[str] = field(default_factory=list)
    earlier: dict[str, RecipientState] = field(default_factory=dict)

    @property
    def delivered_to(self) -> list[str]:
        """Recipients an earlier attempt already delivered to."""
        return [a for a, s in self.earlier.items() if s.state == ACCEPTED]


def envelope_addresses(email: OutgoingEmail) -> list[str]:
    """The bare addresses of every recipient (To, Cc, Bcc), as RCPT TO takes them."""
    return [parseaddr(a)[1] for a in email.envelope_recipients]


def earlier_recipient_states(
    session: Session, messages: list[t.Message]
) -> dict[int, dict[str, RecipientState]]:
    """Per-recipient states after earlier partial attempts (only retries can have any)."""
    retries = [m.id for m in messages if m.attempts > 1]
    if not retries:
        return {}
    rows = session.execute(
        select(
            t.MessageAttempt.message_id,
            t.MessageAttempt.outcome,
            t.MessageAttempt.smtp_code,
            t.MessageAttempt.detail,
        )
        .where(t.MessageAttempt.message_id.in_(retries), t.MessageAttempt.outcome == "partial")
        .order_by(t.MessageAttempt.message_id, t.MessageAttempt.number)
    )
    partial: dict[int, list[Attempt]] = defaultdict(list)
    for message_id, outcome, code, detail in rows:
        partial[message_id].append((outcome, code, detail))
    return {mid: fold([], attempts) for mid, attempts in partial.items()}


def claimed_emails(session: Session, message_ids: list[int]) -> dict[int, ClaimedEmail]:
    """Several messages with their attachments in three queries (not three per message).

    Attachment parts carry their content hash, so ``render_bytes`` encodes the
    same bytes once however many messages carry them. A retry after a partial
    delivery goes only to the recipients still waiting (a fourth query, retries only).
    """
    messages = session.scalars(select(t.Message).where(t.Message.id.in_(message_ids))).all()
    attachments = session.scalars(
        select(t.MessageAttachment)
        .where(t.MessageAttachment.message_id.in_(message_ids))
        .order_by(t.MessageAttachment.id)
    ).all()
    blobs = get_blobs(session, (a.blob_sha256 for a in attachments))
    parts: dict[int, list[AttachmentPart]] = {m.id: [] for m in messages}
    for a in attachments:
        parts[a.message_id].append(
            AttachmentPart(a.filename, a.content_type, blobs[a.blob_sha256], key=a.blob_sha256)
        )
    earlier = earlier_recipient_states(session, list(messages))
    claimed = {}
    for m in messages:
        email = _email_of(m, parts[m.id])
        before = earlier.get(m.id, {})
        envelope = envelope_for_retry(envelope_addresses(email), before)
        claimed[m.id] = ClaimedEmail(
            email, m.company_id, m.queued_at, m.attempts_at_queue, envelope, before
        )
    return claimed


def _email_of(message: t.Message, attachments: list[AttachmentPart]) -> OutgoingEmail:
    return OutgoingEmail(
        message_id=message.message_id_header,
        date=message.date_header,
        from_email=message.from_email,
        from_name=message.from_name,
        to=list(message.to),
        cc=list(message.cc),
        bcc=list(message.bcc),
        subject=message.subject,
        body_text=message.body_text,
        body_html=message.body_html,
        attachments=attachments,
    )


def message_source(runtime: Runtime, actor: Actor, message_id: int) -> bytes:
    """The RFC 5322 bytes of a message (as sent, or as it will be sent)."""
    with runtime.session() as session:
        message = get_message_row(session, actor, message_id)
        return render_bytes(outgoing_email(session, message))


def resend_message(runtime: Runtime, actor: Actor, message_id: int) -> t.Message:
    """Queue a copy of a message with a new Message-ID, linked to the original."""
    actor.require(Role.SENDER)
    with runtime.session() as session:
        original = get_message_row(session, actor, message_id)
        now = runtime.clock()
        copy = t.Message(
            company_id=actor.company_id,
            account_id=original.account_id,
            resend_of_id=original.id,
            state=MessageState.QUEUED.value,
            message_id_header=new_message_id(original.from_email.rpartition("@")[2]),
            date_header=now,
            next_attempt_at=now,
            created_at=now,
            queued_at=now,
            from_email=original.from_email,
            from_name=original.from_name,
            to=list(original.to),
            cc=list(original.cc),
            bcc=list(original.bcc),
            subject=original.subject,
            body_html=original.body_html,
            body_text=original.body_text,
            created_by=actor.label[:200],  # the resend is this actor's, not the original's
        )
        copy.attachments = [attachment_row(a) for a in original.attachments]
        copy.document_links = [
            t.MessageDocument(document_id=link.document_id) for link in original.document_links
        ]
        session.add(copy)
        session.flush()
        store.notify_queued(session)
    runtime.wakeup()
    return copy


def cancel_message(runtime: Runtime, actor: Actor, message_id: int) -> t.Message:
    """Cancel a message that has not started sending; the documents are untouched."""
    actor.require(Role.SENDER)
    with runtime.session() as session:
        message = get_message_row(session, actor, message_id)
        result = session.execute(
            update(t.Message)
            .where(
                t.Message.id == message.id,
                t.Message.state.in_([s.value for s in CLAIMABLE_STATES]),
            )
            .values(state=MessageState.CANCELLED.value, updated_at=runtime.clock())
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise Conflict(
                f"message {message_id} is {message.state} and can no longer be cancelled",
                field="state",
                value=message.state,
            )
    return get_message(runtime, actor, message_id)
