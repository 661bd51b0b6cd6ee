"""Import e-invoice files (CFDI, NF-e/CT-e, DIAN UBL) as stamped documents.

The XML is parsed and, when no printed form is supplied, a PDF is rendered
before any database work; then party and document are written in one
transaction, so a refused file leaves nothing behind. Importing the same
document again (same type and number) returns the stored one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.adapters.pdf import html_to_pdf
from docmail.domain.documents import DocumentStatus, default_type, parse_language
from docmail.einvoice import EInvoice, parse_einvoice
from docmail.einvoice.model import COUNTRY_LANGUAGE
from docmail.einvoice.printed import printed_form_html
from docmail.errors import Conflict, ValidationError
from docmail.services.automation_events import record_event
from docmail.services.blobs import AttachmentData, check_size, put_blob
from docmail.services.companies import document_type_row
from docmail.services.compose import (
    Composition,
    compose_in_session,
    document_context,
    template_context,
)
from docmail.services.doctypes import get_type_row
from docmail.services.documents import get_document, get_document_row
from docmail.services.inputs import SendIn
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.sending import (
    MessageDraft,
    SendOutcome,
    _queue,
    build_message_draft,
    fingerprint,
)
from docmail.services.templates import effective_template

CANCELLATION = "cancellation"  # notice template: templates/defaults/*/cancellation.txt
XML_TYPE = "application/xml"
PDF_TYPE = "application/pdf"
_CODE_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]")


@dataclass(frozen=True)
class ImportedEInvoice:
    document: t.Document
    created: bool  # False: this document was imported before and is returned unchanged
    party_created: bool


def import_einvoice(
    runtime: Runtime,
    actor: Actor,
    xml: bytes,
    pdf: bytes | None = None,
    party_language: str | None = None,
) -> ImportedEInvoice:
    """Store the e-invoice in ``xml`` (byte for byte) with its printed form as a document.

    ``pdf`` is the ERP's printed form; without it docmail renders one. A party is
    matched by the receiver's tax id, or created (code = tax id, language by
    country unless ``party_language``).
    """
    actor.require(Role.SENDER)
    limit = runtime.settings.max_attachment_bytes
    if party_language is not None:
        parse_language(party_language, "party_language")
    invoice = parse_einvoice(xml, limit)
    if pdf is not None:
        check_size(pdf, "pdf", limit)
        if not pdf.startswith(b"%PDF-"):
            raise ValidationError("pdf is not a PDF file (it must start with %PDF-)", field="pdf")
    files = _files(invoice, xml, pdf)
    try:
        return _store(runtime, actor, invoice, files, party_language)
    except IntegrityError:
        # A concurrent import of the same document won: answer with that one.
        return _store(runtime, actor, invoice, files, party_language)


def _files(invoice: EInvoice, xml: bytes, pdf: bytes | None) -> list[AttachmentData]:
    stem = _CODE_UNSAFE.sub("_", invoice.fiscal_id if invoice.country != "CO" else invoice.number)
    printed = pdf if pdf is not None else html_to_pdf(printed_form_html(invoice))
    return [
        AttachmentData(f"{stem}.xml", XML_TYPE, xml),
        AttachmentData(f"{stem}.pdf", PDF_TYPE, printed),
    ]


def _store(
    runtime: Runtime,
    actor: Actor,
    invoice: EInvoice,
    files: list[AttachmentData],
    party_language: str | None,
) -> ImportedEInvoice:
    with runtime.session() as session:
        _ensure_type(session, actor, invoice.doc_type)
        found = _existing(session, actor, invoice)
        if found is not None:
            found_id = found.id
    if found is not None:
        return ImportedEInvoice(get_document(runtime, actor, found_id), False, False)
    with runtime.session() as session:
        party, party_created = _party(session, actor, invoice, party_language)
        doc = t.Document(
            company_id=actor.company_id,
            doc_type=invoice.doc_type,
            number=invoice.number,
            party_id=party.id,
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            total=invoice.total,
            currency=invoice.currency,
            status=DocumentStatus.STAMPED.value,
            fiscal_id=invoice.fiscal_id,
            data=invoice.document_data(),
        )
        session.add(doc)
        for item in files:
            doc.attachments.append(
                t.DocumentAttachment(
                    blob_sha256=put_blob(session, item.data),
                    filename=item.filename,
                    content_type=item.content_type,
                    size=len(item.data),
                )
            )
        session.flush()
        doc_id = doc.id
        # Imported e-invoices concern auto-send rules like any new document.
        record_event(session, actor, doc_id, invoice.doc_type, "created")
    runtime.wakeup()
    return ImportedEInvoice(get_document(runtime, actor, doc_id), True, party_created)


def _existing(session: Session, actor: Actor, invoice: EInvoice) -> t.Document | None:
    found = session.scalar(
        select(t.Document).where(
            t.Document.company_id == actor.company_id,
            t.Document.doc_type == invoice.doc_type,
            t.Document.number == invoice.number,
        )
    )
    if found is None:
        return None
    if found.fiscal_id and found.fiscal_id.lower() != invoice.fiscal_id.lower():
        raise Conflict(
            f"{invoice.doc_type} {invoice.number} exists with fiscal id {found.fiscal_id}, "
            f"not {invoice.fiscal_id}; a different document cannot reuse its number",
            field="file",
            value=invoice.number,
        )
    return found


def _ensure_type(session: Session, actor: Actor, code: str) -> None:
    """Companies created before a default type existed (e.g. ``cte``) get it on first use."""
    exists = session.scalar(
        select(t.DocumentType.id).where(
            t.DocumentType.company_id == actor.company_id, t.DocumentType.code == code
        )
    )
    default = default_type(code)
    if exists is not None or default is None:
        return
    session.add(document_type_row(actor.company_id, default.rule))
    session.flush()


def _party(
    session: Session, actor: Actor, invoice: EInvoice, language: str | None
) -> tuple[t.Party, bool]:
    tax_id = invoice.receiver.tax_id
    party = session.scalar(
        select(t.Party)
        .where(t.Party.company_id == actor.company_id, t.Party.tax_id == tax_id)
        .order_by(t.Party.id)
        .limit(1)
    )
    if party is not None:
        return party, False
    code = _free_code(session, actor, _CODE_UNSAFE.sub("_", tax_id)[:64])
    party = t.Party(
        company_id=actor.company_id,
        code=code,
        name=(invoice.receiver.name or tax_id)[:300],
        tax_id=tax_id,
        language=language or COUNTRY_LANGUAGE.get(invoice.country, "es"),
    )
    session.add(party)
    session.flush()
    return party, True


def _free_code(session: Session, actor: Actor, code: str) -> str:
    """``code``, or ``code-2``, ``code-3``... when a party with another tax id holds it."""
    candidate, n = code, 1
    while session.scalar(
        select(t.Party.id).where(t.Party.company_id == actor.company_id, t.Party.code == candidate)
    ):
        n += 1
        candidate = f"{code[:60]}-{n}"
    return candidate


def import_summary(result: ImportedEInvoice) -> dict[str, Any]:
    """The fields the API and CLI report besides the document itself."""
    return {"created": result.created, "party_created": result.party_created}


# ---------------------------------------------------------------- cancellation notices


def _type_name(row: t.DocumentType, language: str) -> str:
    default = default_type(row.code)
    if default is not None and row.name == default.rule.name:
        return default.names.get(language, row.name)
    return row.name


def _cancellation_in_session(
    runtime: Runtime, session: Session, actor: Actor, document_id: int
) -> Composition:
    doc = get_document_row(session, actor, document_id)
    if doc.status != DocumentStatus.CANCELLED.value:
        raise Conflict(
            f"{doc.doc_type} {doc.number} is {doc.status}; only a cancelled document "
            "can be announced as cancelled (PATCH its status to cancelled first)",
            field="status",
            value=doc.status,
        )
    # The document's own email gives the recipients, account and language.
    composed = compose_in_session(runtime, session, actor, [doc])
    company = session.get_one(t.Company, actor.company_id)
    name = _type_name(get_type_row(session, actor, doc.doc_type), composed.language)
    context = template_context(company, doc.party, [document_context(doc, name)], composed.account)
    context["document"]["attachments"] = context["documents"][0]["attachments"] = []
    template = effective_template(runtime, session, actor, CANCELLATION, composed.language)
    rendered = runtime.templates.render(template.source, context, composed.locale)
    return replace(
        composed,
        subject=rendered.subject,
        body_html=rendered.body_html,
        body_text=rendered.body_text,
        attachments=[],
        blocked_reason=None,
    )


def compose_cancellation(runtime: Runtime, actor: Actor, document_id: int) -> Composition:
    """The pre-filled notice that a cancelled document is void: same recipients, no files."""
    with runtime.read_session() as session:
        return _cancellation_in_session(runtime, session, actor, document_id)


def announce_cancellation(
    runtime: Runtime, actor: Actor, document_id: int, edits: SendIn, key: str | None = None
) -> SendOutcome:
    """Queue the cancellation notice of a cancelled document (idempotent with ``key``)."""
    actor.require(Role.SENDER)
    key = key or edits.idempotency_key

    def make(session: Session) -> MessageDraft:
        composed = _cancellation_in_session(runtime, session, actor, document_id)
        return build_message_draft(runtime, session, actor, composed, edits)

    return _queue(runtime, actor, key, fingerprint(f"cancel:{document_id}", edits), make)
