"""Settings (admin): API tokens (create, shown once, revoke) and the audit list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError as PydanticError

from docmail.errors import Conflict, PermissionDenied, ValidationError
from docmail.services import audit, tokens
from docmail.services.runtime import Role
from docmail.services.tokens import TokenIn, parse_expiry
from docmail.web.forms import Posted, field_errors, text
from docmail.web.routing import Admin, AdminPost, WebRoute, render, runtime_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)
AUDIT_PAGE = 50


def _tokens_page(
    request: Request,
    signed: Admin,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    created: tokens.NewToken | None = None,
    status: int = 200,
) -> Response:
    rows = tokens.list_tokens(runtime_of(request), signed.actor)
    return render(
        request,
        "settings/tokens.html",
        status,
        rows=rows,
        roles=[r.value for r in Role],
        values=values or {"role": Role.SENDER.value},
        errors=errors or {},
        created=created,
        now=runtime_of(request).clock(),
    )


@router.get("/settings/tokens")
def token_list(request: Request, signed: Admin) -> Response:
    return _tokens_page(request, signed)


@router.post("/settings/tokens")
def token_create(request: Request, signed: AdminPost, form: Posted) -> Response:
    """Create a token and show it in this answer only (pages are sent ``no-store``)."""
    values = {k: text(form, k) for k in ("name", "role", "expires_at")}
    try:
        data = TokenIn(
            name=values["name"],
            role=values["role"],  # type: ignore[arg-type]
            expires_at=parse_expiry(values["expires_at"]),
        )
        made = tokens.create_token(runtime_of(request), signed.actor, data)
    except (PydanticError, ValidationError, Conflict, PermissionDenied) as exc:
        status = 422 if isinstance(exc, PydanticError) else exc.status_code
        return _tokens_page(request, signed, values=values, errors=field_errors(exc), status=status)
    return _tokens_page(request, signed, created=made, status=201)


@router.post("/settings/tokens/{token_id}/revoke")
def token_revoke(request: Request, signed: AdminPost, token_id: int) -> Response:
    tokens.revoke_token(runtime_of(request), signed.actor, token_id)
    return RedirectResponse(f"/settings/tokens?revoked={token_id}", status_code=303)


def _page_number(raw: str | None) -> int:
    try:
        return max(int(raw or "1"), 1)
    except ValueError:
        return 1


@router.get("/settings/audit")
def audit_list(request: Request, signed: Admin) -> Response:
    """The company's audit list, newest first, a page at a time, filtered by action."""
    action = request.query_params.get("action") or None
    page = _page_number(request.query_params.get("page"))
    found = audit.list_events(
        runtime_of(request),
        signed.actor,
        action=action,
        limit=AUDIT_PAGE,
        offset=(page - 1) * AUDIT_PAGE,
    )
    pages = max((found.total + AUDIT_PAGE - 1) // AUDIT_PAGE, 1)
    return render(
        request,
        "settings/audit.html",
        events=found.items,
        total=found.total,
        actions=found.actions,
        action=action or "",
        page=page,
        pages=pages,
        describe=_describe,
    )


def _describe(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """The detail as (field, text) pairs; a change shows as ``old → new``."""
    pairs = []
    for key, value in detail.items():
        if isinstance(value, dict) and set(value) == {"from", "to"}:
            pairs.append((key, f"{_plain(value['from'])} → {_plain(value['to'])}"))
        else:
            pairs.append((key, _plain(value)))
    return pairs


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return str(value)
