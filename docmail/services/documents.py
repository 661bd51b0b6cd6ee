"""Documents: created idempotently by number, with attachments stored content-addressed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from docmail.adapters.db import tables as t
from docmail.errors import NotFound
from docmail.services.automation_events import record_event
from docmail.services.blobs import AttachmentData, check_size, decode_base64, get_blob, put_blob
from docmail.services.doctypes import get_type_row
from docmail.services.inputs import DocumentIn, DocumentPatch
from docmail.services.parties import find_party_by_code
from docmail.services.runtime import Actor, Role, Runtime

_DOC_OPTIONS = (
    selectinload(t.Document.attachments),
    selectinload(t.Document.party).selectinload(t.Party.contacts),
)


@dataclass(frozen=True)
class CreatedDocument:
    document: t.Document
    created: bool  # False when the number existed: the request was a harmless repeat


def get_document_row(session: Session, actor: Actor, document_id: int) -> t.Document:
    doc = session.get(t.Document, document_id, options=list(_DOC_OPTIONS))
    if doc is None or doc.company_id != actor.company_id:
        raise NotFound(f"document {document_id} not found", field="document_id", value=document_id)
    return doc


def _existing(session: Session, actor: Actor, doc_type: str, number: str) -> t.Document | None:
    return session.scalar(
        select(t.Document)
        .where(
            t.Document.company_id == actor.company_id,
            t.Document.doc_type == doc_type,
            t.Document.number == number,
        )
        .options(*_DOC_OPTIONS)
    )


def decode_attachments(runtime: Runtime, data: DocumentIn) -> list[AttachmentData]:
    limit = runtime.settings.max_attachment_bytes
    return [
        AttachmentData(
            a.filename,
            a.content_type,
            decode_base64(a.content_base64, f"attachments[{i}].content_base64", limit),
        )
        for i, a in enumerate(data.attachments)
    ]


def document_values(data: DocumentIn) -> dict[str, Any]:
    """The document's own columns from the input (not type, party, attachments or run)."""
    values = data.model_dump(exclude={"type", "party_code", "attachments", "run"}, mode="json")
    values.update(total=data.total, issue_date=data.issue_date, due_date=data.due_date)
    return values


def _attach(session: Session, doc: t.Document, files: list[AttachmentData], limit: int) -> None:
    for index, item in enumerate(files):
        check_size(item.data, f"attachments[{index}]", limit)
        digest = put_blob(session, item.data)
        doc.attachments.append(
            t.DocumentAttachment(
                blob_sha256=digest,
                filename=item.filename,
                content_type=item.content_type,
                size=len(item.data),
            )
        )


def create_document(
    runtime: Runtime, actor: Actor, data: DocumentIn, files: list[AttachmentData] | None = None
) -> CreatedDocument:
    """Store a document; the same type and number again returns the stored one unchanged."""
    actor.require(Role.SENDER)
    files = decode_attachments(runtime, data) + list(files or [])
    try:
        with runtime.session() as session:
            get_type_row(session, actor, data.type)
            found = _existing(session, actor, data.type, data.number)
            if found is not None:
                return CreatedDocument(found, created=False)
            party = find_party_by_code(session, actor, data.party_code, "party_code")
            doc = t.Document(
                company_id=actor.company_id,
                doc_type=data.type,
                party_id=party.id,
                **document_values(data),
            )
            session.add(doc)
            _attach(session, doc, files, runtime.settings.max_attachment_bytes)
            session.flush()
            doc_id = doc.id
            record_event(session, actor, doc_id, data.type, "created", data.run)
    except IntegrityError:
        # A concurrent request created the same number first: return that one.
        with runtime.session() as session:
            found = _existing(session, actor, data.type, data.number)
            if found is None:
                raise
            return CreatedDocument(found, created=False)
    runtime.wakeup()  # workers evaluate the document's automation event
    return CreatedDocument(get_document(runtime, actor, doc_id), created=True)


def add_attachments(
    runtime: Runtime, actor: Actor, document_id: int, files: list[AttachmentData]
) -> t.Document:
    actor.require(Role.SENDER)
    with runtime.session() as session:
        doc = get_document_row(session, actor, document_id)
        _attach(session, doc, files, runtime.settings.max_attachment_bytes)
    return get_document(runtime, actor, document_id)


def update_document(
    runtime: Runtime, actor: Actor, document_id: int, patch: DocumentPatch
) -> t.Document:
    actor.require(Role.SENDER)
    with runtime.session() as session:
        doc = get_document_row(session, actor, document_id)
        for key, value in patch.model_dump(exclude_unset=True).items():
            setattr(doc, key, value)
        if patch.status is not None:
            record_event(session, actor, doc.id, doc.doc_type, f"status:{patch.status}")
    if patch.status is not None:
        runtime.wakeup()
    return get_document(runtime, actor, document_id)


def get_document(runtime: Runtime, actor: Actor, document_id: int) -> t.Document:
    with runtime.session() as session:
        return get_document_row(session, actor, document_id)


def attachment_content(
    runtime: Runtime, actor: Actor, document_id: int, attachment_id: int
) -> tuple[t.DocumentAttachment, bytes]:
    with runtime.session() as session:
        doc = get_document_row(session, actor, document_id)
        for attachment in doc.attachments:
            if attachment.id == attachment_id:
                return attachment, get_blob(session, attachment.blob_sha256)
    raise NotFound(
        f"attachment {attachment_id} not found on document {document_id}",
        field="attachment_id",
        value=attachment_id,
    )


@dataclass(frozen=True)
class DocumentFilter:
    type: str | None = None
    status: str | None = None
    party_code: str | None = None
    number: str | None = None
    sent: str | None = None  # "sent" | "unsent" | "failed"
    limit: int = 50
    offset: int = 0


def _message_exists(state: str | None) -> object:
    link = (
        select(t.MessageDocument.document_id)
        .join(t.Message, t.Message.id == t.MessageDocument.message_id)
        .where(t.MessageDocument.document_id == t.Document.id)
    )
    if state:
        link = link.where(t.Message.state == state)
    return exists(link)


def list_documents(
    runtime: Runtime, actor: Actor, flt: DocumentFilter
) -> tuple[list[t.Document], int]:
    query = select(t.Document).where(t.Document.company_id == actor.company_id)
    if flt.type:
        query = query.where(t.Document.doc_type == flt.type)
    if flt.status:
        query = query.where(t.Document.status == flt.status)
    if flt.number:
        query = query.where(t.Document.number.contains(flt.number, autoescape=True))
    if flt.party_code:
        query = query.join(t.Party).where(t.Party.code == flt.party_code)
    if flt.sent == "sent":
        query = query.where(_message_exists("sent"))  # type: ignore[arg-type]
    elif flt.sent == "unsent":
        query = query.where(~_message_exists(None))  # type: ignore[operator]
    elif flt.sent == "failed":
        query = query.where(_message_exists("failed"))  # type: ignore[arg-type]
    with runtime.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.options(*_DOC_OPTIONS)
            .order_by(t.Document.id.desc())
            .limit(flt.limit)
            .offset(flt.offset)
        )
        return list(rows), total
