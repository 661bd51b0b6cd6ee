"""Send: turn a composition plus the user's edits into a queued outbox message.

The message, its attachments and its links to documents are written in one
transaction; the worker delivers later. A repeated request with the same
idempotency key returns the first message instead of queueing a second one.
Sending never changes the documents themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.adapters.mime import new_message_id
from docmail.domain.addresses import (
    Mailbox,
    check_display_name,
    check_subject,
    parse_mailbox_list,
)
from docmail.domain.outbox import MessageState
from docmail.errors import Conflict, ValidationError
from docmail.services.accounts import resolve_account
from docmail.services.blobs import put_blobs
from docmail.services.compose import AttachmentRef, Composition, compose_in_session
from docmail.services.documents import get_document_row
from docmail.services.htmltext import html_to_text, text_to_html
from docmail.services.inputs import SendIn
from docmail.services.messages import MESSAGE_OPTIONS, attachment_values, get_message
from docmail.services.runtime import Actor, Role, Runtime

MAX_BODY_CHARS = 500_000


@dataclass(frozen=True)
class SendOutcome:
    message: t.Message
    replayed: bool  # True when the idempotency key matched an earlier request


def fingerprint(scope: str, edits: SendIn) -> str:
    payload = edits.model_dump(exclude={"idempotency_key"}, exclude_none=True)
    raw = json.dumps([scope, payload], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def find_by_key(session: Session, actor: Actor, key: str) -> t.Message | None:
    return session.scalar(
        select(t.Message)
        .where(t.Message.company_id == actor.company_id, t.Message.idempotency_key == key)
        .options(*MESSAGE_OPTIONS)
    )


def _replay(message: t.Message, print_: str) -> SendOutcome:
    if message.request_fingerprint not in (None, print_):
        raise Conflict(
            "this Idempotency-Key was already used for a different request; "
            "use a new key for a new email",
            field="idempotency_key",
            value=message.idempotency_key,
        )
    return SendOutcome(message, replayed=True)


def _recipients(composed: Composition, edits: SendIn) -> tuple[list[Mailbox], ...]:
    to = parse_mailbox_list(edits.to, "to") if edits.to is not None else composed.to
    cc = parse_mailbox_list(edits.cc, "cc") if edits.cc is not None else composed.cc
    bcc = parse_mailbox_list(edits.bcc, "bcc")
    if not to:
        hint = (
            "this document type needs a typed address"
            if composed.manual_address_required
            else ("the party has no contact for this document type")
        )
        raise ValidationError(f"to: give at least one recipient ({hint})", field="to", value=[])
    return to, cc, bcc


def _bodies(composed: Composition, edits: SendIn) -> tuple[str, str]:
    html, text = composed.body_html, composed.body_text
    if edits.body_html is not None and edits.body_text is None:
        html, text = edits.body_html, html_to_text(edits.body_html)
    elif edits.body_text is not None and edits.body_html is None:
        html, text = text_to_html(edits.body_text), edits.body_text
    elif edits.body_html is not None and edits.body_text is not None:
        html, text = edits.body_html, edits.body_text
    for name, value in (("body_html", html), ("body_text", text)):
        if len(value) > MAX_BODY_CHARS:
            raise ValidationError(
                f"{name} has {len(value)} characters; at most {MAX_BODY_CHARS}", field=name
            )
    return html, text


def _attachments(composed: Composition, keep: list[int] | None) -> list[AttachmentRef]:
    if keep is None:
        return composed.attachments
    by_id = {a.id: a for a in composed.attachments if a.id is not None}
    unknown = [i for i in keep if i not in by_id]
    if unknown:
        raise ValidationError(
            f"attachment_ids {unknown} are not attachments of this document",
            field="attachment_ids",
            value=unknown,
        )
    return [by_id[i] for i in keep]


@dataclass
class MessageDraft:
    """A message ready to insert: its column values, attachments and documents.

    Plain data, so a batch chunk can insert hundreds with multi-row statements
    (``outbox_store.insert_messages``); ``to_row()`` gives the ORM object instead.
    """

    values: dict[str, Any]
    attachments: list[dict[str, object]]
    document_ids: list[int]
    # Files composed in a read-only session, to store before the row (see AttachmentRef).
    new_blobs: list[bytes] = field(default_factory=list)

    def to_row(self) -> t.Message:
        message = t.Message(**self.values)
        message.attachments = [t.MessageAttachment(**a) for a in self.attachments]
        message.document_links = [t.MessageDocument(document_id=i) for i in self.document_ids]
        return message


def build_message_draft(
    runtime: Runtime, session: Session, actor: Actor, composed: Composition, edits: SendIn
) -> MessageDraft:
    """Validate the edits against the composition and build the message's values."""
    if composed.blocked_reason:
        raise Conflict(composed.blocked_reason, field="status")
    to, cc, bcc = _recipients(composed, edits)
    subject = check_subject(edits.subject if edits.subject is not None else composed.subject)
    html, text = _bodies(composed, edits)
    if edits.account_id is None and composed.account is not None:
        account = composed.account  # the company default, already read while composing
    else:
        account = resolve_account(session, actor, edits.account_id)
    now = runtime.clock()
    values = {
        "company_id": actor.company_id,
        "account_id": account.id,
        "state": MessageState.QUEUED.value,
        "from_email": account.from_email,
        "from_name": check_display_name(account.from_name, "from_name"),
        "to": [m.formatted() for m in to],
        "cc": [m.formatted() for m in cc],
        "bcc": [m.formatted() for m in bcc],
        "subject": subject,
        "body_html": html,
        "body_text": text,
        "message_id_header": new_message_id(account.from_email.rpartition("@")[2]),
        "date_header": now,
        "next_attempt_at": now,
        "created_at": now,
        "queued_at": now,
        "created_by": actor.label[:200],  # who queued it: user:..., token:..., automation:...
    }
    chosen = _attachments(composed, edits.attachment_ids)
    attachments = [attachment_values(a) for a in chosen]
    made = [a.content for a in chosen if a.content is not None]
    return MessageDraft(values, attachments, list(composed.document_ids), made)


def build_message_row(
    runtime: Runtime, session: Session, actor: Actor, composed: Composition, edits: SendIn
) -> t.Message:
    """Validate the edits against the composition and build (not yet add) the outbox row."""
    return build_message_draft(runtime, session, actor, composed, edits).to_row()


def _queue(
    runtime: Runtime,
    actor: Actor,
    key: str | None,
    print_: str,
    make: Callable[[Session], MessageDraft],
) -> SendOutcome:
    """Compose in a read session, then write the message in a short transaction.

    The template renders (up to its time limit) with no write lock held: on SQLite
    a write transaction is the whole database's lock, and one company's slow
    template must not make every other request wait. A key seen before answers
    the earlier message, before and again inside the write (a concurrent twin).
    """
    with runtime.read_session() as session:
        if key and (earlier := find_by_key(session, actor, key)) is not None:
            return _replay(earlier, print_)
        draft = make(session)
    try:
        with runtime.session() as session:
            if key and (earlier := find_by_key(session, actor, key)) is not None:
                return _replay(earlier, print_)
            put_blobs(session, draft.new_blobs)
            message = draft.to_row()
            message.idempotency_key, message.request_fingerprint = key, print_
            session.add(message)
            session.flush()
            store.notify_queued(session)
    except IntegrityError:
        if not key:
            raise
        with runtime.session() as session:  # a concurrent twin won the race: return it
            earlier = find_by_key(session, actor, key)
            if earlier is None:
                raise
            return _replay(earlier, print_)
    runtime.wakeup()
    # Answer from a fresh read: what was committed, with every relation loaded.
    return SendOutcome(get_message(runtime, actor, message.id), replayed=False)


def send_document(
    runtime: Runtime, actor: Actor, document_id: int, edits: SendIn, key: str | None = None
) -> SendOutcome:
    """Queue the email for one document with the user's edits applied."""
    actor.require(Role.SENDER)
    key = key or edits.idempotency_key

    def make(session: Session) -> MessageDraft:
        doc = get_document_row(session, actor, document_id)
        composed = compose_in_session(runtime, session, actor, [doc])
        return build_message_draft(runtime, session, actor, composed, edits)

    return _queue(runtime, actor, key, fingerprint(f"doc:{document_id}", edits), make)
