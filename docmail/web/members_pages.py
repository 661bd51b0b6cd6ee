"""Members of a company (admins): invite, change roles, end sessions, remove; the
invitation page a person opens from the link; changing one's own password."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from docmail.errors import DocmailError, NotFound
from docmail.services import members, oauth
from docmail.services.runtime import Role
from docmail.web.forms import Posted, field_errors, text
from docmail.web.routing import (
    Admin,
    AdminPost,
    CsrfRefused,
    Viewer,
    ViewerPost,
    WebRoute,
    render,
    runtime_of,
)
from docmail.web.sessions import (
    COOKIE,
    PRELOGIN_COOKIE,
    load_session,
    same_token,
    start_session,
    switch_company,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)
ROLES = [r.value for r in Role]
DIFFERENT = "The two passwords differ."


def _users_page(
    request: Request,
    signed: Admin,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    invited: members.Invited | None = None,
    status: int = 200,
) -> Response:
    runtime = runtime_of(request)
    return render(
        request,
        "settings/users.html",
        status,
        members=members.members(runtime, signed.actor),
        invitations=members.pending_invitations(runtime, signed.actor),
        roles=ROLES,
        values=values or {},
        errors=errors or {},
        invited=invited,
        notice=request.query_params.get("done", ""),
    )


@router.get("/settings/users")
def user_list(request: Request, signed: Admin) -> Response:
    return _users_page(request, signed)


@router.post("/settings/users")
def user_invite(request: Request, signed: AdminPost, form: Posted) -> Response:
    """Invite someone; the page shows the link once (and says whether it was emailed)."""
    values = {"email": text(form, "email"), "name": text(form, "name"), "role": text(form, "role")}
    try:
        invited = members.invite(
            runtime_of(request),
            signed.actor,
            values["email"],
            values["role"],
            name=values["name"],
            base_url=oauth.public_base(runtime_of(request), str(request.base_url)),
        )
    except DocmailError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _users_page(
            request, signed, values=values, errors=field_errors(exc), status=exc.status_code
        )
    return _users_page(request, signed, invited=invited, status=201)


def _done(what: str) -> Response:
    return RedirectResponse(f"/settings/users?done={what}", status_code=303)


@router.post("/settings/users/{user_id}/role")
def user_role(
    request: Request, signed: AdminPost, user_id: int, role: Annotated[str, Form()] = ""
) -> Response:
    members.change_role(runtime_of(request), signed.actor, user_id, role)
    return _done("role")


@router.post("/settings/users/{user_id}/sessions")
def user_sessions_end(request: Request, signed: AdminPost, user_id: int) -> Response:
    members.end_sessions(runtime_of(request), signed.actor, user_id)
    return _done("sessions")


@router.post("/settings/users/{user_id}/remove")
def user_remove(
    request: Request, signed: AdminPost, user_id: int, confirm: Annotated[str, Form()] = ""
) -> Response:
    """First a page that asks; then, confirmed, the person leaves and their sessions end."""
    runtime = runtime_of(request)
    if confirm != "1":
        member = next(
            (m for m in members.members(runtime, signed.actor) if m.user_id == user_id), None
        )
        if member is None:
            raise NotFound(f"member {user_id} not found", field="user_id", value=user_id)
        return render(request, "settings/user_remove.html", member=member)
    members.remove_member(runtime, signed.actor, user_id)
    return _done("removed")


@router.post("/settings/invitations/{invitation_id}/revoke")
def invitation_revoke(request: Request, signed: AdminPost, invitation_id: int) -> Response:
    members.revoke_invitation(runtime_of(request), signed.actor, invitation_id)
    return _done("withdrawn")


# ---------------------------------------------------------------- the invited person


def _invitation_page(
    request: Request, token: str, status: int = 200, error: str = "", name: str = ""
) -> Response:
    runtime = runtime_of(request)
    signed = load_session(runtime, request.cookies.get(COOKIE))
    if signed is not None:
        request.state.signed = signed
    offer = members.offer(runtime, token)
    csrf = signed.csrf if signed else request.cookies.get(PRELOGIN_COOKIE)
    csrf = csrf or secrets.token_urlsafe(24)
    response = render(
        request,
        "invitation.html",
        status,
        offer=offer,
        token=token,
        csrf=csrf,
        error=error,
        person_name=name or offer.name,
        min_password=members.MIN_PASSWORD,
    )
    if signed is None:
        response.set_cookie(PRELOGIN_COOKIE, csrf, httponly=True, samesite="lax", path="/")
    return response


@router.get("/invitations/{token}")
def invitation(request: Request, token: str) -> Response:
    return _invitation_page(request, token)


@router.post("/invitations/{token}")
def invitation_accept(
    request: Request,
    token: str,
    csrf_token: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    """Accept: as the signed-in user, or as a new user with the password they choose."""
    runtime = runtime_of(request)
    signed = load_session(runtime, request.cookies.get(COOKIE))
    expected = signed.csrf if signed else request.cookies.get(PRELOGIN_COOKIE) or ""
    if not same_token(csrf_token, expected):
        raise CsrfRefused()
    if signed is not None:
        company_id = members.accept_signed_in(runtime, token, signed.user_id)
        now_member = load_session(runtime, request.cookies.get(COOKIE))  # with the new company
        if now_member is not None:
            switch_company(runtime, now_member, company_id)
        return RedirectResponse("/documents", status_code=303)
    if password != password_again:
        return _invitation_page(request, token, 422, DIFFERENT, name)
    try:
        user_id, company_id = members.accept_as_new_user(
            runtime, token, name=name, password=password
        )
    except DocmailError as exc:
        if exc.status_code not in (409, 422):
            raise
        return _invitation_page(request, token, exc.status_code, exc.message, name)
    response = RedirectResponse("/documents", status_code=303)
    response.set_cookie(
        COOKIE,
        start_session(runtime, user_id, company_id),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    response.delete_cookie(PRELOGIN_COOKIE, path="/")
    return response


# ---------------------------------------------------------------- one's own password


@router.get("/account/password")
def password_form(request: Request, signed: Viewer) -> Response:
    return render(request, "password.html", errors={}, min_password=members.MIN_PASSWORD)


@router.post("/account/password")
def password_change(request: Request, signed: ViewerPost, form: Posted) -> Response:
    new = text(form, "new_password")
    errors: dict[str, str] = {}
    if new != text(form, "new_password_again"):
        errors["new_password_again"] = DIFFERENT
    else:
        try:
            members.change_password(
                runtime_of(request),
                signed.user_id,
                text(form, "current_password"),
                new,
                keep_session=signed.session_id,
            )
        except DocmailError as exc:
            if exc.status_code != 422:
                raise
            errors = field_errors(exc)
    if errors:
        return render(
            request, "password.html", 422, errors=errors, min_password=members.MIN_PASSWORD
        )
    return render(
        request, "password.html", errors={}, changed=True, min_password=members.MIN_PASSWORD
    )
