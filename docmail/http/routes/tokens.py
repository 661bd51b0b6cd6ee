"""API tokens (create, list, revoke) and the company's audit list; admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from docmail.adapters.db import tables as t
from docmail.http.auth import current_actor, runtime_of
from docmail.http.params import IdPath, Offset
from docmail.services import audit, tokens
from docmail.services.runtime import Actor, Role
from docmail.services.tokens import TokenIn

router = APIRouter()


class TokenOut(BaseModel):
    """A token as listed: never the token itself, only its first characters."""

    id: int
    name: str
    prefix: str
    role: Role
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: t.ApiToken) -> TokenOut:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            role=Role(row.role),
            created_at=row.created_at,
            created_by=row.created_by,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
        )


class TokenCreated(TokenOut):
    token: str  # shown in this answer only; docmail keeps just its SHA-256


class TokenList(BaseModel):
    items: list[TokenOut]


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str  # user:<email>, token:<name>, cli, ...
    action: str
    target: str
    detail: dict[str, Any]


class AuditList(BaseModel):
    items: list[AuditEventOut]
    total: int
    actions: list[str]  # every action name in the company's list


@router.get("/tokens")
def list_tokens(request: Request, actor: Actor = Depends(current_actor)) -> TokenList:
    """Every API token of the company, newest first (revoked ones too)."""
    rows = tokens.list_tokens(runtime_of(request), actor)
    return TokenList(items=[TokenOut.of(r) for r in rows])


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenIn, request: Request, actor: Actor = Depends(current_actor)
) -> TokenCreated:
    """Create a token; the answer holds it in clear, the only time it is shown."""
    made = tokens.create_token(runtime_of(request), actor, body)
    return TokenCreated(**TokenOut.of(made.row).model_dump(), token=made.token)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    token_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> TokenOut:
    """Revoke a token: requests with it get 401 from now on. Repeating it changes nothing."""
    return TokenOut.of(tokens.revoke_token(runtime_of(request), actor, token_id))


@router.delete("/tokens/{token_id}", status_code=204)
def delete_token(
    token_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    """The same as revoking: the row stays, so the list still shows who made and used it."""
    tokens.revoke_token(runtime_of(request), actor, token_id)
    return Response(status_code=204)


@router.get("/audit")
def list_audit(
    request: Request,
    action: Annotated[str | None, Query(max_length=60)] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 50,
    offset: Offset = 0,
    actor: Actor = Depends(current_actor),
) -> AuditList:
    """Who changed what, newest first; ``action`` is a name or a prefix such as ``token.``."""
    page = audit.list_events(runtime_of(request), actor, action=action, limit=limit, offset=offset)
    items = [
        AuditEventOut(
            id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, detail=e.detail
        )
        for e in page.items
    ]
    return AuditList(items=items, total=page.total, actions=page.actions)
