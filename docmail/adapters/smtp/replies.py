"""SMTP replies and failures in plain words: classification and translation to docmail errors.

Pure functions over smtplib/ssl/socket exceptions and reply texts; the transport
calls ``translate_error`` at its edge so everything above it sees one error tree.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field

from docmail.adapters.mime import CrlfMessage
from docmail.domain.outbox import is_transient_smtp_code, split_enhanced_code
from docmail.errors import (
    AuthenticationFailed,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

# Phases before the first transaction command; a failure here means "could not connect".
CONNECT_PHASES = frozenset({"connect", "the greeting", "EHLO", "STARTTLS", "login"})

RETRY_LATER = "docmail will try again later"


# --------------------------------------------------------------------------------------
# Pure helpers: reply texts, wire format, classification
# --------------------------------------------------------------------------------------


def reply_text(reply: bytes | str) -> str:
    """Server reply as one line of text (multi-line replies joined with spaces)."""
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def redact(text: str, secret: str | None) -> str:
    """Replace every occurrence of ``secret`` in ``text`` with ``***``."""
    return text.replace(secret, "***") if secret else text


def is_transient_reply(code: int, text: str) -> bool:
    """4xx (or an enhanced 4.x.x) may work later; so may an unreadable reply (code < 100)."""
    if code < 100:
        return True
    return is_transient_smtp_code(code, split_enhanced_code(text))


_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")


def wire_bytes(raw: bytes) -> bytes:
    """The message with CRLF line endings, as SMTP requires (bare CR or LF are converted)."""
    if isinstance(raw, CrlfMessage):
        return raw
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") == crlf and raw.count(b"\r") == crlf:
        return raw
    return _LINE_ENDINGS.sub(b"\r\n", raw)


def xoauth2_string(username: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64), as Google and Microsoft define it."""
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01"


def needs_smtputf8(envelope_from: str, recipients: list[str]) -> bool:
    return not all(address.isascii() for address in [envelope_from, *recipients])


@dataclass(frozen=True)
class ErrorContext:
    """What the translation needs to know to word an error."""

    host: str
    port: int
    phase: str = "connect"  # connect, the greeting, EHLO, STARTTLS, login, MAIL FROM, ...
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def clean(self, text: str) -> str:
        return redact(text, self.secret)


def reply_error(code: int, text: str, ctx: ErrorContext) -> DeliveryError:
    """Error for an unwanted SMTP reply (not a login reply)."""
    text = ctx.clean(text)
    details = dict(smtp_code=code, server_reply=text)
    if is_transient_reply(code, text):
        return TransientDeliveryError(
            f"the mail server {ctx.server} answered {code} {text} to {ctx.phase}; "
            f"this is temporary, {RETRY_LATER}",
            **details,
        )
    return PermanentDeliveryError(
        f"the mail server {ctx.server} refused {ctx.phase}: {code} {text}; "
        f"{_permanent_advice(code, ctx)}",
        **details,
    )


def _permanent_advice(code: int, ctx: ErrorContext) -> str:
    if code == 530 and not ctx.username:
        return "the server requires a login: set the username and password in the SMTP settings"
    if ctx.phase == "RCPT TO":
        return "check the recipient address; retrying will not help"
    if ctx.phase == "MAIL FROM":
        return "check the sender address and that the account may send as it"
    return "check the SMTP settings and the message; retrying will not help"


def login_error(code: int, text: str, ctx: ErrorContext) -> DeliveryError:
    """Error for a refused AUTH: wrong credentials are permanent, a 4xx answer is not."""
    text = ctx.clean(text)
    user = ctx.clean(ctx.username or "")
    if is_transient_reply(code, text):
        return TransientDeliveryError(
            f"the server {ctx.server} could not check the login for user {user!r} right now: "
            f"{code} {text}; {RETRY_LATER}",
            smtp_code=code,
            server_reply=text,
        )
    return AuthenticationFailed(
        f"the server refused the login for user {user!r}: {code} {text}; "
        "check the username and password in the SMTP settings",
        smtp_code=code,
        server_reply=text,
    )


def refused_recipients_error(
    refusals: dict[str, tuple[int, str]], ctx: ErrorContext
) -> DeliveryError:
    """Error when the server refused every recipient: transient if any refusal was 4xx."""
    cleaned = {rcpt: (code, ctx.clean(text)) for rcpt, (code, text) in refusals.items()}
    transient = [(c, t) for c, t in cleaned.values() if is_transient_reply(c, t)]
    code, text = transient[0] if transient else next(iter(cleaned.values()))
    listing = "; ".join(f"{rcpt}: {c} {t}" for rcpt, (c, t) in cleaned.items())
    details = dict(smtp_code=code, server_reply=text, recipients=list(cleaned))
    if transient:
        return TransientDeliveryError(
            f"the mail server {ctx.server} did not accept the recipients for now ({listing}); "
            f"{RETRY_LATER}",
            **details,
        )
    return PermanentDeliveryError(
        f"the mail server {ctx.server} refused every recipient ({listing}); "
        "check the addresses, retrying will not help",
        **details,
    )


def describe_os_error(exc: BaseException, timeout: float) -> str:
    """Plain words for a socket-level failure."""
    cause = exc.__context__ if isinstance(exc, smtplib.SMTPServerDisconnected) else None
    if isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError):
        return f"no answer within {timeout:g} seconds"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is a mail server listening on that port?)"
    if isinstance(exc, socket.gaierror):
        return f"the host name could not be resolved ({exc.strerror or exc})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({exc})" if str(exc) else "the server hung up"
    return str(exc) or type(exc).__name__


def connection_error(exc: BaseException, ctx: ErrorContext) -> DeliveryError:
    reason = ctx.clean(describe_os_error(exc, ctx.timeout))
    if ctx.phase in CONNECT_PHASES:
        return TransientDeliveryError(
            f"could not connect to {ctx.server}: {reason}; check the host, port and security "
            f"settings, {RETRY_LATER}"
        )
    maybe_sent = ""
    if ctx.phase == "DATA":
        maybe_sent = " (the server may already have accepted the message)"
    return TransientDeliveryError(
        f"lost the connection to {ctx.server} during {ctx.phase}: {reason}{maybe_sent}; "
        f"{RETRY_LATER}"
    )


def tls_error(exc: ssl.SSLError, ctx: ErrorContext) -> DeliveryError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = ctx.clean(exc.verify_message or str(exc))
        return PermanentDeliveryError(
            f"TLS certificate of {ctx.host} is not trusted: {detail}; fix the certificate or, "
            "only for a test server, turn off verify_tls"
        )
    reason = ctx.clean(getattr(exc, "reason", None) or str(exc))
    return TransientDeliveryError(
        f"TLS handshake with {ctx.server} failed: {reason}; check the security setting "
        f"('ssl' is usually port 465, 'starttls' port 587), {RETRY_LATER}"
    )


def translate_error(exc: BaseException, ctx: ErrorContext) -> DeliveryError:
    """Map an smtplib/ssl/socket exception to the docmail error tree."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return login_error(exc.smtp_code, reply_text(exc.smtp_error), ctx)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = {r: (code, reply_text(t)) for r, (code, t) in exc.recipients.items()}
        return refused_recipients_error(refusals, ctx)
    if isinstance(exc, smtplib.SMTPResponseException):
        return reply_error(exc.smtp_code, reply_text(exc.smtp_error), ctx)
    if isinstance(exc, ssl.SSLError):
        return tls_error(exc, ctx)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return connection_error(exc, ctx)
    if isinstance(exc, smtplib.SMTPException):
        return PermanentDeliveryError(
            f"the mail server {ctx.server} cannot do what docmail needs during {ctx.phase}: "
            f"{ctx.clean(str(exc))}; check the SMTP settings"
        )
    if isinstance(exc, OSError):
        return connection_error(exc, ctx)
    return PermanentDeliveryError(
        f"could not send through {ctx.server} during {ctx.phase}: "
        f"{ctx.clean(str(exc)) or type(exc).__name__}"
    )


def _is_disconnect(exc: BaseException) -> bool:
    """True when the server hung up (not a timeout): typical of an idle connection it closed."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return not isinstance(exc.__context__, TimeoutError)
    return isinstance(exc, ConnectionError)


def _keeps_connection(exc: BaseException) -> bool:
    """True when the server answered normally, so the session can continue after RSET."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 100 and exc.smtp_code != 421
    return isinstance(exc, smtplib.SMTPRecipientsRefused | DeliveryError)
