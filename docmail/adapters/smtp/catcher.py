"""A local SMTP server for demo mode: it accepts every message and hands it to a callback.

Each message keeps its Message-ID, which tells the demo whose outbox it came from, so
every company sees only its own caught mail.

The catcher listens on a loopback address only, offers neither login nor TLS, and
never relays anything. The callback runs on one worker thread owned by the
catcher (one message at a time), so it may block, e.g. to write to a database.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)

_LOCALHOST_NAMES = {"localhost": "127.0.0.1"}


@dataclass(frozen=True)
class CaughtEnvelope:
    mail_from: str
    rcpt_to: list[str]
    raw: bytes
    subject: str  # decoded Subject header ('' if none)
    message_id: str = ""  # the Message-ID header ('' if none): tells whose message it is


def decode_headers(raw: bytes) -> tuple[str, str]:
    """The decoded Subject (on one line) and the Message-ID of a raw message ('' if missing)."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        subject, message_id = headers["subject"], headers["message-id"]
    except Exception:  # a malformed header must not stop the catcher
        log.debug("could not parse the headers", exc_info=True)
        return "", ""
    subject_text = "" if subject is None else " ".join(str(subject).split())
    return subject_text, "" if message_id is None else str(message_id).strip()


def loopback_host(host: str) -> str:
    """Return ``host`` as a loopback IP address, or raise ValueError for anything else."""
    literal = _LOCALHOST_NAMES.get(host.lower(), host)
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        raise ValueError(
            f"the mail catcher only listens on a loopback address such as 127.0.0.1, not {host!r}"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"the mail catcher only listens on a loopback address such as 127.0.0.1, not "
            f"{host!r}: it accepts mail from anyone who can reach it"
        )
    return str(address)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_port_free(host: str, port: int) -> None:
    """Fail fast with a clear message (aiosmtpd would wait for its ready timeout)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(
                    exc.errno,
                    f"port {port} on {host} is already in use; stop the other program or pick "
                    "another port for the mail catcher",
                ) from exc
            raise


class _CatcherHandler:
    """aiosmtpd handler: turns each DATA into a CaughtEnvelope for the callback."""

    def __init__(
        self, on_message: Callable[[CaughtEnvelope], None], executor: ThreadPoolExecutor
    ) -> None:
        self._on_message = on_message
        self._executor = executor
        self._count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or b"")
        subject, message_id = decode_headers(raw)
        caught = CaughtEnvelope(
            mail_from=envelope.mail_from or "",
            rcpt_to=list(envelope.rcpt_tos),
            raw=raw,
            subject=subject,
            message_id=message_id,
        )
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._on_message, caught)
        except Exception:
            log.exception("the mail catcher callback failed")
            return "451 4.3.0 the mail catcher could not store the message; see the docmail log"
        self._count += 1
        return f"250 2.0.0 Ok: caught as CATCH{self._count:06d}"


class MailCatcher:
    """Built-in local SMTP server (aiosmtpd Controller) for demo mode.

    Accepts everything on a loopback address, no auth, no TLS, and hands each
    message to ``on_message``. ``port=0`` picks a free port; ``port`` then holds it.
    """

    def __init__(
        self,
        on_message: Callable[[CaughtEnvelope], None],
        host: str = "127.0.0.1",
        port: int = 2525,
    ) -> None:
        if not 0 <= port < 65536:
            raise ValueError(f"port {port} is out of range; use 1-65535, or 0 for any free port")
        self.host = loopback_host(host)
        self.port = port
        self._on_message = on_message
        self._controller: Controller | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        if self._controller is not None:
            raise RuntimeError("the mail catcher is already running")
        if self.port == 0:
            self.port = _free_port(self.host)
        else:
            _ensure_port_free(self.host, self.port)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-catcher")
        controller = Controller(
            _CatcherHandler(self._on_message, executor),
            hostname=self.host,
            port=self.port,
            server_hostname="docmail-catcher",
            ident="docmail mail catcher",
        )
        try:
            controller.start()
        except BaseException:
            _abandon(controller)
            executor.shutdown(wait=True)
            raise
        self._controller, self._executor = controller, executor
        log.info("mail catcher listening on %s:%s", self.host, self.port)

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        executor, self._executor = self._executor, None
        if controller is not None:
            controller.stop()
        if executor is not None:
            executor.shutdown(wait=True)

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _abandon(controller: Controller) -> None:
    """Clean up after a failed start so no thread or event loop is left behind."""
    controller.stop(no_assert=True)
    if not controller.loop.is_running() and not controller.loop.is_closed():
        controller.loop.close()
