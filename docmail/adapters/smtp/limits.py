"""Bounds on one SMTP transaction: a total deadline, and caps on the size of a reply.

smtplib reads a reply line by line for as long as the server sends ``220-``
continuation lines, and its timeout applies to each read: a server that keeps
talking (endless lines, a megabyte of reply, one byte a second) would hold the
worker, and every company behind it, forever. ``BoundedReplies`` replaces
smtplib's reply reader with one that gives up, as a lost connection (a
transient failure), when the transaction's deadline passes or a reply exceeds
``MAX_REPLY_LINES`` lines or ``MAX_REPLY_BYTES`` bytes.
"""

from __future__ import annotations

import smtplib
import time
from typing import Any

MAX_REPLY_LINES = 100
MAX_REPLY_BYTES = 64 * 1024
STORED_REPLY_CHARS = 2000  # of a reply or error kept on a message and its attempt


def clip(text: str | None, limit: int = STORED_REPLY_CHARS) -> str | None:
    """``text`` cut to ``limit`` characters (marked), for storing a server's words."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 14] + " [… truncated]"


class BoundedReplies(smtplib.SMTP):
    """smtplib.SMTP whose reads and writes end by ``deadline_at`` (``time.monotonic()``)."""

    deadline_at: float | None = None  # None: only the per-step timeout applies
    _unread: bytearray | None = None  # received and not yet read as a reply line

    def time_left(self, timeout: float) -> float:
        """The time a step may take: ``timeout``, or less when the deadline is nearer."""
        if self.deadline_at is None:
            return timeout
        left = self.deadline_at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the SMTP transaction took longer than its deadline")
        return min(timeout, left)

    def send(self, s: Any) -> None:
        if self.sock is not None:
            try:
                self.sock.settimeout(self.time_left(self.timeout))
            except TimeoutError as exc:
                self.close()
                raise smtplib.SMTPServerDisconnected(str(exc)) from exc
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        """One reply (all its lines), within the deadline and the caps."""
        lines: list[bytes] = []
        size = 0
        while True:
            line = self._reply_line()
            size += len(line)
            if len(lines) >= MAX_REPLY_LINES or size > MAX_REPLY_BYTES:
                self.close()
                raise smtplib.SMTPServerDisconnected(
                    f"the server's reply went over {MAX_REPLY_LINES} lines or "
                    f"{MAX_REPLY_BYTES} bytes; docmail hung up"
                )
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                return -1, b"\n".join(lines)
            if line[3:4] != b"-":
                return code, b"\n".join(lines)

    def _reply_line(self) -> bytes:
        if self._unread is None:
            self._unread = bytearray()
        unread = self._unread
        while (end := unread.find(b"\n")) < 0:
            if len(unread) > MAX_REPLY_BYTES or self.sock is None:
                self.close()
                raise smtplib.SMTPServerDisconnected("the server's reply line has no end")
            try:
                self.sock.settimeout(self.time_left(self.timeout))
                chunk = self.sock.recv(65536)
            except OSError as exc:  # TimeoutError too
                self.close()
                raise smtplib.SMTPServerDisconnected(
                    f"Connection unexpectedly closed: {exc}"
                ) from exc
            if not chunk:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            unread += chunk
        line = bytes(unread[: end + 1])
        del unread[: end + 1]
        return line

    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        reply = super().starttls(*args, **kwargs)
        # Anything the server sent before TLS began is not to be believed after it.
        self._unread = None
        return reply

    def close(self) -> None:
        self._unread = None
        super().close()
