"""Plumbing shared by every page: templates, language, sign-in and CSRF checks, errors as HTML.

Every web route is a :class:`WebRoute`: a :class:`~docmail.errors.DocmailError`
raised anywhere below it (a service's ``actor.require``, a NotFound for another
company's object) becomes an HTML page or an HTMX fragment with the error's
status code, never JSON and never a 500.
"""

from collections.abc import Callable, Coroutine
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from babel.numbers import format_currency
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape

from docmail.domain.documents import default_type
from docmail.errors import DocmailError, NotFound, PermissionDenied
from docmail.services.runtime import Role, Runtime
from docmail.web import i18n
from docmail.web.sessions import COOKIE, SignedIn, load_session, same_token

TEMPLATES = Path(__file__).with_name("templates")
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-src 'self'; object-src 'self'; frame-ancestors 'self'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "SAMEORIGIN",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """No valid session: send the browser to the sign-in page."""


class CsrfRefused(PermissionDenied):
    def __init__(self) -> None:
        super().__init__(
            "the form's security token is missing or out of date; reload the page and try again",
            field="csrf_token",
        )


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def language_of(request: Request) -> str:
    signed: SignedIn | None = getattr(request.state, "signed", None)
    if signed is not None and signed.language in i18n.LANGUAGES:
        return signed.language
    wanted = request.query_params.get("lang") or request.cookies.get("docmail_lang")
    if wanted in i18n.LANGUAGES:
        return wanted
    return i18n.negotiate(request.headers.get("accept-language", ""))


def money(value: Decimal | None, currency: str | None, lang: str) -> str:
    if value is None:
        return ""
    if not currency:
        return f"{value:.2f}"
    return format_currency(value, currency, locale=i18n.LOCALES[lang])


def when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def type_label(code: str, lang: str) -> str:
    found = default_type(code)
    return found.names.get(lang, code) if found else code


_RANK = {Role.VIEWER: 0, Role.SENDER: 1, Role.ADMIN: 2}


def can(signed: SignedIn | None, role: Role) -> bool:
    return signed is not None and _RANK[signed.actor.role] >= _RANK[role]


def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    lang = language_of(request)
    signed: SignedIn | None = getattr(request.state, "signed", None)
    context = {
        "request": request,
        "signed": signed,
        "lang": lang,
        "_": i18n.translator(lang),
        "money": lambda v, c: money(v, c, lang),
        "when": when,
        "type_label": lambda code: type_label(code, lang),
        "can": lambda role: can(signed, role),
        "Role": Role,
        "htmx": request.headers.get("hx-request") == "true",
        **values,
    }
    html = _ENV.get_template(name).render(context)
    return HTMLResponse(html, status_code=status)


def _error_response(request: Request, exc: DocmailError) -> Response:
    if request.headers.get("hx-request") == "true":
        return render(request, "_error.html", exc.status_code, error=exc)
    return render(request, "error.html", exc.status_code, error=exc)


def _login_redirect(request: Request) -> Response:
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    return RedirectResponse("/login", status_code=303)


class WebRoute(APIRoute):
    """Turns errors into HTML and adds the security headers to every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = _login_redirect(request)
            except RequestValidationError:
                response = _error_response(request, NotFound("no such page", field="path"))
            except DocmailError as exc:
                response = _error_response(request, exc)
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
            return response

        return route


def _signed_in(request: Request) -> SignedIn:
    signed = load_session(runtime_of(request), request.cookies.get(COOKIE))
    if signed is None:
        raise LoginRequired
    request.state.signed = signed
    return signed


async def _checked_post(
    request: Request, signed: Annotated[SignedIn, Depends(_signed_in)]
) -> SignedIn:
    form = await request.form()
    given = request.headers.get("x-csrf-token") or form.get("csrf_token")
    if not isinstance(given, str) or not same_token(given, signed.csrf):
        raise CsrfRefused()
    return signed


def _needs(role: Role, post: bool) -> Any:
    source = _checked_post if post else _signed_in

    def dependency(signed: Annotated[SignedIn, Depends(source)]) -> SignedIn:
        signed.actor.require(role)
        return signed

    return Depends(dependency)


Viewer = Annotated[SignedIn, _needs(Role.VIEWER, post=False)]
ViewerPost = Annotated[SignedIn, _needs(Role.VIEWER, post=True)]
Sender = Annotated[SignedIn, _needs(Role.SENDER, post=False)]
SenderPost = Annotated[SignedIn, _needs(Role.SENDER, post=True)]
Admin = Annotated[SignedIn, _needs(Role.ADMIN, post=False)]
AdminPost = Annotated[SignedIn, _needs(Role.ADMIN, post=True)]
