"""Mail accounts, parties, document types and templates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from docmail.http.auth import current_actor, runtime_of
from docmail.http.params import IdPath, Offset
from docmail.http.serializers import account_json, doctype_json, party_json, template_json
from docmail.services import accounts, doctypes, parties, templates
from docmail.services.inputs import (
    AccountIn,
    AccountPatch,
    DocumentTypeIn,
    DocumentTypePatch,
    PartyIn,
    PartyPatch,
    TemplateIn,
)
from docmail.services.runtime import Actor
from docmail.templates.engine import TemplateSource

router = APIRouter()
Json = dict[str, Any]


@router.get("/accounts")
def list_accounts(
    request: Request, needs_attention: bool | None = None, actor: Actor = Depends(current_actor)
) -> Json:
    """Mail accounts; ``?needs_attention=true`` lists only those paused or needing sign-in."""
    rows = accounts.list_accounts(runtime_of(request), actor, needs_attention)
    return {"items": [account_json(a) for a in rows]}


@router.post("/accounts", status_code=201)
def create_account(
    body: AccountIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return account_json(accounts.create_account(runtime_of(request), actor, body))


@router.get("/accounts/{account_id}")
def get_account(
    account_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return account_json(accounts.get_account(runtime_of(request), actor, account_id))


@router.patch("/accounts/{account_id}")
def update_account(
    account_id: IdPath, body: AccountPatch, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return account_json(accounts.update_account(runtime_of(request), actor, account_id, body))


@router.delete("/accounts/{account_id}", status_code=204)
def delete_account(
    account_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    accounts.delete_account(runtime_of(request), actor, account_id)
    return Response(status_code=204)


@router.post("/accounts/{account_id}/test")
def test_account(
    account_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return accounts.check_account_connection(runtime_of(request), actor, account_id)


@router.get("/parties")
def list_parties(
    request: Request,
    q: str | None = None,
    limit: int = 100,
    offset: Offset = 0,
    actor: Actor = Depends(current_actor),
) -> Json:
    rows, total = parties.list_parties(
        runtime_of(request), actor, search=q, limit=min(max(limit, 1), 500), offset=max(offset, 0)
    )
    return {"items": [party_json(p) for p in rows], "total": total}


@router.post("/parties", status_code=201)
def create_party(body: PartyIn, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return party_json(parties.create_party(runtime_of(request), actor, body))


@router.get("/parties/{party_id}")
def get_party(party_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return party_json(parties.get_party(runtime_of(request), actor, party_id))


@router.patch("/parties/{party_id}")
def update_party(
    party_id: IdPath, body: PartyPatch, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return party_json(parties.update_party(runtime_of(request), actor, party_id, body))


@router.delete("/parties/{party_id}", status_code=204)
def delete_party(
    party_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    parties.delete_party(runtime_of(request), actor, party_id)
    return Response(status_code=204)


@router.get("/document-types")
def list_types(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return {"items": [doctype_json(d) for d in doctypes.list_types(runtime_of(request), actor)]}


@router.post("/document-types", status_code=201)
def create_type(
    body: DocumentTypeIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return doctype_json(doctypes.create_type(runtime_of(request), actor, body))


@router.get("/document-types/{code}")
def get_type(code: str, request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return doctype_json(doctypes.get_type(runtime_of(request), actor, code))


@router.patch("/document-types/{code}")
def update_type(
    code: str, body: DocumentTypePatch, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return doctype_json(doctypes.update_type(runtime_of(request), actor, code, body))


@router.get("/templates")
def list_templates(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    rows = templates.list_templates(runtime_of(request), actor)
    return {"items": [template_json(t) for t in rows]}


@router.post("/templates/check")
def check_template(
    body: TemplateIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    """Check a template without saving it: 200 when clean, 422 with every problem otherwise."""
    runtime_of(request).templates.check(
        TemplateSource(body.subject, body.body_html, body.body_text)
    )
    return {"ok": True}


@router.get("/templates/{doc_type}/{language}")
def get_template(
    doc_type: str, language: str, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    return template_json(templates.get_template(runtime_of(request), actor, doc_type, language))


@router.put("/templates/{doc_type}/{language}")
def save_template(
    doc_type: str,
    language: str,
    body: TemplateIn,
    request: Request,
    actor: Actor = Depends(current_actor),
) -> Json:
    saved = templates.save_template(runtime_of(request), actor, doc_type, language, body)
    return template_json(saved)


@router.delete("/templates/{doc_type}/{language}", status_code=204)
def reset_template(
    doc_type: str, language: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    templates.reset_template(runtime_of(request), actor, doc_type, language)
    return Response(status_code=204)
