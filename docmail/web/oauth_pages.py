"""Connecting a Gmail / Microsoft mailbox from the browser, and the provider's callback.

``begin`` starts a flow for the signed-in person and puts a nonce in this
browser's cookie (its hash is on the state row). The callback connects the
mailbox only when it comes back to the same browser, signed in as the same
person: a consent link sent to someone else connects nothing.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from docmail.services import oauth
from docmail.web.routing import WebRoute, runtime_of
from docmail.web.sessions import COOKIE, SignedIn, load_session

router = APIRouter(route_class=WebRoute, include_in_schema=False)
NONCE_COOKIE = "docmail_oauth"


def begin(request: Request, signed: SignedIn, account_id: int, back: str) -> Response:
    """Send the browser to the provider's consent page, remembering who started."""
    started = oauth.start_authorization(
        runtime_of(request), signed.actor, account_id, back, str(request.base_url)
    )
    response = RedirectResponse(started.url, status_code=303)
    response.set_cookie(
        NONCE_COOKIE,
        started.browser_nonce,
        max_age=int(oauth.STATE_TTL.total_seconds()),
        path=oauth.CALLBACK_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=request.url.scheme == "https",
    )
    return response


@router.get(oauth.CALLBACK_PATH)
def callback(
    request: Request, state: str = "", code: str | None = None, error: str | None = None
) -> Response:
    """The provider's redirect: store the tokens, then go back to where it started."""
    runtime = runtime_of(request)
    signed = load_session(runtime, request.cookies.get(COOKIE))
    if signed is not None:
        request.state.signed = signed  # the error page speaks the user's language
    result = oauth.complete_authorization(
        runtime,
        state,
        code,
        error,
        str(request.base_url),
        browser_nonce=request.cookies.get(NONCE_COOKIE),
        user_id=signed.user_id if signed else None,
    )
    params: dict[str, str | int] = {"account_id": result.account_id}
    params.update({"oauth_error": result.error} if result.error else {"oauth": "connected"})
    target = result.return_to or "/settings/accounts"
    separator = "&" if "?" in target else "?"
    response = RedirectResponse(f"{target}{separator}{urlencode(params)}", status_code=303)
    response.delete_cookie(NONCE_COOKIE, path=oauth.CALLBACK_PATH)
    return response
