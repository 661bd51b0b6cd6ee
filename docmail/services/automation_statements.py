"""Account statements: build (pure, ``docmail.automation.statements``), print, email.

A statement is emailed as a ``statement`` document (number
``<party code>-<as of>``, total = balance when there is one currency) with its
PDF attached, through the normal compose/send path, once per party and as-of
date (key ``statement_key``). The PDF is rendered before the write
transaction, so the database lock is never held while WeasyPrint works.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.automation.policy import statement_key
from docmail.automation.statement_html import statement_html
from docmail.automation.statements import SIGNS, LedgerEntry, Statement, build_statement
from docmail.domain.documents import default_type
from docmail.errors import NotFound
from docmail.services.automation_queue import PlanItem, Prepared, Scope, find_outcome, queue_once
from docmail.services.blobs import put_blob
from docmail.services.compose import compose_in_session
from docmail.services.runtime import Actor, Role, Runtime

STATEMENT = "statement"
NOTHING_OPEN = "no open documents"
PdfRenderer = Callable[[str], bytes]


def _default_renderer(html: str) -> bytes:
    from docmail.adapters.pdf import html_to_pdf  # WeasyPrint loads on first use

    return html_to_pdf(html)


def _entries(session: Session, actor: Actor, party_id: int) -> list[LedgerEntry]:
    rows = session.scalars(
        select(t.Document).where(
            t.Document.company_id == actor.company_id,
            t.Document.party_id == party_id,
            t.Document.doc_type.in_(list(SIGNS)),
        )
    )
    return [
        LedgerEntry(
            d.doc_type,
            d.number,
            d.status,
            d.issue_date,
            d.due_date,
            d.total,
            d.currency,
            dict(d.data or {}),
        )
        for d in rows
    ]


def _party(session: Session, actor: Actor, code: str) -> t.Party:
    party = session.scalar(
        select(t.Party).where(t.Party.company_id == actor.company_id, t.Party.code == code)
    )
    if party is None:
        raise NotFound(f"party {code!r} not found", field="party_codes", value=code)
    return party


def _type_names(language: str) -> dict[str, str]:
    names = {}
    for code in SIGNS:
        default = default_type(code)
        if default is not None:
            names[code] = default.names.get(language, default.rule.name)
    return names


def statement_of(runtime: Runtime, actor: Actor, party_code: str, as_of: date) -> Statement:
    """The party's statement as of a date (open items, aging buckets, balance)."""
    with runtime.session() as session:
        party = _party(session, actor, party_code)
        return build_statement(party.code, party.name, _entries(session, actor, party.id), as_of)


def render_statement(
    runtime: Runtime,
    actor: Actor,
    party_code: str,
    as_of: date,
    renderer: PdfRenderer | None = None,
) -> tuple[Statement, str, bytes | None]:
    """The statement, its HTML, and its PDF (None when ``renderer`` is given as a no-op)."""
    with runtime.session() as session:
        party = _party(session, actor, party_code)
        company = session.get_one(t.Company, actor.company_id)
        statement = build_statement(
            party.code, party.name, _entries(session, actor, party.id), as_of
        )
        language, country, company_name = party.language, company.country, company.name
    html = statement_html(statement, company_name, language, country, _type_names(language))
    return statement, html, (renderer or _default_renderer)(html)


def _statement_doc(
    session: Session, actor: Actor, party: t.Party, statement: Statement, pdf: bytes | None
) -> t.Document:
    number = f"{party.code}-{statement.as_of.isoformat()}"
    found = session.scalar(
        select(t.Document).where(
            t.Document.company_id == actor.company_id,
            t.Document.doc_type == STATEMENT,
            t.Document.number == number,
        )
    )
    if found is not None:
        return found
    single = statement.sections[0] if len(statement.sections) == 1 else None
    doc = t.Document(
        company_id=actor.company_id,
        doc_type=STATEMENT,
        number=number,
        party_id=party.id,
        issue_date=statement.as_of,
        total=single.balance if single else None,
        currency=(single.currency or None) if single else None,
        status="issued",
        data={
            "as_of": statement.as_of.isoformat(),
            "balances": {s.currency: str(s.balance) for s in statement.sections},
        },
    )
    session.add(doc)
    if pdf is not None:
        safe = party.code.replace("/", "-")
        doc.attachments.append(
            t.DocumentAttachment(
                blob_sha256=put_blob(session, pdf),
                filename=f"statement-{safe}-{statement.as_of.isoformat()}.pdf",
                content_type="application/pdf",
                size=len(pdf),
            )
        )
    session.flush()
    session.refresh(doc, ["party", "attachments"])
    return doc


def _party_codes(runtime: Runtime, actor: Actor, codes: list[str] | None) -> list[str]:
    with runtime.session() as session:
        if codes is not None:
            return [_party(session, actor, c).code for c in codes]
        return list(
            session.scalars(
                select(t.Party.code)
                .where(t.Party.company_id == actor.company_id)
                .order_by(t.Party.code)
            )
        )


def _already(runtime: Runtime, actor: Actor, code: str, as_of: date) -> bool:
    with runtime.session() as session:
        party_id = _party(session, actor, code).id
        return find_outcome(session, actor, statement_key(party_id, as_of)) is not None


def send_statement(
    runtime: Runtime,
    actor: Actor,
    party_code: str,
    as_of: date,
    *,
    dry_run: bool = False,
    renderer: PdfRenderer | None = None,
) -> PlanItem | None:
    """Email one party's statement once per as-of date; None when nothing is open."""
    if dry_run:
        renderer = lambda html: b""  # noqa: E731 - the plan needs no PDF
    elif _already(runtime, actor, party_code, as_of):
        renderer = lambda html: b""  # noqa: E731 - answered from the recorded outcome
    statement, _html, pdf = render_statement(runtime, actor, party_code, as_of, renderer)
    if statement.empty:
        return None

    def build(session: Session) -> Prepared:
        party = _party(session, actor, party_code)
        doc = _statement_doc(session, actor, party, statement, pdf or None)
        return Prepared(party, doc, compose_in_session(runtime, session, actor, [doc]))

    with runtime.session() as session:
        key = statement_key(_party(session, actor, party_code).id, as_of)
    scope = Scope(STATEMENT)
    return queue_once(runtime, actor, key, scope, build, dry_run=dry_run)


def send_statements(
    runtime: Runtime,
    actor: Actor,
    as_of: date,
    party_codes: list[str] | None = None,
    *,
    dry_run: bool = False,
) -> list[PlanItem]:
    """Email the statement of each party (all parties when ``party_codes`` is None)."""
    actor.require(Role.SENDER)
    items = []
    for code in _party_codes(runtime, actor, party_codes):
        item = send_statement(runtime, actor, code, as_of, dry_run=dry_run)
        if item is not None:
            items.append(item)
    return items


def statement_balance(statement: Statement) -> dict[str, Decimal]:
    return {s.currency: s.balance for s in statement.sections}
