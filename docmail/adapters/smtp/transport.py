"""Deliver raw RFC 5322 messages over SMTP, and translate every failure into docmail errors.

``SmtpTransport`` keeps one connection open across ``send()`` calls. A reused
connection that the server closed while idle is reopened once, but only when the
failure shows up before the server accepted ``MAIL FROM``: after that point a
message may already be on its way, and sending it again could deliver it twice.

Every library error is translated at this edge (``raise ... from exc``) into
``TransientDeliveryError`` (retrying later may help), ``PermanentDeliveryError``
(it will not) or ``AuthenticationFailed``. Messages never contain the password.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, cast

from docmail.adapters.outbound import OutboundPolicy
from docmail.adapters.smtp.limits import BoundedReplies
from docmail.adapters.smtp.replies import (
    ErrorContext,
    _is_disconnect,
    _keeps_connection,
    is_transient_reply,
    needs_smtputf8,
    reply_text,
    translate_error,
    wire_bytes,
    xoauth2_string,
)
from docmail.errors import (
    AuthenticationFailed,
    DeliveryError,
    PermanentDeliveryError,
    ValidationError,
)

SECURITY_MODES = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # "starttls" | "ssl" | "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0  # per step (connect, each reply)
    deadline: float = 120.0  # the whole transaction, connect to the reply to DATA
    verify_tls: bool = True  # certificate + hostname checks ON by default
    ca_file: str | None = None  # extra CA bundle, trusted in addition to the system's
    local_hostname: str | None = None
    # XOAUTH2 instead of a password: ``oauth_token()`` gives a current access token;
    # ``oauth_refresh(rejected)`` a new one after the server refused ``rejected`` (once).
    oauth_token: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    oauth_refresh: Callable[[str], str] | None = field(default=None, repr=False, compare=False)
    # Where a company may make docmail connect; None (tests of the transport alone) = anywhere.
    outbound: OutboundPolicy | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValidationError(
                f"unknown SMTP security {self.security!r}; use 'starttls', 'ssl' or 'none'",
                field="security",
                value=self.security,
            )
        if not self.host:
            raise ValidationError("the SMTP host is empty; set the mail server name", field="host")
        if not 0 < self.port < 65536:
            raise ValidationError(
                f"SMTP port {self.port} is out of range; use a port between 1 and 65535",
                field="port",
                value=self.port,
            )
        if self.timeout <= 0:
            raise ValidationError("the SMTP timeout must be more than 0 seconds", field="timeout")
        if self.deadline <= 0:
            raise ValidationError("the SMTP deadline must be more than 0 seconds", field="deadline")

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SendResult:
    code: int  # 250
    reply: str  # the server's answer to DATA, e.g. "2.0.0 Ok: queued as ABC"
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    # ^ recipients the server refused while accepting others (4xx or 5xx per address)


class Transport(Protocol):
    """One small contract for anything that delivers raw RFC 5322 bytes."""

    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> SendResult: ...

    def check(self) -> str: ...

    def close(self) -> None: ...


Meanwhile = Callable[[], None]


def send_meanwhile(
    transport: Transport,
    envelope_from: str,
    recipients: list[str],
    raw: bytes,
    meanwhile: Meanwhile,
) -> SendResult:
    """Send, calling ``meanwhile()`` while the server processes the message if possible.

    The SMTP transport calls it after the last byte of DATA, before reading the
    server's verdict: the caller commits the previous outcome and builds the next
    message in the time the server spends receiving this one. Other transports
    call it first. ``meanwhile`` must not raise, and may be called more than once
    or not at all (when sending fails early); callers make it idempotent.
    """
    overlapped = getattr(transport, "send_meanwhile", None)
    if overlapped is None:
        meanwhile()
        return transport.send(envelope_from, recipients, raw)
    result: SendResult = overlapped(envelope_from, recipients, raw, meanwhile)
    return result


# --------------------------------------------------------------------------------------
# The smtplib transport
# --------------------------------------------------------------------------------------


class _Client(BoundedReplies):
    """smtplib.SMTP that connects through the outbound policy (when given), remembers the
    greeting line, refuses a server that does not greet as an SMTP server, and ends by
    its deadline (``BoundedReplies``)."""

    greeting = ""
    outbound: OutboundPolicy | None = None

    def __init__(
        self,
        *args: Any,
        outbound: OutboundPolicy | None = None,
        deadline_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        if outbound is not None:
            self.outbound = outbound  # before smtplib's __init__ connects
        self.deadline_at = deadline_at
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # SMTP_SSL's _get_socket wraps this one. The checked address is the one connected
        # to; TLS (SMTP_SSL, starttls) still verifies the certificate against ``host``,
        # which smtplib keeps as ``_host``.
        source = cast(tuple[str, int] | None, self.source_address)
        timeout = self.time_left(timeout)
        if self.outbound is None:
            return socket.create_connection((host, port), timeout, source)
        return self.outbound.connect(host, port, timeout, source)

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: Any = None
    ) -> tuple[int, bytes]:
        code, msg = super().connect(host, port, source_address)
        if not 200 <= code <= 599:
            # Not an SMTP reply: whatever it was (an HTTP, SSH or database banner) is
            # not shown, so "test connection" cannot be used to read other services.
            self.close()
            raise PermanentDeliveryError(
                f"the server at {host}:{port} did not answer as an SMTP server; check the "
                "host and port of the mail server"
            )
        self.greeting = f"{code} {reply_text(msg)}"
        return code, msg


class _SslClient(smtplib.SMTP_SSL, _Client):
    """``_Client`` with TLS from the first byte (SMTP_SSL wraps ``_Client``'s socket)."""

    def __init__(
        self,
        *args: Any,
        outbound: OutboundPolicy | None = None,
        deadline_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.outbound = outbound
        self.deadline_at = deadline_at
        smtplib.SMTP_SSL.__init__(self, *args, **kwargs)


_Connection = _Client


@dataclass
class _Progress:
    """Where a session got to, so a failure can be worded and retried safely."""

    phase: str = "connect"
    mail_accepted: bool = False


@dataclass(frozen=True)
class _Payload:
    """A message as this transport sends it: CRLF lines, and its dot-stuffed DATA bytes."""

    message: bytes
    data: bytes
    ascii: bool

    @classmethod
    def of(cls, raw: bytes) -> _Payload:
        message = wire_bytes(raw)
        return cls(message, data_on_the_wire(message), message.isascii())


def make_tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Client TLS context: system CAs plus ``ca_file``; checks off only if ``verify_tls`` is."""
    context = ssl.create_default_context()
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif settings.ca_file:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise PermanentDeliveryError(
                f"cannot read the CA file {settings.ca_file!r}: {exc}; fix the path in the "
                "SMTP settings"
            ) from exc
    return context


class SmtpTransport:
    """Transport over smtplib that reuses one connection across ``send()`` calls."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._conn: _Connection | None = None
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._ready: tuple[bytes, _Payload] | None = None  # see prepare()

    def __enter__(self) -> SmtpTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.settings
        state = "open" if self._conn is not None else "idle"
        return f"<SmtpTransport {s.security} {s.server} user={s.username!r} {state}>"

    # -- public API -------------------------------------------------------------------

    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> SendResult:
        """Send one message; raise a ``DeliveryError`` subclass if it was not accepted."""
        return self.send_meanwhile(envelope_from, recipients, raw, None)

    def send_meanwhile(
        self, envelope_from: str, recipients: list[str], raw: bytes, meanwhile: Meanwhile | None
    ) -> SendResult:
        """``send()``, calling ``meanwhile()`` (if given) while the server reads the message."""
        if not recipients:
            raise PermanentDeliveryError("no recipients given; add at least one address")
        ready = self._ready
        payload = ready[1] if ready is not None and ready[0] is raw else _Payload.of(raw)
        with self._lock:
            return self._send_locked(envelope_from, list(recipients), payload, meanwhile)

    def prepare(self, raw: bytes) -> None:
        """Get ``raw`` ready to go out next (line endings, dot-stuffing).

        Optional for callers: the worker calls it while the server still reads the
        previous message, which takes this work (~0.1 ms per 100 KB) off the time the
        server waits between messages. ``send`` uses it only for this same object.
        """
        self._ready = (raw, _Payload.of(raw))

    def check(self) -> str:
        """Open a fresh connection and log in; return the greeting and the login answer."""
        with self._lock:
            self._drop(polite=True)
            progress = _Progress()
            try:
                conn, answer = self._open(progress, self._deadline())
            except (OSError, DeliveryError, UnicodeError) as exc:
                raise self._translated(exc, progress) from exc
            conn.deadline_at = None  # until the next transaction
            self._conn = conn
            return answer

    def close(self) -> None:
        """Say QUIT and close the connection (safe to call more than once)."""
        with self._lock:
            self._drop(polite=True)

    # -- sending ----------------------------------------------------------------------

    def _send_locked(
        self,
        envelope_from: str,
        recipients: list[str],
        payload: _Payload,
        meanwhile: Meanwhile | None = None,
    ) -> SendResult:
        deadline = self._deadline()  # one for both attempts
        for attempt in (1, 2):
            reused = self._conn is not None
            progress = _Progress()
            try:
                return self._transaction(
                    progress, envelope_from, recipients, payload, meanwhile, deadline
                )
            except (OSError, DeliveryError, UnicodeError) as exc:
                self._recover(exc)
                stale = reused and not progress.mail_accepted and _is_disconnect(exc)
                if attempt == 1 and stale:
                    continue  # the server closed the idle connection; nothing was sent on it
                raise self._translated(exc, progress) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(
        self,
        progress: _Progress,
        envelope_from: str,
        recipients: list[str],
        payload: _Payload,
        meanwhile: Meanwhile | None = None,
        deadline: float | None = None,
    ) -> SendResult:
        conn = self._conn
        if conn is None:
            conn, _ = self._open(progress, deadline)
            self._conn = conn
        conn.deadline_at = deadline
        try:
            return self._exchange(conn, progress, envelope_from, recipients, payload, meanwhile)
        finally:
            conn.deadline_at = None  # an idle connection's QUIT is not bound by it

    def _exchange(
        self,
        conn: _Connection,
        progress: _Progress,
        envelope_from: str,
        recipients: list[str],
        payload: _Payload,
        meanwhile: Meanwhile | None,
    ) -> SendResult:
        progress.phase = "MAIL FROM"
        options = self._mail_options(conn, envelope_from, recipients, payload)
        code, resp = _envelope_command(conn, "mail", "FROM", envelope_from, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, resp, envelope_from)
        progress.mail_accepted = True
        progress.phase = "RCPT TO"
        refused = self._recipients(conn, recipients)
        progress.phase = "DATA"
        code, resp = _data(conn, payload.data, meanwhile)
        if code != 250:
            raise smtplib.SMTPDataError(code, resp)
        return SendResult(code=code, reply=reply_text(resp), refused=refused)

    def _recipients(self, conn: _Connection, recipients: list[str]) -> dict[str, tuple[int, str]]:
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in recipients:
            code, resp = _envelope_command(conn, "rcpt", "TO", rcpt, [])
            if code == 421:  # the server is closing the session
                raise smtplib.SMTPResponseException(code, resp)
            if code not in (250, 251):
                refused[rcpt] = (code, reply_text(resp))
        if len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(
                {r: (c, t.encode("utf-8", "replace")) for r, (c, t) in refused.items()}
            )
        return refused

    def _mail_options(
        self, conn: _Connection, envelope_from: str, recipients: list[str], payload: _Payload
    ) -> list[str]:
        options: list[str] = []
        if conn.has_extn("size"):
            options.append(f"SIZE={len(payload.message)}")
        if not payload.ascii and conn.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if needs_smtputf8(envelope_from, recipients):
            if not conn.has_extn("smtputf8"):
                raise PermanentDeliveryError(
                    f"the mail server {self.settings.server} does not accept addresses with "
                    "non-ASCII characters (no SMTPUTF8); use an ASCII address instead"
                )
            options.append("SMTPUTF8")
        return options

    # -- connecting -------------------------------------------------------------------

    def _deadline(self) -> float:
        return time.monotonic() + self.settings.deadline

    def _open(self, progress: _Progress, deadline: float | None) -> tuple[_Connection, str]:
        """Connect, greet, secure and log in; the connection is closed again on failure."""
        s = self.settings
        progress.phase = "connect"
        tls = self._tls_context() if s.security != "none" else None
        conn = self._connect(tls, deadline)
        try:
            progress.phase = "EHLO"
            conn.ehlo_or_helo_if_needed()
            if s.security == "starttls":
                progress.phase = "STARTTLS"
                self._starttls(conn, tls)
            answers = [conn.greeting]
            if s.username:
                progress.phase = "login"
                answers.append(self._login(conn, s.username, s.password))
            return conn, "; ".join(answers)
        except BaseException:
            conn.close()
            raise

    def _connect(self, tls: ssl.SSLContext | None, deadline: float | None) -> _Connection:
        s = self.settings
        options: dict[str, Any] = {
            "local_hostname": s.local_hostname,
            "timeout": s.timeout,
            "deadline_at": deadline,
        }
        if s.security == "ssl":
            return _SslClient(s.host, s.port, context=tls, outbound=s.outbound, **options)
        return _Client(s.host, s.port, outbound=s.outbound, **options)

    def _starttls(self, conn: _Connection, tls: ssl.SSLContext | None) -> None:
        if not conn.has_extn("starttls"):
            raise PermanentDeliveryError(
                f"the mail server {self.settings.server} does not offer STARTTLS, so docmail "
                "will not send the login and messages unencrypted; use security 'ssl' if the "
                "server expects TLS from the start (usually port 465), or 'none' only for a "
                "local test server"
            )
        conn.starttls(context=tls)
        conn.ehlo_or_helo_if_needed()

    def _login(self, conn: _Connection, username: str, password: str | None) -> str:
        if not conn.has_extn("auth"):
            raise PermanentDeliveryError(
                f"the mail server {self.settings.server} does not offer login (AUTH) on this "
                f"connection, but user {username!r} is configured; remove the username from the "
                "SMTP settings or pick the security mode under which the server offers login"
            )
        if self.settings.oauth_token is not None:
            return self._login_xoauth2(conn, username)
        if password is None:
            raise AuthenticationFailed(
                f"no password is set for user {username!r}; add it to the SMTP settings"
            )
        code, resp = conn.login(username, password)
        return f"{code} {reply_text(resp)}"

    def _login_xoauth2(self, conn: _Connection, username: str) -> str:
        """AUTH XOAUTH2; if the token is refused, ask for a fresh one and try once more."""
        get_token, refresh = self.settings.oauth_token, self.settings.oauth_refresh
        assert get_token is not None  # checked by the caller
        token = get_token()
        try:
            return self._auth_xoauth2(conn, username, token)
        except smtplib.SMTPAuthenticationError as exc:
            if refresh is None or is_transient_reply(exc.smtp_code, reply_text(exc.smtp_error)):
                raise
        return self._auth_xoauth2(conn, username, refresh(token))

    @staticmethod
    def _auth_xoauth2(conn: _Connection, username: str, token: str) -> str:
        def respond(challenge: bytes | None = None) -> str:
            # After a 334 error challenge the client answers with an empty line (RFC 7628).
            return xoauth2_string(username, token) if challenge is None else ""

        code, resp = conn.auth("XOAUTH2", respond, initial_response_ok=True)
        return f"{code} {reply_text(resp)}"

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = make_tls_context(self.settings)
        return self._tls

    # -- after failures ---------------------------------------------------------------

    def _recover(self, exc: BaseException) -> None:
        """Leave a clean state: RSET if the session is still sound, otherwise drop it."""
        conn = self._conn
        if conn is None:
            return
        if _keeps_connection(exc) and conn.sock is not None:
            try:
                code, _ = conn.rset()
            except (OSError, UnicodeError):
                code = 0
            if code == 250:
                return
        self._drop(polite=False)

    def _drop(self, *, polite: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if polite and conn.sock is not None:
                conn.quit()
        except (OSError, UnicodeError):
            pass  # the connection is going away either way
        finally:
            conn.close()

    def _translated(self, exc: BaseException, progress: _Progress) -> DeliveryError:
        s = self.settings
        ctx = ErrorContext(
            host=s.host,
            port=s.port,
            phase=progress.phase,
            username=s.username,
            secret=s.password,
            timeout=s.timeout,
        )
        return translate_error(exc, ctx)


def _envelope_command(
    conn: _Connection, verb: str, keyword: str, address: str, options: list[str]
) -> tuple[int, bytes]:
    """``MAIL FROM:<address>`` or ``RCPT TO:<address>``, as smtplib's ``mail``/``rcpt``
    send them, without re-parsing the address (``email.utils.parseaddr`` per command was
    ~2 % of the time the server waits): callers pass bare addresses, anything else fails."""
    if any(bad in address for bad in "<>\r\n") or not address:
        raise PermanentDeliveryError(
            f"{address!r} is not a bare email address (no name, brackets or line breaks)"
        )
    if "SMTPUTF8" in options:  # _mail_options checked the server offers it
        conn.command_encoding = "utf-8"
    conn.putcmd(verb, f"{keyword}:<{address}>" + "".join(f" {o}" for o in options))
    return conn.getreply()


def _data(conn: _Connection, data: bytes, meanwhile: Meanwhile | None) -> tuple[int, bytes]:
    """smtplib's ``data()`` for ``data`` already dot-stuffed (:func:`data_on_the_wire`), with
    ``meanwhile()`` (if any) run between sending and reading the reply."""
    conn.putcmd("data")
    code, reply = conn.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    conn.send(data)
    if meanwhile is not None:
        meanwhile()
    return conn.getreply()


def data_on_the_wire(payload: bytes) -> bytes:
    """The DATA body as sent: lines starting with a dot get another (RFC 5321 4.5.2
    transparency), ended by ``<CRLF>.<CRLF>``. ``payload`` already ends lines in CRLF."""
    # bytes.replace rather than smtplib's multi-line regex: ~0.08 instead of ~0.4 ms for
    # a 130 KB message, and this runs while the server waits for the message.
    stuffed = payload.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


# --------------------------------------------------------------------------------------
# In-memory fake for unit tests
# --------------------------------------------------------------------------------------

SendHandler = Callable[[str, list[str], bytes], SendResult]


class MockTransport:
    """In-memory transport for tests, in the spirit of ``httpx.MockTransport``.

    Without a handler every message is accepted. A handler may return its own
    ``SendResult`` or raise a ``DeliveryError`` to simulate a failure. ``sent``
    holds the messages that were accepted; ``attempts`` every call to ``send()``.
    """

    def __init__(self, handler: SendHandler | None = None) -> None:
        self.handler = handler
        self.sent: list[tuple[str, list[str], bytes]] = []
        self.attempts: list[tuple[str, list[str], bytes]] = []
        self.closed = False
        self._lock = threading.Lock()

    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> SendResult:
        item = (envelope_from, list(recipients), raw)
        with self._lock:
            self.attempts.append(item)
        result = self.handler(*item) if self.handler else self._accept()
        with self._lock:
            self.sent.append(item)
        return result

    def check(self) -> str:
        return "220 MockTransport ready"

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> MockTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> SendResult:
        return SendResult(code=250, reply=f"2.0.0 Ok: queued as MOCK{len(self.attempts):04d}")
