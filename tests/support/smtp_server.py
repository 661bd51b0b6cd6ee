"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests, with TLS, AUTH and fault injection.

Use ``SmtpTestServer`` directly, or the pytest fixtures at the bottom of this
module (import them into a conftest or test module):

* ``tls_ca`` (session): a trustme CA; ``tls_ca.ca_file`` is the CA PEM for clients.
* ``smtp_server``: STARTTLS required, AUTH required for ``docmail`` / ``s3cret``.
* ``smtp_server_ssl``: implicit TLS, AUTH required for the same user.
* ``smtp_server_plain``: no TLS, no AUTH.

``server.client_settings(**overrides)`` returns ``SmtpSettings`` that work against it.
"""

from __future__ import annotations

import asyncio
import email
import logging
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from docmail.adapters.smtp.transport import SmtpSettings

TEST_USER = "docmail"
TEST_PASSWORD = "s3cret"
HOST = "127.0.0.1"


class _QuietLoginDataWarning(logging.Filter):
    """aiosmtpd logs a deprecation warning on every successful AUTH; it is noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


logging.getLogger("mail.log").addFilter(_QuietLoginDataWarning())

Stage = Literal["mail", "rcpt", "data"]
Security = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    username: str | None  # the login used on the connection, None without AUTH
    mail_options: list[str]


class LocalCA:
    """A throwaway certificate authority and one server certificate for 127.0.0.1/localhost."""

    def __init__(self, directory: Path | str) -> None:
        self.ca = trustme.CA()
        self.ca_file = str(Path(directory) / "smtp-test-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self._server_cert = self.ca.issue_cert(HOST, "localhost")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(context)
        return context


def free_port(host: str = HOST) -> int:
    """A port that nothing listens on right now (aiosmtpd needs a concrete port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class _State:
    """Everything the server thread and the test thread share, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.messages: list[ReceivedMessage] = []
        self.connections = 0
        self.live: set[_TestSMTP] = set()
        self.faults: dict[str, deque[list[Any]]] = {s: deque() for s in ("mail", "rcpt", "data")}
        self.recipient_faults: dict[str, list[Any]] = {}  # RCPT TO one address: [code, text, n]
        self.drops = 0
        self.stall_seconds = 0.0
        self.queue_ids = 0
        self.logins: list[tuple[str, bytes]] = []  # every AUTH attempt: (login, password)

    def accept(self, protocol: _TestSMTP) -> bool:
        """Count a new connection; False if it should be dropped instead."""
        with self.lock:
            self.connections += 1
            if self.drops:
                self.drops -= 1
                return False
            self.live.add(protocol)
            return True

    def forget(self, protocol: _TestSMTP) -> None:
        with self.lock:
            self.live.discard(protocol)

    def take_fault(self, stage: str) -> str | None:
        with self.lock:
            queue = self.faults[stage]
            if not queue:
                return None
            fault = queue[0]
            fault[2] -= 1
            if fault[2] <= 0:
                queue.popleft()
            return f"{fault[0]} {fault[1]}"

    def take_recipient_fault(self, address: str) -> str | None:
        with self.lock:
            fault = self.recipient_faults.get(address.lower())
            if fault is None:
                return None
            fault[2] -= 1
            if fault[2] <= 0:
                del self.recipient_faults[address.lower()]
            return f"{fault[0]} {fault[1]}"

    def record(self, message: ReceivedMessage) -> str:
        with self.changed:
            self.messages.append(message)
            self.queue_ids += 1
            self.changed.notify_all()
            return f"TEST{self.queue_ids:04d}"


class _TestSMTP(SMTP):
    """aiosmtpd's SMTP plus connection tracking, dropping, and closing after a 421."""

    def __init__(self, handler: Any, *, state: _State, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._state = state
        self._raw_transport: asyncio.BaseTransport | None = None
        self._dropped = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._raw_transport is None:  # not the second call after STARTTLS
            self._raw_transport = transport
            if not self._state.accept(self):
                self._dropped = True
                cast(asyncio.Transport, transport).abort()
                return
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._state.forget(self)
        if not self._dropped:
            super().connection_lost(error)

    async def push(self, status: Any) -> None:
        await super().push(status)
        text = status.decode() if isinstance(status, bytes) else str(status)
        if text.startswith("421") and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self._raw_transport is not None:
            cast(asyncio.Transport, self._raw_transport).abort()


class _Handler:
    def __init__(self, state: _State, users: dict[str, str]) -> None:
        self._state = state
        self._users = users

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if not self._users:  # a server without accounts does not offer AUTH
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        fault = self._state.take_fault("mail")
        if fault:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        fault = self._state.take_recipient_fault(address) or self._state.take_fault("rcpt")
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._state.stall_seconds:
            await asyncio.sleep(self._state.stall_seconds)
        fault = self._state.take_fault("data")
        if fault:
            return fault
        raw = bytes(envelope.original_content)
        login = session.auth_data.login if session.authenticated else None
        queue_id = self._state.record(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                raw=raw,
                message=cast(EmailMessage, email.message_from_bytes(raw, policy=default_policy)),
                username=login.decode() if isinstance(login, bytes) else None,
                mail_options=list(envelope.mail_options),
            )
        )
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            with self._state.lock:
                self._state.logins.append(
                    (auth_data.login.decode(errors="replace"), auth_data.password)
                )
            expected = self._users.get(auth_data.login.decode(errors="replace"))
            if expected is not None and expected.encode() == auth_data.password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


class _Controller(Controller):
    def __init__(self, handler: Any, *, state: _State, auth_required: bool, **kwargs: Any):
        super().__init__(handler, **kwargs)
        self._state = state
        self._auth_required = auth_required

    def factory(self) -> _TestSMTP:
        smtp = _TestSMTP(self.handler, state=self._state, **self.SMTP_kwargs)
        # Set after construction: aiosmtpd warns when AUTH is required without STARTTLS,
        # which is right for real servers but wrong for implicit TLS and for tests.
        smtp._auth_required = self._auth_required
        return smtp


class SmtpTestServer:
    """A real aiosmtpd server on 127.0.0.1 with a concrete free port.

    security: "starttls" (STARTTLS required), "ssl" (implicit TLS) or "none".
    users: accounts for AUTH PLAIN/LOGIN; without users the server offers no AUTH.
    auth_required: defaults to True when users are given.
    tls: a ``LocalCA``; without one the server makes its own in a temporary directory.
    smtputf8: offer SMTPUTF8 (addresses with non-ASCII characters).
    """

    def __init__(
        self,
        security: Security = "starttls",
        *,
        users: dict[str, str] | None = None,
        auth_required: bool | None = None,
        tls: LocalCA | None = None,
        stall_seconds: float = 0.0,
        smtputf8: bool = False,
    ) -> None:
        if security not in ("starttls", "ssl", "none"):
            raise ValueError(f"unknown security {security!r}")
        self.security = security
        self.users = dict(users or {})
        self.auth_required = bool(self.users) if auth_required is None else auth_required
        self.host = HOST
        self.port = 0
        self._own_ca_dir: str | None = None
        if tls is None:
            self._own_ca_dir = tempfile.mkdtemp(prefix="smtp-test-ca-")
            tls = LocalCA(self._own_ca_dir)
        self.tls = tls
        self.ca_file = tls.ca_file
        self._state = _State()
        self._state.stall_seconds = stall_seconds
        self._controller: _Controller | None = None
        self.smtputf8 = smtputf8

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> SmtpTestServer:
        if self._controller is not None:
            raise RuntimeError("server already running")
        self.port = free_port()
        context = self.tls.server_context()
        handler = _Handler(self._state, self.users)
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": "smtp.test",
            "ident": "docmail test server",
            "authenticator": handler.authenticate,
            "auth_require_tls": self.security == "starttls",
            "enable_SMTPUTF8": self.smtputf8,
        }
        if self.security == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        elif self.security == "ssl":
            kwargs.update(ssl_context=context)
        controller = _Controller(
            handler, state=self._state, auth_required=self.auth_required, **kwargs
        )
        controller.start()
        self._controller = controller
        with self._state.lock:
            self._state.connections = 0  # forget aiosmtpd's own start-up probe
        return self

    @property
    def logins(self) -> list[tuple[str, bytes]]:
        """Every AUTH PLAIN/LOGIN attempt so far, right or wrong: (login, password)."""
        with self._state.lock:
            return list(self._state.logins)

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            self._run(self._quiesce(), controller)
            controller.stop()
        if self._own_ca_dir is not None:
            shutil.rmtree(self._own_ca_dir, ignore_errors=True)
            self._own_ca_dir = None

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget messages, faults and counters; disconnect clients (for shared servers)."""
        self.disconnect_clients()
        with self._state.lock:
            self._state.messages.clear()
            self._state.connections = 0
            self._state.drops = 0
            self._state.stall_seconds = 0.0
            for queue in self._state.faults.values():
                queue.clear()
            self._state.recipient_faults.clear()

    # -- observing --------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._state.lock:
            return list(self._state.messages)

    @property
    def connections(self) -> int:
        """Connections accepted since start (or reset), dropped ones included."""
        with self._state.lock:
            return self._state.connections

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; AssertionError on timeout."""
        with self._state.changed:
            arrived = self._state.changed.wait_for(
                lambda: len(self._state.messages) >= count, timeout
            )
            if not arrived:
                raise AssertionError(
                    f"expected {count} messages within {timeout} s, got {len(self._state.messages)}"
                )
            return list(self._state.messages)

    def client_settings(self, **overrides: Any) -> SmtpSettings:
        """Settings for ``SmtpTransport`` that work against this server."""
        user, password = next(iter(self.users.items()), (None, None))
        settings = SmtpSettings(
            host=self.host,
            port=self.port,
            security=self.security,
            username=user,
            password=password,
            timeout=5.0,
            ca_file=self.ca_file,
        )
        return replace(settings, **overrides)

    # -- faults -----------------------------------------------------------------------

    def fail_next(self, code: int, text: str, count: int = 1, at: Stage = "data") -> None:
        """Answer the next ``count`` MAIL/RCPT/DATA commands with ``code text``.

        A 421 answer also closes the connection, as real servers do.
        """
        if at not in self._state.faults:
            raise ValueError(f"unknown stage {at!r}; use 'mail', 'rcpt' or 'data'")
        with self._state.lock:
            self._state.faults[at].append([code, text, count])

    def refuse_recipient(self, address: str, code: int, text: str, count: int = 1) -> None:
        """Answer ``RCPT TO:<address>`` with ``code text`` the next ``count`` times it comes
        (other recipients of the same message are accepted as usual)."""
        with self._state.lock:
            self._state.recipient_faults[address.lower()] = [code, text, count]

    def drop_next_connection(self, count: int = 1) -> None:
        """Close the next ``count`` new connections at once, before the greeting."""
        with self._state.lock:
            self._state.drops += count

    @property
    def stall_seconds(self) -> float:
        return self._state.stall_seconds

    @stall_seconds.setter
    def stall_seconds(self, value: float) -> None:
        """Delay every DATA answer by this long (to test client timeouts)."""
        with self._state.lock:
            self._state.stall_seconds = value

    def disconnect_clients(self) -> None:
        """Close every open client connection, like a server that ends idle sessions."""
        if self._controller is not None:
            self._run(self._quiesce(), self._controller)

    # -- internals --------------------------------------------------------------------

    def _run(self, coro: Any, controller: _Controller) -> None:
        future = asyncio.run_coroutine_threadsafe(coro, controller.loop)
        future.result(timeout=5)

    async def _quiesce(self, timeout: float = 2.0) -> None:
        """Abort all connections and wait until their handler tasks have finished."""
        with self._state.lock:
            live = list(self._state.live)
        for protocol in live:
            protocol.abort()
        deadline = time.monotonic() + timeout
        current = asyncio.current_task()
        while time.monotonic() < deadline:
            pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            with self._state.lock:
                still_live = bool(self._state.live)
            if not pending and not still_live:
                return
            await asyncio.sleep(0.005)


# --------------------------------------------------------------------------------------
# pytest fixtures (import them into a conftest.py or a test module)
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    """Session-wide trustme CA; ``tls_ca.ca_file`` is the CA PEM path for clients."""
    return LocalCA(tmp_path_factory.mktemp("smtp-ca"))


@pytest.fixture
def smtp_server(tls_ca: LocalCA) -> Iterator[SmtpTestServer]:
    """STARTTLS required, AUTH required for user ``docmail`` with password ``s3cret``."""
    with SmtpTestServer("starttls", users={TEST_USER: TEST_PASSWORD}, tls=tls_ca) as server:
        yield server


@pytest.fixture
def smtp_server_ssl(tls_ca: LocalCA) -> Iterator[SmtpTestServer]:
    """Implicit TLS, AUTH required for user ``docmail`` with password ``s3cret``."""
    with SmtpTestServer("ssl", users={TEST_USER: TEST_PASSWORD}, tls=tls_ca) as server:
        yield server


@pytest.fixture
def smtp_server_plain(tls_ca: LocalCA) -> Iterator[SmtpTestServer]:
    """No TLS and no AUTH."""
    with SmtpTestServer("none", tls=tls_ca) as server:
        yield server
