"""Settings (admin): parties with their contacts and roles, and the template editor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError as PydanticError
from starlette.datastructures import FormData

from docmail.adapters.db import tables as t
from docmail.domain.documents import LANGUAGES
from docmail.errors import Conflict, DocmailError, TemplateError, ValidationError
from docmail.services import parties, templates
from docmail.services.compose import document_context, template_context
from docmail.services.documents import get_document_row
from docmail.services.inputs import ContactIn, PartyIn, PartyPatch, TemplateIn
from docmail.services.runtime import Actor, Runtime
from docmail.templates.engine import RenderedEmail, TemplateSource, locale_for
from docmail.web.forms import Posted, checked, field_errors, optional, text, words
from docmail.web.queries import PAGE_SIZE, recent_documents
from docmail.web.routing import Admin, AdminPost, WebRoute, render, runtime_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)
KNOWN_ROLES = ("finance", "einvoice")
BLANK_CONTACTS = 2


@router.get("/settings/parties")
def party_list(request: Request, signed: Admin) -> Response:
    search = request.query_params.get("q", "").strip()
    page_text = request.query_params.get("page", "1")
    page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
    rows, total = parties.list_parties(
        runtime_of(request),
        signed.actor,
        search=search or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render(
        request, "settings/parties.html", rows=rows, total=total, q=search, page=page, pages=pages
    )


def _contacts(form: FormData) -> list[ContactIn]:
    count = int(text(form, "contact_rows") or "0")
    contacts = []
    for i in range(min(count, 200)):
        email = text(form, f"c-{i}-email")
        if not email or checked(form, f"c-{i}-remove"):
            continue
        roles = [r for r in form.getlist(f"c-{i}-role") if isinstance(r, str)]
        contacts.append(
            ContactIn(
                name=text(form, f"c-{i}-name"),
                email=email,
                roles=roles + words(text(form, f"c-{i}-other")),
            )
        )
    return contacts


def _party_values(form: FormData) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "tax_id": optional(form, "tax_id"),
        "email": optional(form, "email"),
        "language": text(form, "language") or "es",
    }


def _party_form(
    request: Request,
    party: t.Party | None,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    contacts = [
        {"name": c.name, "email": c.email, "roles": list(c.roles), "bouncing": c.bouncing}
        for c in (party.contacts if party else [])
    ]
    contacts += [{"name": "", "email": "", "roles": [], "bouncing": False}] * BLANK_CONTACTS
    return render(
        request,
        "settings/party_form.html",
        status,
        party=party,
        values=values,
        errors=errors,
        contacts=contacts,
        known_roles=KNOWN_ROLES,
        languages=LANGUAGES,
    )


@router.get("/settings/parties/new")
def party_new(request: Request, signed: Admin) -> Response:
    return _party_form(request, None, {"language": "es"}, {})


@router.post("/settings/parties/new")
def party_create(request: Request, signed: AdminPost, form: Posted) -> Response:
    values = {**_party_values(form), "code": text(form, "code")}
    try:
        data = PartyIn(**values, contacts=_contacts(form))
        row = parties.create_party(runtime_of(request), signed.actor, data)
    except (PydanticError, ValidationError, Conflict) as exc:
        return _party_form(request, None, values, field_errors(exc), 422)
    return RedirectResponse(f"/settings/parties/{row.id}?saved=1", status_code=303)


@router.get("/settings/parties/{party_id}")
def party_edit(request: Request, signed: Admin, party_id: int) -> Response:
    row = parties.get_party(runtime_of(request), signed.actor, party_id)
    values = {
        "code": row.code,
        "name": row.name,
        "tax_id": row.tax_id,
        "email": row.email,
        "language": row.language,
    }
    return _party_form(request, row, values, {})


@router.post("/settings/parties/{party_id}")
def party_update(request: Request, signed: AdminPost, form: Posted, party_id: int) -> Response:
    runtime = runtime_of(request)
    row = parties.get_party(runtime, signed.actor, party_id)
    values = _party_values(form)
    try:
        patch = PartyPatch(**values, contacts=_contacts(form))
        parties.update_party(runtime, signed.actor, party_id, patch)
    except (PydanticError, ValidationError, Conflict) as exc:
        return _party_form(request, row, {**values, "code": row.code}, field_errors(exc), 422)
    return RedirectResponse(f"/settings/parties/{party_id}?saved=1", status_code=303)


@router.get("/settings/templates")
def template_list(request: Request, signed: Admin) -> Response:
    rows = templates.list_templates(runtime_of(request), signed.actor)
    return render(request, "settings/templates.html", rows=rows)


def preview_email(
    runtime: Runtime, actor: Actor, source: TemplateSource, document_id: int, language: str
) -> RenderedEmail:
    """Check the template, then render it against a real document of the company."""
    runtime.templates.check(source)
    with runtime.session() as session:
        doc = get_document_row(session, actor, document_id)
        company = session.get_one(t.Company, actor.company_id)
        account = (
            session.query(t.MailAccount)
            .filter_by(company_id=actor.company_id, is_default=True)
            .first()
        )
        context = template_context(
            company, doc.party, [document_context(doc, doc.doc_type)], account
        )
        locale = locale_for(language, company.country)
    return runtime.templates.render(source, context, locale)


def _problems(exc: TemplateError) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for problem in exc.problems or [{"field": exc.field, "line": exc.line, "message": exc.message}]:
        grouped.setdefault(str(problem.get("field") or "subject"), []).append(problem)
    return grouped


def _source(form: FormData) -> TemplateSource:
    def raw(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    return TemplateSource(raw("subject"), raw("body_html"), raw("body_text"))


def _preview_values(
    runtime: Runtime, actor: Actor, source: TemplateSource, document_id: int | None, lang: str
) -> dict[str, Any]:
    if document_id is None:
        return {"rendered": None, "problems": {}}
    try:
        return {
            "rendered": preview_email(runtime, actor, source, document_id, lang),
            "problems": {},
        }
    except TemplateError as exc:
        return {"rendered": None, "problems": _problems(exc)}


def _editor(
    request: Request,
    actor: Actor,
    code: str,
    lang: str,
    source: TemplateSource,
    document_id: int | None,
    status: int = 200,
    custom: bool = False,
) -> Response:
    runtime = runtime_of(request)
    docs = recent_documents(runtime, actor, code)
    if document_id is None and docs:
        document_id = docs[0][0]
    return render(
        request,
        "settings/template_editor.html",
        status,
        code=code,
        lang=lang,
        source=source,
        docs=docs,
        document_id=document_id,
        custom=custom,
        **_preview_values(runtime, actor, source, document_id, lang),
    )


@router.get("/settings/templates/{code}/{lang}")
def template_edit(request: Request, signed: Admin, code: str, lang: str) -> Response:
    found = templates.get_template(runtime_of(request), signed.actor, code, lang)
    return _editor(request, signed.actor, code, lang, found.source, None, custom=found.custom)


def _document_id(form: FormData) -> int | None:
    value = text(form, "document_id")
    return int(value) if value.isdigit() else None


@router.post("/settings/templates/{code}/{lang}/preview")
def template_preview(
    request: Request, signed: AdminPost, form: Posted, code: str, lang: str
) -> Response:
    templates.get_template(runtime_of(request), signed.actor, code, lang)
    source = _source(form)
    try:
        _template_in(source)  # an unsaved template is no larger than a saved one may be
    except PydanticError as exc:
        problems = _input_problems(exc)
        return render(
            request, "settings/_template_preview.html", 422, rendered=None, problems=problems
        )
    values = _preview_values(runtime_of(request), signed.actor, source, _document_id(form), lang)
    return render(request, "settings/_template_preview.html", **values)


def _template_in(source: TemplateSource) -> TemplateIn:
    return TemplateIn(
        subject=source.subject, body_html=source.body_html, body_text=source.body_text
    )


def _input_problems(exc: PydanticError) -> dict[str, list[dict[str, Any]]]:
    return {k: [{"field": k, "line": None, "message": v}] for k, v in field_errors(exc).items()}


@router.post("/settings/templates/{code}/{lang}")
def template_save(
    request: Request, signed: AdminPost, form: Posted, code: str, lang: str
) -> Response:
    runtime, source = runtime_of(request), _source(form)
    try:
        templates.save_template(runtime, signed.actor, code, lang, _template_in(source))
    except (TemplateError, PydanticError) as exc:
        problems = _problems(exc) if isinstance(exc, TemplateError) else _input_problems(exc)
        return render(
            request,
            "settings/template_editor.html",
            422,
            code=code,
            lang=lang,
            source=source,
            docs=recent_documents(runtime, signed.actor, code),
            document_id=_document_id(form),
            custom=False,
            rendered=None,
            problems=problems,
            not_saved=True,
        )
    return RedirectResponse(f"/settings/templates/{code}/{lang}?saved=1", status_code=303)


@router.post("/settings/templates/{code}/{lang}/reset")
def template_reset(request: Request, signed: AdminPost, code: str, lang: str) -> Response:
    templates.get_template(runtime_of(request), signed.actor, code, lang)  # unknown type: 404
    try:
        templates.reset_template(runtime_of(request), signed.actor, code, lang)
    except DocmailError as exc:
        if exc.status_code != 404:
            raise
    return RedirectResponse(f"/settings/templates/{code}/{lang}", status_code=303)
