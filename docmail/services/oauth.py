"""OAuth2 mail accounts (Google, Microsoft 365): connect a mailbox, keep it connected.

Flow: ``start_authorization`` stores a single-use state (hashed) bound to the
company, the account, the user, the PKCE code verifier (encrypted), the page to
return to and an expiry, and returns the provider's consent URL. The provider
sends the browser to ``/oauth/callback`` with ``code`` and ``state``;
``complete_authorization`` burns the state, trades the code for tokens, stores them
encrypted and, if the account was paused for its login, unpauses it so its waiting
messages go out.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import delete, inspect, select, update
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.adapters.oauth import client
from docmail.adapters.oauth.errors import NEEDS_AUTH_PREFIX
from docmail.adapters.oauth.providers import (
    OAUTH_KINDS,
    ClientCredentials,
    OAuthProvider,
    ProviderRegistry,
    installation_registry,
)
from docmail.adapters.oauth.tokens import OAuthTokenSource
from docmail.adapters.smtp.transport import SmtpSettings, SmtpTransport, Transport
from docmail.errors import Conflict, DocmailError, PermissionDenied, ValidationError
from docmail.services import audit
from docmail.services.accounts import get_account
from docmail.services.runtime import Actor, Role, Runtime

STATE_TTL = timedelta(minutes=15)
CALLBACK_PATH = "/oauth/callback"
# Pause reasons that a successful (re-)authentication clears.
_LOGIN_PAUSES = (NEEDS_AUTH_PREFIX, "the server refused the login")


def registry(runtime: Runtime) -> ProviderRegistry:
    return installation_registry(runtime.settings.extra)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


# ---------------------------------------------------------------- client credentials


def client_credentials(
    runtime: Runtime, company_id: int, provider: OAuthProvider
) -> ClientCredentials:
    """The company's own client for the provider, else the installation's, else a Conflict."""
    with runtime.session() as session:
        row = session.scalar(
            select(t.OAuthClient).where(
                t.OAuthClient.company_id == company_id, t.OAuthClient.provider == provider.kind
            )
        )
        if row is not None:
            secret = runtime.secrets.decrypt(row.client_secret_encrypted)
            return ClientCredentials(row.client_id, secret, "company")
    installed = registry(runtime).installation_client(provider)
    if installed is None:
        env = f"DOCMAIL_{provider.prefix.upper()}_CLIENT_ID"
        raise Conflict(
            f"no {provider.label} OAuth client is configured; set {env} and its _SECRET for "
            f"the installation, or PUT /api/v1/oauth/clients/{provider.kind} for this company",
            field="provider",
            value=provider.kind,
        )
    return installed


def set_company_client(
    runtime: Runtime, actor: Actor, kind: str, client_id: str, client_secret: str
) -> dict[str, object]:
    """Store (or replace) the company's OAuth client; the secret is encrypted, write-only."""
    actor.require(Role.ADMIN)
    provider = registry(runtime).get(kind)
    if not client_id.strip() or not client_secret.strip():
        raise ValidationError("client_id and client_secret are both required", field="client_id")
    with runtime.session() as session:
        row = session.scalar(
            select(t.OAuthClient).where(
                t.OAuthClient.company_id == actor.company_id, t.OAuthClient.provider == kind
            )
        )
        if row is None:
            row = t.OAuthClient(company_id=actor.company_id, provider=kind)
            session.add(row)
        row.client_id = client_id.strip()
        row.client_secret_encrypted = runtime.secrets.encrypt(client_secret.strip())
        audit.record(
            session,
            actor,
            "oauth_client.saved",
            f"oauth_client:{kind}",
            {"client_id": row.client_id},
        )
    return client_status(runtime, actor, provider)


def client_status(runtime: Runtime, actor: Actor, provider: OAuthProvider) -> dict[str, object]:
    """Which client the company would use for a provider (never the secret)."""
    try:
        creds = client_credentials(runtime, actor.company_id, provider)
    except Conflict:
        return {"provider": provider.kind, "configured": False, "source": None, "client_id": None}
    return {
        "provider": provider.kind,
        "configured": True,
        "source": creds.source,
        "client_id": creds.client_id,
        "client_secret_set": True,
    }


def list_clients(runtime: Runtime, actor: Actor) -> list[dict[str, object]]:
    actor.require(Role.ADMIN)
    return [client_status(runtime, actor, p) for p in registry(runtime).all()]


# ---------------------------------------------------------------- authorization flow


def check_return_to(value: str | None) -> str | None:
    """Only a local path may be returned to (no scheme, host or ``//``): no open redirect."""
    if value is None or value == "":
        return None
    bad = (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 32 for ch in value)
        or len(value) > 1000
    )
    if bad:
        raise ValidationError(
            "return_to must be a path on this site, like /send?document=12",
            field="return_to",
            value=value,
        )
    return value


def public_base(runtime: Runtime, base_url: str) -> str:
    """docmail's address for browsers: DOCMAIL_PUBLIC_URL, else this request's host."""
    public = runtime.settings.extra.get("public_url") or os.environ.get("DOCMAIL_PUBLIC_URL")
    return (public or base_url).rstrip("/")


def redirect_uri(runtime: Runtime, base_url: str) -> str:
    """Where the provider sends the browser back."""
    return public_base(runtime, base_url) + CALLBACK_PATH


def _may_authenticate(actor: Actor, account: t.MailAccount) -> None:
    is_owner = actor.user_id is not None and account.owner_user_id == actor.user_id
    if not is_owner:
        actor.require(Role.ADMIN)
    elif actor.role == Role.VIEWER:
        raise PermissionDenied("viewers cannot connect mailboxes", field="role")


@dataclass(frozen=True)
class Authorization:
    """A started flow: the provider's consent page, and the nonce for the starting browser.

    The nonce goes into that browser's cookie and nowhere else; the callback must
    bring it back, in a browser signed in as the same user.
    """

    url: str
    browser_nonce: str


def start_authorization(
    runtime: Runtime, actor: Actor, account_id: int, return_to: str | None, base_url: str
) -> Authorization:
    """Remember a new state for the account and return the provider's consent URL.

    Only a person signed in to docmail starts a flow (``actor.user_id``): the tokens
    must land on the account of whoever approved at the provider, and the callback
    checks that it is that same person, in that same browser.
    """
    if actor.user_id is None:
        raise PermissionDenied(
            "a mailbox is connected by a person signed in to docmail; open the account's "
            "connect_url in a browser",
            field="authorization",
        )
    account = _authenticatable(runtime, actor, account_id)
    provider = registry(runtime).get(account.kind)
    creds = client_credentials(runtime, actor.company_id, provider)
    state, verifier, now = secrets.token_urlsafe(32), client.new_code_verifier(), runtime.clock()
    nonce = secrets.token_urlsafe(32)
    with runtime.session() as session:
        session.execute(delete(t.OAuthState).where(t.OAuthState.expires_at < now))
        session.add(
            t.OAuthState(
                state_hash=_hash(state),
                company_id=actor.company_id,
                account_id=account.id,
                user_id=actor.user_id,
                browser_hash=_hash(nonce),
                code_verifier_encrypted=runtime.secrets.encrypt(verifier),
                return_to=check_return_to(return_to),
                created_at=now,
                expires_at=now + STATE_TTL,
            )
        )
    url = client.authorization_url(
        provider, creds, redirect_uri(runtime, base_url), state, verifier, account.username
    )
    return Authorization(url, nonce)


def _authenticatable(runtime: Runtime, actor: Actor, account_id: int) -> t.MailAccount:
    account = get_account(runtime, actor, account_id)
    _may_authenticate(actor, account)
    if account.kind not in OAUTH_KINDS:
        raise Conflict(
            f"mail account {account_id} is of kind {account.kind!r}, which does not use OAuth",
            field="account_id",
            value=account_id,
        )
    return account


def connect_url(
    runtime: Runtime, actor: Actor, account_id: int, return_to: str | None, base_url: str
) -> str:
    """The docmail page where a signed-in person connects the account (for API callers)."""
    _authenticatable(runtime, actor, account_id)
    back = check_return_to(return_to)
    query = f"?back={quote(back, safe='/')}" if back else ""
    return f"{public_base(runtime, base_url)}/accounts/{account_id}/connect{query}"


@dataclass(frozen=True)
class CallbackResult:
    company_id: int
    account_id: int
    return_to: str | None
    error: str | None = None
    # Said on the page the browser returns to: which company and mailbox got connected.
    company_name: str = ""
    mailbox: str = ""


class ForeignCallback(PermissionDenied):
    """A callback from another browser or person than the one who started the flow."""


def _take_state(
    runtime: Runtime, state: str, browser_nonce: str | None, user_id: int | None
) -> t.OAuthState:
    """Burn the state (single use) and return it.

    A used, unknown or old state is refused; so is one brought back by another
    browser (no or another nonce cookie) or another signed-in user than the one who
    started it — then the state stays unused and nothing is connected.
    """
    now = runtime.clock()
    with runtime.session() as session:
        row = session.scalar(
            select(t.OAuthState).where(
                t.OAuthState.state_hash == _hash(state),
                t.OAuthState.used_at.is_(None),
                t.OAuthState.expires_at > now,
            )
        )
        if row is None:
            raise ValidationError(
                "this authorization link is unknown, was already used or has expired; "
                "click Authenticate on the mail account again",
                field="state",
            )
        same_browser = bool(row.browser_hash) and hmac.compare_digest(
            row.browser_hash, _hash(browser_nonce or "")
        )
        if not same_browser or row.user_id is None or row.user_id != user_id:
            raise ForeignCallback(
                "this authorization was started in another browser or by another person, "
                "so nothing was connected; sign in to docmail and click Authenticate on the "
                "mail account yourself",
                field="state",
            )
        burnt = session.execute(
            update(t.OAuthState)
            .where(t.OAuthState.id == row.id, t.OAuthState.used_at.is_(None))
            .values(used_at=now)
        )
        if burnt.rowcount != 1:  # type: ignore[attr-defined]
            raise ValidationError(
                "this authorization link was already used; click Authenticate again",
                field="state",
            )
        return row


def _still_allowed(runtime: Runtime, pending: t.OAuthState) -> None:
    """The user who started may still connect the account (not removed or demoted since)."""
    with runtime.session() as session:
        role = session.scalar(
            select(t.Membership.role).where(
                t.Membership.user_id == pending.user_id,
                t.Membership.company_id == pending.company_id,
            )
        )
    if role is None:
        raise ForeignCallback("you are no longer a member of this company", field="state")
    actor = Actor(pending.company_id, Role(role), user_id=pending.user_id)
    _authenticatable(runtime, actor, pending.account_id)


def complete_authorization(
    runtime: Runtime,
    state: str,
    code: str | None,
    error: str | None,
    base_url: str,
    *,
    browser_nonce: str | None,
    user_id: int | None,
) -> CallbackResult:
    """Handle the provider's redirect: exchange the code, store the tokens, unpause.

    An unknown, used, expired or foreign state raises; any later failure is returned
    in ``CallbackResult.error`` so the browser can be sent back to ``return_to``.
    """
    pending = _take_state(runtime, state, browser_nonce, user_id)
    try:
        _still_allowed(runtime, pending)
        _connect(runtime, pending, code, error, base_url)
    except DocmailError as exc:
        return CallbackResult(
            pending.company_id, pending.account_id, pending.return_to, exc.message
        )
    runtime.wakeup()
    with runtime.session() as session:
        account = session.get_one(t.MailAccount, pending.account_id)
        company = session.get_one(t.Company, pending.company_id)
        names = (company.name, account.username or account.from_email)
    return CallbackResult(pending.company_id, pending.account_id, pending.return_to, None, *names)


def _connect(
    runtime: Runtime, pending: t.OAuthState, code: str | None, error: str | None, base_url: str
) -> None:
    if error or not code:
        raise ValidationError(
            f"the provider did not grant access ({error or 'no code'}); try Authenticate again",
            field="code",
        )
    with runtime.session() as session:
        account = session.get_one(t.MailAccount, pending.account_id)
        provider = registry(runtime).get(account.kind)
    creds = client_credentials(runtime, pending.company_id, provider)
    verifier = runtime.secrets.decrypt(pending.code_verifier_encrypted)
    tokens = client.exchange_code(
        provider, creds, redirect_uri(runtime, base_url), code, verifier, runtime.clock()
    )
    with runtime.session() as session:
        account = session.get_one(t.MailAccount, pending.account_id)
        _store_tokens(runtime, session, account, provider, tokens)
        user = session.get_one(t.User, pending.user_id)
        who = Actor(pending.company_id, Role.VIEWER, user.id, label=f"user:{user.email}")
        audit.record(
            session,
            who,
            "account.oauth_connected",
            f"account:{account.id} {account.name}",
            {"provider": provider.kind, "mailbox": account.username},
        )


def _store_tokens(
    runtime: Runtime,
    session: Session,
    account: t.MailAccount,
    provider: OAuthProvider,
    tokens: client.TokenSet,
) -> None:
    now = runtime.clock()
    row = session.get(t.OAuthToken, account.id)
    if row is None:
        row = t.OAuthToken(
            account_id=account.id, company_id=account.company_id, provider=provider.kind, version=0
        )
        session.add(row)
    if tokens.refresh_token:
        row.refresh_token_encrypted = runtime.secrets.encrypt(tokens.refresh_token)
    row.access_token_encrypted = runtime.secrets.encrypt(tokens.access_token)
    row.expires_at = tokens.expires_at
    row.scope = tokens.scope or provider.scope
    row.version = (row.version or 0) + 1
    row.needs_reauth = False
    row.reauth_reason = None
    row.token_updated_at = now
    if account.paused and (account.pause_reason or "").startswith(_LOGIN_PAUSES):
        account.paused = False
        account.pause_reason = None


# ---------------------------------------------------------------- sending


def oauth_status(account: t.MailAccount) -> dict[str, object] | None:
    """What the account shows about its connection (None for non-OAuth kinds)."""
    if account.kind not in OAUTH_KINDS:
        return None
    # A just-created account never loaded the relationship: it has no token yet.
    token = None if "oauth_token" in inspect(account).unloaded else account.oauth_token
    reason: str | None
    if token is None or not token.refresh_token_encrypted:
        status, reason = "not_connected", "click Authenticate to connect the mailbox"
    elif token.needs_reauth:
        status, reason = "needs_authentication", token.reauth_reason
    else:
        status, reason = "connected", None
    return {
        "status": status,
        "reason": reason,
        "token_updated_at": token.token_updated_at.isoformat()
        if token and token.token_updated_at
        else None,
    }


def needs_attention(account: t.MailAccount) -> bool:
    status = oauth_status(account)
    return account.paused or (status is not None and status["status"] != "connected")


def oauth_transport_for(runtime: Runtime, account: t.MailAccount) -> Transport:
    """SMTP with XOAUTH2 for a Google / Microsoft account (the transport factory)."""
    provider = registry(runtime).get(account.kind)
    company_id = account.company_id
    source = OAuthTokenSource(
        engine=runtime.engine,
        secrets=runtime.secrets,
        provider=provider,
        credentials=lambda: client_credentials(runtime, company_id, provider),
        account_id=account.id,
        clock=runtime.clock,
    )
    settings = SmtpSettings(
        host=account.host,
        port=account.port,
        security=account.security,
        username=account.username or account.from_email,
        timeout=runtime.settings.smtp_timeout,
        deadline=runtime.settings.smtp_deadline,
        verify_tls=account.verify_tls,
        ca_file=runtime.settings.extra.get("smtp_ca_file"),
        oauth_token=source.access_token,
        oauth_refresh=source.refresh_after_rejection,
        outbound=runtime.outbound,
    )
    return SmtpTransport(settings)
