"""Creating many documents in one transaction: what an ERP's nightly export needs.

The same rules as :func:`docmail.services.documents.create_document` (idempotent
by type and number, attachments content-addressed, automation told afterwards),
but each kind of row is written with one multi-row statement per call instead
of one ORM object at a time. All or nothing: one bad document (unknown party,
bad base64, too large) rejects the whole call, naming the item by its index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.errors import DocmailError, NotFound, ValidationError
from docmail.services.automation_events import concerned_types, record_event
from docmail.services.blobs import AttachmentData, check_size, put_blobs
from docmail.services.doctypes import get_type_row
from docmail.services.documents import decode_attachments, document_values
from docmail.services.inputs import DocumentIn
from docmail.services.runtime import Actor, Role, Runtime

MAX_DOCUMENTS_PER_CALL = 1000


@dataclass(frozen=True)
class BulkCreated:
    """One item's outcome: its document id, and False when that number already existed."""

    index: int
    id: int
    number: str
    created: bool


def _prefixed(exc: DocmailError, index: int) -> DocmailError:
    field = f"documents[{index}].{exc.field}" if exc.field else f"documents[{index}]"
    return type(exc)(f"documents[{index}]: {exc.message}", field=field, value=exc.value)


def _decode(
    runtime: Runtime, items: list[DocumentIn], raw: list[list[AttachmentData]] | None
) -> list[list[AttachmentData]]:
    limit = runtime.settings.max_attachment_bytes
    decoded = []
    for index, item in enumerate(items):
        try:
            files = decode_attachments(runtime, item) + (raw[index] if raw is not None else [])
            for n, file in enumerate(files):
                check_size(file.data, f"attachments[{n}]", limit)
        except DocmailError as exc:
            raise _prefixed(exc, index) from exc
        decoded.append(files)
    return decoded


def _check_unique(items: list[DocumentIn]) -> None:
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        key = (item.type, item.number)
        if key in seen:
            raise ValidationError(
                f"documents[{index}]: {item.type} {item.number!r} is also documents[{seen[key]}]",
                field=f"documents[{index}].number",
                value=item.number,
            )
        seen[key] = index


def _party_ids(session: Session, actor: Actor, items: list[DocumentIn]) -> dict[str, int]:
    codes = {item.party_code for item in items}
    found = dict(
        session.execute(
            select(t.Party.code, t.Party.id).where(
                t.Party.company_id == actor.company_id, t.Party.code.in_(codes)
            )
        ).all()
    )
    for index, item in enumerate(items):
        if item.party_code not in found:
            raise NotFound(
                f"documents[{index}]: party with code {item.party_code!r} not found",
                field=f"documents[{index}].party_code",
                value=item.party_code,
            )
    return found


def _existing(
    session: Session, actor: Actor, items: list[DocumentIn]
) -> dict[tuple[str, str], int]:
    keys = [(item.type, item.number) for item in items]
    rows = session.execute(
        select(t.Document.doc_type, t.Document.number, t.Document.id).where(
            t.Document.company_id == actor.company_id,
            tuple_(t.Document.doc_type, t.Document.number).in_(keys),
        )
    )
    return {(kind, number): doc_id for kind, number, doc_id in rows}


def _document_row(actor: Actor, item: DocumentIn, party_id: int) -> dict[str, Any]:
    now = t.utcnow()
    return {
        **document_values(item),
        "company_id": actor.company_id,
        "doc_type": item.type,
        "party_id": party_id,
        "created_at": now,
        "updated_at": now,
    }


def _insert_new(
    session: Session,
    actor: Actor,
    new: list[tuple[int, DocumentIn, list[AttachmentData]]],
    parties: dict[str, int],
) -> dict[int, int]:
    """Insert the new documents and their attachments; return item index -> document id."""
    if not new:
        return {}
    rows = [_document_row(actor, item, parties[item.party_code]) for _, item, _ in new]
    ids = session.scalars(
        insert(t.table_of(t.Document)).returning(t.Document.id, sort_by_parameter_order=True), rows
    ).all()
    files = [f for _, _, item_files in new for f in item_files]
    digests = iter(put_blobs(session, [f.data for f in files]))
    attachment_rows = [
        {
            "document_id": doc_id,
            "blob_sha256": next(digests),
            "filename": f.filename,
            "content_type": f.content_type,
            "size": len(f.data),
        }
        for doc_id, (_, _, item_files) in zip(ids, new, strict=True)
        for f in item_files
    ]
    if attachment_rows:
        session.execute(insert(t.table_of(t.DocumentAttachment)), attachment_rows)
    return {index: doc_id for (index, _, _), doc_id in zip(new, ids, strict=True)}


def create_documents(
    runtime: Runtime,
    actor: Actor,
    items: list[DocumentIn],
    files: list[list[AttachmentData]] | None = None,
) -> list[BulkCreated]:
    """Store many documents at once; numbers that already exist are returned unchanged.

    ``files``, when given, holds raw attachments per item (in addition to any
    base64 ``attachments`` in the items), for callers that hold bytes already.
    """
    if files is not None and len(files) != len(items):
        raise ValidationError(
            f"files has {len(files)} lists for {len(items)} documents; give one list per document",
            field="files",
            value=len(files),
        )
    try:
        return _create_documents(runtime, actor, items, files)
    except IntegrityError:
        # A concurrent call stored some of the same numbers first: those now count as existing.
        return _create_documents(runtime, actor, items, files)


def _create_documents(
    runtime: Runtime,
    actor: Actor,
    items: list[DocumentIn],
    files: list[list[AttachmentData]] | None,
) -> list[BulkCreated]:
    actor.require(Role.SENDER)
    if len(items) > MAX_DOCUMENTS_PER_CALL:
        raise ValidationError(
            f"documents has {len(items)} items; send at most {MAX_DOCUMENTS_PER_CALL} per call",
            field="documents",
            value=len(items),
        )
    _check_unique(items)
    decoded = _decode(runtime, items, files)
    with runtime.session() as session:
        for kind, index in {item.type: i for i, item in enumerate(items)}.items():
            try:
                get_type_row(session, actor, kind)
            except DocmailError as exc:
                raise _prefixed(exc, index) from exc
        parties = _party_ids(session, actor, items)
        existing = _existing(session, actor, items)
        new = [
            (i, item, decoded[i])
            for i, item in enumerate(items)
            if (item.type, item.number) not in existing
        ]
        created = _insert_new(session, actor, new, parties)
        _record_events(session, actor, items, created)
    results = [
        BulkCreated(
            i,
            created.get(i) or existing[(item.type, item.number)],
            item.number,
            i in created,
        )
        for i, item in enumerate(items)
    ]
    return results


def _record_events(
    session: Session, actor: Actor, items: list[DocumentIn], created: dict[int, int]
) -> None:
    """Automation events for the new documents, in their transaction (one query for rules)."""
    if not created:
        return
    concerned = concerned_types(session, actor.company_id, {items[i].type for i in created})
    for index, doc_id in created.items():
        item = items[index]
        record_event(session, actor, doc_id, item.type, "created", item.run, concerned=concerned)
