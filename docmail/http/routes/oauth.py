"""OAuth2 mail accounts over HTTP: Authenticate, the provider's callback, OAuth clients.

``router`` carries full paths. The provider's callback is a web page
(``docmail.web.oauth_pages``): only a signed-in person connects a mailbox. Include
this router before the settings routes so ``/api/v1/accounts/needs-attention`` is
not taken for an account id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from docmail.http.auth import current_actor, runtime_of
from docmail.http.params import IdPath
from docmail.http.serializers import account_json
from docmail.services import accounts, oauth
from docmail.services.inputs import Strict
from docmail.services.runtime import Actor

router = APIRouter()
API = "/api/v1"
Json = dict[str, Any]


class StartIn(Strict):
    return_to: str | None = Field(default=None, max_length=1000)


class ClientIn(Strict):
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: str = Field(min_length=1, max_length=2000)


def _base_url(request: Request) -> str:
    return str(request.base_url)


@router.post(f"{API}/accounts/{{account_id}}/oauth/start", tags=["oauth"])
def start(
    account_id: IdPath,
    request: Request,
    body: StartIn | None = None,
    actor: Actor = Depends(current_actor),
) -> Json:
    """Where a person connects a Google / Microsoft mailbox: open ``connect_url`` in a browser.

    The person signs in to docmail there (if not yet) and clicks Authenticate; the
    provider's answer connects the mailbox only in that browser, for that person.
    """
    url = oauth.connect_url(
        runtime_of(request), actor, account_id, body.return_to if body else None, _base_url(request)
    )
    return {"connect_url": url, "expires_in": int(oauth.STATE_TTL.total_seconds())}


@router.get(f"{API}/accounts/needs-attention", tags=["oauth"])
def needing_attention(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    """Accounts that are paused or whose mailbox needs authenticating again."""
    rows = accounts.list_accounts(runtime_of(request), actor, needs_attention=True)
    return {"items": [account_json(a) for a in rows]}


@router.get(f"{API}/oauth/clients", tags=["oauth"])
def list_clients(request: Request, actor: Actor = Depends(current_actor)) -> Json:
    return {"items": oauth.list_clients(runtime_of(request), actor)}


@router.put(f"{API}/oauth/clients/{{provider}}", tags=["oauth"])
def set_client(
    provider: str, body: ClientIn, request: Request, actor: Actor = Depends(current_actor)
) -> Json:
    """The company's own OAuth client for "gmail" or "microsoft" (secret write-only)."""
    return oauth.set_company_client(
        runtime_of(request), actor, provider, body.client_id, body.client_secret
    )
