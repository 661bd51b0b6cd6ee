"""Talking to a provider's authorization and token endpoints through authlib.

Every library error is translated here: ``invalid_grant`` (refresh token revoked
or expired, code already used) becomes ``NeedsReauthentication``; a refused client
(``invalid_client``) becomes ``AuthenticationFailed``; network trouble and 5xx
answers become ``TransientDeliveryError``. No token or secret enters a message.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx2
from authlib.integrations.httpx_client import OAuth2Client, OAuthError

from docmail.adapters.oauth.errors import NeedsReauthentication
from docmail.adapters.oauth.providers import ClientCredentials, OAuthProvider
from docmail.errors import AuthenticationFailed, DeliveryError, TransientDeliveryError

HTTP_TIMEOUT = 15.0
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint answered; ``refresh_token`` is None when it was not rotated."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime
    scope: str = ""


def new_code_verifier() -> str:
    """A PKCE code verifier (RFC 7636: 43-128 characters of the unreserved set)."""
    return secrets.token_urlsafe(64)


def _client(
    provider: OAuthProvider, credentials: ClientCredentials, redirect_uri: str | None = None
) -> OAuth2Client:
    return OAuth2Client(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT,
    )


def authorization_url(
    provider: OAuthProvider,
    credentials: ClientCredentials,
    redirect_uri: str,
    state: str,
    code_verifier: str,
    login_hint: str | None = None,
) -> str:
    """The provider's consent page address, with state and an S256 code challenge."""
    params = dict(provider.authorize_params)
    if login_hint:
        params["login_hint"] = login_hint
    with _client(provider, credentials, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            provider.authorize_url, state=state, code_verifier=code_verifier, **params
        )
    return str(url)


def exchange_code(
    provider: OAuthProvider,
    credentials: ClientCredentials,
    redirect_uri: str,
    code: str,
    code_verifier: str,
    now: datetime,
) -> TokenSet:
    """Trade an authorization code (plus the PKCE verifier) for tokens."""
    with _client(provider, credentials, redirect_uri) as client:
        try:
            token = client.fetch_token(
                provider.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
        except Exception as exc:
            raise translate_error(exc, provider, "exchanging the authorization code") from exc
    return _token_set(token, now)


def refresh(
    provider: OAuthProvider, credentials: ClientCredentials, refresh_token: str, now: datetime
) -> TokenSet:
    """Get a new access token; providers may also rotate the refresh token."""
    with _client(provider, credentials) as client:
        try:
            token = client.refresh_token(provider.token_url, refresh_token=refresh_token)
        except Exception as exc:
            raise translate_error(exc, provider, "refreshing the access token") from exc
    return _token_set(token, now, previous_refresh=refresh_token)


def _token_set(token: Any, now: datetime, previous_refresh: str | None = None) -> TokenSet:
    access = token.get("access_token")
    if not access:
        raise TransientDeliveryError("the token endpoint answered without an access token")
    expires_in = token.get("expires_in")
    expires_at = now + timedelta(seconds=int(expires_in) if expires_in else 3600)
    refresh_token = token.get("refresh_token")
    rotated = refresh_token if refresh_token and refresh_token != previous_refresh else None
    return TokenSet(access, rotated, expires_at, str(token.get("scope") or ""))


def translate_error(exc: Exception, provider: OAuthProvider, doing: str) -> DeliveryError:
    """Map an authlib/httpx error to the docmail error tree (never quoting a token)."""
    where = f"{provider.label} ({provider.token_url})"
    if isinstance(exc, OAuthError):
        detail = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
        reply = f"{exc.error}"
        if exc.error == "invalid_grant":
            return NeedsReauthentication(
                f"{where} refused {doing} ({detail}): the authorization was revoked or expired",
                server_reply=reply,
            )
        if exc.error in _CLIENT_ERRORS:
            return AuthenticationFailed(
                f"{where} refused the OAuth client while {doing} ({detail}); check the "
                "client id and secret configured for this provider",
                server_reply=reply,
            )
        return TransientDeliveryError(
            f"{where} answered an error while {doing} ({detail}); docmail will try again later",
            server_reply=reply,
        )
    if isinstance(exc, httpx2.HTTPStatusError):
        status = exc.response.status_code
        return TransientDeliveryError(
            f"{where} answered HTTP {status} while {doing}; docmail will try again later",
            server_reply=f"HTTP {status}",
        )
    if isinstance(exc, httpx2.HTTPError):
        return TransientDeliveryError(
            f"could not reach {where} while {doing} ({type(exc).__name__}); "
            "docmail will try again later"
        )
    return TransientDeliveryError(
        f"unexpected answer from {where} while {doing} ({type(exc).__name__}); "
        "docmail will try again later"
    )
