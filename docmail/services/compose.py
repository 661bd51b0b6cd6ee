"""Compose: the pre-filled email for one document (or several of one party)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.domain.addresses import Mailbox
from docmail.domain.documents import DocumentStatus, check_sendable, default_type
from docmail.domain.recipients import RecipientPlan, plan_recipients
from docmail.errors import Conflict
from docmail.services.accounts import resolve_account
from docmail.services.doctypes import get_type_row, rule_of
from docmail.services.documents import get_document_row
from docmail.services.parties import party_info
from docmail.services.profiles import apply_country_profile
from docmail.services.runtime import Actor, Runtime
from docmail.services.templates import effective_template
from docmail.templates.engine import locale_for

GENERIC_TYPE = "document"


@dataclass(frozen=True)
class AttachmentRef:
    """A file the email will carry: stored bytes (by hash) under a name.

    ``id`` is the document attachment's id, or None for a file made while
    composing (e.g. a ZIP a country profile builds).
    """

    id: int | None
    blob_sha256: str
    filename: str
    content_type: str
    size: int
    # Bytes made while composing in a read-only session (not stored yet): whoever
    # queues the email stores them with the message, in its write transaction.
    content: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, row: t.DocumentAttachment) -> AttachmentRef:
        return cls(row.id, row.blob_sha256, row.filename, row.content_type, row.size)


@dataclass
class Composition:
    """What the compose step shows the user before they confirm."""

    document_ids: list[int]
    party_id: int
    to: list[Mailbox]
    cc: list[Mailbox]
    subject: str
    body_html: str
    body_text: str
    attachments: list[AttachmentRef]
    language: str
    locale: str
    account: t.MailAccount | None
    warnings: list[str] = field(default_factory=list)
    manual_address_required: bool = False
    blocked_reason: str | None = None


def document_context(doc: t.Document, type_name: str) -> dict[str, Any]:
    return {
        "type": doc.doc_type,
        "type_name": type_name,
        "number": doc.number,
        "issue_date": doc.issue_date,
        "due_date": doc.due_date,
        "total": doc.total,
        "currency": doc.currency,
        "status": doc.status,
        "fiscal_id": doc.fiscal_id,
        "data": dict(doc.data or {}),
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in doc.attachments
        ],
    }


def _type_name(type_row: t.DocumentType, language: str) -> str:
    default = default_type(type_row.code)
    if default is not None and type_row.name == default.rule.name:
        return default.names.get(language, type_row.name)
    return type_row.name


def template_context(
    company: t.Company,
    party: t.Party,
    docs: list[dict[str, Any]],
    account: t.MailAccount | None,
) -> dict[str, Any]:
    return {
        "document": docs[0],
        "documents": docs,
        "party": {
            "code": party.code,
            "name": party.name,
            "tax_id": party.tax_id,
            "email": party.email,
        },
        "company": {"name": company.name, "country": company.country},
        "sender": {
            "name": (account.from_name if account else "") or company.name,
            "email": account.from_email if account else "",
        },
    }


def _merge_plans(plans: list[RecipientPlan]) -> RecipientPlan:
    merged = RecipientPlan()
    seen: set[str] = set()
    for plan in plans:
        for target, source in ((merged.to, plan.to), (merged.cc, plan.cc)):
            for mailbox in source:
                if mailbox.email.lower() not in seen:
                    seen.add(mailbox.email.lower())
                    target.append(mailbox)
        merged.warnings.extend(w for w in plan.warnings if w not in merged.warnings)
        merged.manual_address_required |= plan.manual_address_required
    if merged.to:
        merged.manual_address_required = False
    return merged


def _blocked_reason(type_row: t.DocumentType, doc: t.Document) -> str | None:
    try:
        check_sendable(rule_of(type_row), doc.number, DocumentStatus(doc.status))
    except Conflict as exc:
        return exc.message
    return None


def _default_account(session: Session, actor: Actor) -> tuple[t.MailAccount | None, str | None]:
    try:
        return resolve_account(session, actor, None), None
    except Conflict as exc:
        return None, exc.message


def _memo(session: Session, key: tuple[str, ...], load: Callable[[], Any]) -> Any:
    """Remember settings read while composing, for the rest of this session.

    A batch chunk composes hundreds of emails in one session: the document type,
    template and default account are read once instead of once per email.
    """
    cache: dict[tuple[str, ...], Any] = session.info.setdefault("docmail_compose_cache", {})
    if key not in cache:
        cache[key] = load()
    return cache[key]


def _type_row(session: Session, actor: Actor, code: str) -> t.DocumentType:
    row: t.DocumentType = _memo(session, ("type", code), lambda: get_type_row(session, actor, code))
    return row


def compose_in_session(
    runtime: Runtime, session: Session, actor: Actor, docs: list[t.Document]
) -> Composition:
    """Compose one email for ``docs`` (all of one party) inside an open session."""
    party = docs[0].party
    company: t.Company = _memo(
        session, ("company",), lambda: session.get_one(t.Company, actor.company_id)
    )
    language = party.language
    types = {c: _type_row(session, actor, c) for c in dict.fromkeys(d.doc_type for d in docs)}
    plan = _merge_plans(
        [plan_recipients(rule_of(row), party_info(party)) for row in types.values()]
    )
    account, warning = _memo(session, ("account",), lambda: _default_account(session, actor))
    if warning:
        plan.warnings.append(warning)
    contexts = [document_context(d, _type_name(types[d.doc_type], language)) for d in docs]
    template_type = docs[0].doc_type if len(types) == 1 else GENERIC_TYPE
    template = _memo(
        session,
        ("template", template_type, language),
        lambda: effective_template(runtime, session, actor, template_type, language),
    )
    locale = locale_for(language, company.country)
    rendered = runtime.templates.render(
        template.source, template_context(company, party, contexts, account), locale
    )
    blocked = [r for d in docs if (r := _blocked_reason(types[d.doc_type], d))]
    composition = Composition(
        document_ids=[d.id for d in docs],
        party_id=party.id,
        to=plan.to,
        cc=plan.cc,
        subject=rendered.subject,
        body_html=rendered.body_html,
        body_text=rendered.body_text,
        attachments=[AttachmentRef.of(a) for d in docs for a in d.attachments],
        language=language,
        locale=locale,
        account=account,
        warnings=plan.warnings,
        manual_address_required=plan.manual_address_required,
        blocked_reason="; ".join(blocked) or None,
    )
    apply_country_profile(session, company, docs, composition)
    return composition


def compose(runtime: Runtime, actor: Actor, document_id: int) -> Composition:
    with runtime.read_session() as session:
        doc = get_document_row(session, actor, document_id)
        return compose_in_session(runtime, session, actor, [doc])
