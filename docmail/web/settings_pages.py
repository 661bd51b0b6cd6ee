"""Settings (admin): mail accounts with a connection test, document types, users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError as PydanticError
from starlette.datastructures import FormData

from docmail.domain.documents import DocumentStatus, Fallback
from docmail.errors import Conflict, ValidationError
from docmail.services import accounts, doctypes, oauth
from docmail.services.inputs import AccountIn, AccountPatch, DocumentTypePatch
from docmail.web import oauth_pages
from docmail.web.forms import Posted, checked, field_errors, optional, text, words
from docmail.web.routing import Admin, AdminPost, WebRoute, render, runtime_of

router = APIRouter(route_class=WebRoute, include_in_schema=False)
SECURITIES = ("starttls", "ssl", "none")


@router.get("/settings")
def settings_home() -> Response:
    return RedirectResponse("/settings/accounts", status_code=303)


@router.get("/settings/accounts")
def account_list(request: Request, signed: Admin) -> Response:
    rows = accounts.list_accounts(runtime_of(request), signed.actor)
    status = {a.id: oauth.oauth_status(a) for a in rows}
    named = request.query_params.get("account_id", "")
    return render(
        request,
        "settings/accounts.html",
        rows=rows,
        oauth_status=status,
        oauth_kinds=oauth.OAUTH_KINDS,
        connected=request.query_params.get("oauth") == "connected",
        connected_account=next((a for a in rows if str(a.id) == named), None),
        oauth_error=request.query_params.get("oauth_error"),
    )


def _account_values(form: FormData, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": text(form, "name"),
        "host": text(form, "host"),
        "port": text(form, "port") or "0",
        "security": text(form, "security"),
        "username": optional(form, "username"),
        "from_email": text(form, "from_email"),
        "from_name": text(form, "from_name"),
        "verify_tls": checked(form, "verify_tls"),
        "is_default": checked(form, "is_default"),
    }
    if text(form, "password") or creating:
        values["password"] = optional(form, "password")
    if not creating:
        values["paused"] = checked(form, "paused")
    return values


def _account_form(
    request: Request, account: Any, values: dict[str, Any], errors: dict[str, str], status: int
) -> Response:
    return render(
        request,
        "settings/account_form.html",
        status,
        account=account,
        values=values,
        errors=errors,
        securities=SECURITIES,
    )


@router.get("/settings/accounts/new")
def account_new(request: Request, signed: Admin) -> Response:
    values = {"port": 587, "security": "starttls", "verify_tls": True}
    return _account_form(request, None, values, {}, 200)


@router.post("/settings/accounts/new")
def account_create(request: Request, signed: AdminPost, form: Posted) -> Response:
    values = _account_values(form, creating=True)
    try:
        row = accounts.create_account(runtime_of(request), signed.actor, AccountIn(**values))
    except (PydanticError, ValidationError, Conflict) as exc:
        return _account_form(request, None, values, field_errors(exc), 422)
    return RedirectResponse(f"/settings/accounts/{row.id}?saved=1", status_code=303)


@router.get("/settings/accounts/{account_id}")
def account_edit(request: Request, signed: Admin, account_id: int) -> Response:
    row = accounts.get_account(runtime_of(request), signed.actor, account_id)
    values = {c: getattr(row, c) for c in ("name", "host", "port", "security", "username")}
    values.update(
        from_email=row.from_email,
        from_name=row.from_name,
        verify_tls=row.verify_tls,
        is_default=row.is_default,
        paused=row.paused,
    )
    return _account_form(request, row, values, {}, 200)


@router.post("/settings/accounts/{account_id}")
def account_update(request: Request, signed: AdminPost, form: Posted, account_id: int) -> Response:
    runtime = runtime_of(request)
    row = accounts.get_account(runtime, signed.actor, account_id)
    values = _account_values(form, creating=False)
    had_secret = row.password_encrypted is not None
    try:
        saved = accounts.update_account(runtime, signed.actor, account_id, AccountPatch(**values))
    except (PydanticError, ValidationError, Conflict) as exc:
        return _account_form(request, row, values, field_errors(exc), 422)
    forgot = "&secret_forgotten=1" if had_secret and saved.password_encrypted is None else ""
    return RedirectResponse(f"/settings/accounts/{account_id}?saved=1{forgot}", status_code=303)


@router.post("/settings/accounts/{account_id}/authenticate")
def account_authenticate(request: Request, signed: AdminPost, account_id: int) -> Response:
    """Send the admin to Google / Microsoft to connect (or reconnect) the mailbox.

    The provider brings the browser back to the accounts page, which then shows
    "token updated"; a revoked account resumes sending by itself.
    """
    return oauth_pages.begin(request, signed, account_id, "/settings/accounts")


@router.post("/settings/accounts/{account_id}/test")
def account_test(request: Request, signed: AdminPost, account_id: int) -> Response:
    answer = accounts.check_account_connection(runtime_of(request), signed.actor, account_id)
    return render(request, "settings/_account_test.html", answer=answer)


@router.get("/settings/types")
def type_list(request: Request, signed: Admin) -> Response:
    return _types_page(request, signed, {}, None, 200)


def _types_page(
    request: Request, signed: Admin, errors: dict[str, str], code: str | None, status: int
) -> Response:
    rows = doctypes.list_types(runtime_of(request), signed.actor)
    return render(
        request,
        "settings/types.html",
        status,
        rows=rows,
        errors=errors,
        error_code=code,
        fallbacks=[f.value for f in Fallback],
        statuses=[s.value for s in DocumentStatus],
    )


@router.post("/settings/types/{code}")
def type_update(request: Request, signed: AdminPost, form: Posted, code: str) -> Response:
    try:
        patch = DocumentTypePatch(
            name=text(form, "name") or None,
            recipient_roles=words(text(form, "recipient_roles")),
            cc_roles=words(text(form, "cc_roles")),
            fallback=text(form, "fallback") or None,  # type: ignore[arg-type]
            required_status=optional(form, "required_status"),  # type: ignore[arg-type]
        )
        doctypes.update_type(runtime_of(request), signed.actor, code, patch)
    except (PydanticError, ValidationError) as exc:
        return _types_page(request, signed, field_errors(exc), code, 422)
    return RedirectResponse(f"/settings/types?saved={code}#type-{code}", status_code=303)
