"""A real OAuth2 authorization server and an XOAUTH2 SMTP server, both on 127.0.0.1.

``OAuthTestServer`` (http.server in a thread) implements what docmail relies on:
``/authorize`` checks the client, redirect URI and an S256 code challenge and
auto-approves (redirecting with a single-use code); ``/token`` does the
authorization-code grant (verifying PKCE) and the refresh-token grant, issuing
expiring access tokens and rotating refresh tokens (a used one is dead);
``/revoke`` revokes a token. ``XOAuth2SmtpServer`` (aiosmtpd, STARTTLS) offers only
AUTH XOAUTH2 and asks the authorization server whether the bearer token is valid.
"""

from __future__ import annotations

import base64
import email
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from fastapi.testclient import TestClient

from docmail.adapters.db import tables as t
from docmail.domain.outbox import RetryPolicy
from docmail.services.companies import add_membership, create_user
from docmail.services.runtime import Role, Runtime
from docmail.worker.worker import Worker
from tests.support.app import Tenant, make_runtime, make_tenant
from tests.support.smtp_server import HOST, LocalCA, free_port
from tests.support.web import csrf_of, sign_in

CLIENT_ID = "docmail-test-client"
CLIENT_SECRET = "client-secret-9f8e7d6c5b4a"
MAILBOX = "ventas@acme.mx"


@dataclass
class _Grant:
    user: str
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    expires: float
    used: bool = False


@dataclass
class _Token:
    user: str
    kind: str  # "access" | "refresh"
    expires: float | None
    revoked: bool = False


@dataclass
class AuthState:
    """Everything the HTTP thread, the SMTP thread and the test share."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    clients: dict[str, str] = field(default_factory=lambda: {CLIENT_ID: CLIENT_SECRET})
    user: str = MAILBOX
    access_ttl: int = 3600
    grants: dict[str, _Grant] = field(default_factory=dict)
    tokens: dict[str, _Token] = field(default_factory=dict)
    authorize_params: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)  # grant types, in order


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _AuthHandler(BaseHTTPRequestHandler):
    server: _AuthHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    # -- plumbing ---------------------------------------------------------------------

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def _client_ok(self, form: dict[str, str]) -> str | None:
        """The authenticated client id (HTTP Basic or client_secret_post), or None."""
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            pair = base64.b64decode(header[6:]).decode()
            client_id, _, secret = pair.partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        state = self.server.state
        return client_id if state.clients.get(client_id) == secret and secret else None

    # -- endpoints --------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/authorize":
            return self._json(404, {"error": "not_found"})
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        state = self.server.state
        with state.lock:
            state.authorize_params.append(q)
        ok = (
            q.get("response_type") == "code"
            and q.get("client_id") in state.clients
            and q.get("code_challenge_method") == "S256"
            and q.get("code_challenge")
            and q.get("redirect_uri")
        )
        if not ok:
            return self._json(400, {"error": "invalid_request"})
        code = secrets.token_urlsafe(24)
        with state.lock:
            state.grants[code] = _Grant(
                state.user,
                q["client_id"],
                q["redirect_uri"],
                q["code_challenge"],
                q.get("scope", ""),
                time.time() + 60,
            )
        target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")})
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        form = self._form()
        path = urlparse(self.path).path
        if path == "/revoke":
            with self.server.state.lock:
                token = self.server.state.tokens.get(form.get("token", ""))
                if token is not None:
                    token.revoked = True
            return self._json(200, {})
        if path != "/token":
            return self._json(404, {"error": "not_found"})
        client_id = self._client_ok(form)
        if client_id is None:
            return self._json(401, {"error": "invalid_client"})
        grant_type = form.get("grant_type", "")
        with self.server.state.lock:
            self.server.state.token_requests.append(grant_type)
            if grant_type == "authorization_code":
                status, body = self._code_grant(client_id, form)
            elif grant_type == "refresh_token":
                status, body = self._refresh_grant(form)
            else:
                status, body = 400, {"error": "unsupported_grant_type"}
        self._json(status, body)

    def _code_grant(self, client_id: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = self.server.state.grants.get(form.get("code", ""))
        if grant is None or grant.used or grant.expires < time.time():
            return 400, {"error": "invalid_grant", "error_description": "bad or used code"}
        grant.used = True
        if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant", "error_description": "redirect mismatch"}
        if s256(form.get("code_verifier", "")) != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE failed"}
        return 200, self._issue(grant.user, grant.scope)

    def _refresh_grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        token = self.server.state.tokens.get(form.get("refresh_token", ""))
        if token is None or token.kind != "refresh" or token.revoked:
            return 400, {"error": "invalid_grant", "error_description": "Token has been revoked"}
        token.revoked = True  # rotation: every refresh token works once
        return 200, self._issue(token.user, form.get("scope", ""))

    def _issue(self, user: str, scope: str) -> dict[str, Any]:
        state = self.server.state
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(40)
        state.tokens[access] = _Token(user, "access", time.time() + state.access_ttl)
        state.tokens[refresh] = _Token(user, "refresh", None)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": state.access_ttl,
            "scope": scope,
        }


class _AuthHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: AuthState) -> None:
        super().__init__((HOST, 0), _AuthHandler)
        self.state = state


class OAuthTestServer:
    """The authorization server; ``settings_extra("google")`` points docmail's registry at it."""

    def __init__(self) -> None:
        self.state = AuthState()
        self._http = _AuthHttpServer(self.state)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OAuthTestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def settings_extra(self, prefix: str, smtp: XOAuth2SmtpServer) -> dict[str, str]:
        return {
            f"{prefix}_authorize_url": f"{self.url}/authorize",
            f"{prefix}_token_url": f"{self.url}/token",
            f"{prefix}_client_id": CLIENT_ID,
            f"{prefix}_client_secret": CLIENT_SECRET,
            f"{prefix}_smtp_host": HOST,
            f"{prefix}_smtp_port": str(smtp.port),
            f"{prefix}_smtp_security": "starttls",
        }

    # -- what the SMTP server and the tests ask -----------------------------------------

    def user_for(self, access_token: str) -> str | None:
        with self.state.lock:
            token = self.state.tokens.get(access_token)
            alive = token is not None and token.kind == "access" and not token.revoked
            if not alive or token is None or (token.expires or 0) < time.time():
                return None
            return token.user

    def expire_access_tokens(self) -> None:
        with self.state.lock:
            for token in self.state.tokens.values():
                if token.kind == "access":
                    token.expires = time.time() - 1

    def revoke_all(self) -> None:
        """The user revoked docmail's access: every token stops working."""
        with self.state.lock:
            for token in self.state.tokens.values():
                token.revoked = True

    def issued(self, kind: str) -> list[str]:
        with self.state.lock:
            return [value for value, t in self.state.tokens.items() if t.kind == kind]

    def refreshes(self) -> int:
        with self.state.lock:
            return self.state.token_requests.count("refresh_token")


@dataclass(frozen=True)
class Received:
    user: str
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class _XOAuth2Handler:
    def __init__(self, auth: OAuthTestServer) -> None:
        self.auth = auth
        self.lock = threading.Condition()
        self.messages: list[Received] = []
        self.auth_attempts: list[bool] = []

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob: Any = base64.b64decode(args[1])
        else:
            blob = await server.challenge_auth("")
        user, token = _parse_xoauth2(blob if isinstance(blob, bytes) else b"")
        valid = user is not None and self.auth.user_for(token) == user
        with self.lock:
            self.auth_attempts.append(valid)
        if valid:
            return AuthResult(success=True, auth_data=_Login(user.encode() if user else b""))
        # Like Gmail: a 334 with a JSON error, the client's empty answer, then 535.
        error = json.dumps(
            {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
        )
        await server.challenge_auth(error)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content)
        login = session.auth_data.login.decode() if session.authenticated else ""
        with self.lock:
            self.messages.append(
                Received(
                    login,
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    raw,
                    cast(EmailMessage, email.message_from_bytes(raw, policy=default_policy)),
                )
            )
            self.lock.notify_all()
        return "250 2.0.0 OK"


@dataclass(frozen=True)
class _Login:
    login: bytes

    def __repr__(self) -> str:
        return f"_Login({self.login!r})"


def _parse_xoauth2(blob: bytes) -> tuple[str | None, str]:
    parts = blob.decode(errors="replace").split("\x01")
    fields = dict(p.split("=", 1) for p in parts if "=" in p)
    auth = fields.get("auth", "")
    return fields.get("user"), auth.removeprefix("Bearer ")


class XOAuth2SmtpServer:
    """aiosmtpd with STARTTLS required and AUTH XOAUTH2 (only) required."""

    def __init__(self, auth: OAuthTestServer, tls: LocalCA) -> None:
        self.handler = _XOAuth2Handler(auth)
        self.tls = tls
        self.port = 0
        self._controller: Controller | None = None

    def start(self) -> XOAuth2SmtpServer:
        self.port = free_port()
        self._controller = Controller(
            self.handler,
            hostname=HOST,
            port=self.port,
            server_hostname="smtp.test",
            tls_context=self.tls.server_context(),
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            auth_exclude_mechanism=["LOGIN", "PLAIN"],
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def auth_attempts(self) -> list[bool]:
        with self.handler.lock:
            return list(self.handler.auth_attempts)


@pytest.fixture(name="oauth_server")
def oauth_server_fixture() -> Iterator[OAuthTestServer]:
    server = OAuthTestServer().start()
    yield server
    server.stop()


@pytest.fixture(name="xoauth2_smtp")
def xoauth2_smtp_fixture(
    oauth_server: OAuthTestServer, tls_ca: LocalCA
) -> Iterator[XOAuth2SmtpServer]:
    server = XOAuth2SmtpServer(oauth_server, tls_ca).start()
    yield server
    server.stop()


# ---------------------------------------------------------------- a docmail world

PDF = b"%PDF-1.4\n" + os.urandom(5_000) + b"\n%%EOF\n"
ADMIN, ADMIN_PASSWORD = "admin@acme.mx", "admin-password-1"


@dataclass
class OAuthWorld:
    runtime: Runtime
    tenant: Tenant
    auth: OAuthTestServer
    smtp: XOAuth2SmtpServer
    account_id: int
    browser: TestClient  # the company's admin, signed in to the web pages

    def api(self, method: str, path: str, expect: int | None = None, **kw: Any) -> Any:
        response = self.tenant.client.request(method, f"/api/v1{path}", **kw)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def start(self, return_to: str | None = "/documents/1/send") -> str:
        """The admin clicks Authenticate in the browser; returns the provider's consent URL."""
        if return_to is None:
            path, form = f"/settings/accounts/{self.account_id}/authenticate", {}
        else:
            path, form = f"/accounts/{self.account_id}/connect", {"back": return_to}
        form["csrf_token"] = csrf_of(self.browser)
        answer = self.browser.post(path, data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]

    def consent(self, authorization_url: str) -> str:
        """The provider approves; returns the callback path and query it sends the browser to."""
        consent = httpx.get(authorization_url, follow_redirects=False)
        assert consent.status_code == 302, consent.text
        back = urlparse(consent.headers["location"])
        return f"{back.path}?{back.query}"

    def authenticate(self, return_to: str | None = "/documents/1/send") -> httpx.Response:
        """Click Authenticate, let the provider approve, follow its redirect to the callback."""
        callback = self.consent(self.start(return_to))
        return self.browser.get(callback, follow_redirects=False)

    def send(self, number: str) -> dict[str, Any]:
        doc = self.api(
            "POST",
            "/documents",
            201,
            json={
                "type": "invoice",
                "number": number,
                "party_code": "C1",
                "issue_date": "2026-11-20",
                "total": "100.00",
                "currency": "MXN",
                "status": "stamped",
                "attachments": [
                    {
                        "filename": f"{number}.pdf",
                        "content_type": "application/pdf",
                        "content_base64": base64.b64encode(PDF).decode(),
                    }
                ],
            },
        )
        return self.api("POST", f"/documents/{doc['id']}/send", 202, json={})  # type: ignore[no-any-return]

    def deliver(self) -> int:
        policy = RetryPolicy(base_delay=timedelta(0), jitter=0.0)
        return Worker(self.runtime, "oauth-worker", policy).drain()

    def account(self) -> dict[str, Any]:
        return self.api("GET", f"/accounts/{self.account_id}", 200)  # type: ignore[no-any-return]

    def token_row(self) -> t.OAuthToken:
        with self.runtime.session() as session:
            return session.get_one(t.OAuthToken, self.account_id)


@pytest.fixture(name="world")
def oauth_world_fixture(
    database_url: str,
    tmp_path: Path,
    oauth_server: OAuthTestServer,
    xoauth2_smtp: XOAuth2SmtpServer,
    tls_ca: LocalCA,
) -> OAuthWorld:
    runtime = make_runtime(database_url, tmp_path / "data", ca_file=tls_ca.ca_file)
    runtime.settings.extra.update(oauth_server.settings_extra("google", xoauth2_smtp))
    tenant = make_tenant(runtime)
    created = tenant.client.post(
        "/api/v1/accounts",
        json={"kind": "gmail", "name": "Ventas", "from_email": MAILBOX, "is_default": True},
    )
    assert created.status_code == 201, created.text
    tenant.client.post(
        "/api/v1/parties",
        json={"code": "C1", "name": "Cliente Uno", "email": "pagos@cliente.mx", "language": "es"},
    ).raise_for_status()
    admin = create_user(runtime, ADMIN, ADMIN_PASSWORD, name="Admin")
    add_membership(runtime, admin.id, tenant.company_id, Role.ADMIN)
    browser = sign_in(runtime, ADMIN, ADMIN_PASSWORD)
    return OAuthWorld(runtime, tenant, oauth_server, xoauth2_smtp, created.json()["id"], browser)
