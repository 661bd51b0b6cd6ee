"""Sign in, sign out, switch company, choose the interface language."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from docmail.errors import PermissionDenied, ValidationError
from docmail.web import i18n
from docmail.web.routing import (
    CsrfRefused,
    ViewerPost,
    WebRoute,
    language_of,
    render,
    runtime_of,
)
from docmail.web.sessions import (
    COOKIE,
    PRELOGIN_COOKIE,
    LoginLimiter,
    check_password,
    end_session,
    load_session,
    memberships_of,
    same_token,
    set_language,
    start_session,
    switch_company,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _client(request: Request) -> str:
    """The socket's peer; behind a proxy listed in DOCMAIL_FORWARDED_ALLOW_IPS, uvicorn has
    already put the X-Forwarded-For address here (and ignores the header from anyone else)."""
    return request.client.host if request.client else "?"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(request: Request, status: int = 200, error: str = "", email: str = "") -> Response:
    token = request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", status, csrf=token, error=error, email=email)
    response.set_cookie(
        PRELOGIN_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request), path="/"
    )
    wanted = request.query_params.get("lang")
    if wanted in i18n.LANGUAGES:
        response.set_cookie("docmail_lang", wanted, samesite="lax", secure=_secure(request))
    return response


@router.get("/")
def home() -> Response:
    return RedirectResponse("/documents", status_code=303)


@router.get("/login")
def login_form(request: Request) -> Response:
    if load_session(runtime_of(request), request.cookies.get(COOKIE)) is not None:
        return RedirectResponse("/documents", status_code=303)
    return _login_page(request)


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    _ = i18n.translator(language_of(request))
    if not same_token(csrf_token, request.cookies.get(PRELOGIN_COOKIE) or ""):
        raise CsrfRefused()
    runtime, client = runtime_of(request), _client(request)
    limiter = LoginLimiter.for_runtime(runtime)
    if not limiter.admit(email, client):  # counted before the password is checked
        message = _("Too many failed attempts. Wait ten minutes and try again.")
        return _login_page(request, 429, message, email)
    user_id = check_password(runtime, email, password)
    if user_id is None:
        return _login_page(request, 401, _("Wrong email or password."), email)
    memberships = memberships_of(runtime, user_id)
    if not memberships:
        return _login_page(request, 403, _("This user belongs to no company yet."), email)
    limiter.succeeded(email, client)
    token = start_session(runtime, user_id, memberships[0].company_id)
    response = RedirectResponse("/documents", status_code=303)
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="lax", secure=_secure(request), path="/"
    )
    response.delete_cookie(PRELOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, signed: ViewerPost) -> Response:
    end_session(runtime_of(request), signed.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/company")
def choose_company(
    request: Request, signed: ViewerPost, company_id: Annotated[int, Form()]
) -> Response:
    if not switch_company(runtime_of(request), signed, company_id):
        raise PermissionDenied("you are not a member of that company", field="company_id")
    return RedirectResponse("/documents", status_code=303)


def _back_to(request: Request) -> str:
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.url.netloc:
        return "/documents"
    path = referer.path if referer.path.startswith("/") else "/documents"
    return path + (f"?{referer.query}" if referer.query else "")


@router.post("/language")
def choose_language(
    request: Request, signed: ViewerPost, language: Annotated[str, Form()]
) -> Response:
    if language not in i18n.LANGUAGES:
        raise ValidationError(f"language {language!r} must be es, pt or en", field="language")
    set_language(runtime_of(request), signed.user_id, language)
    return RedirectResponse(_back_to(request), status_code=303)
