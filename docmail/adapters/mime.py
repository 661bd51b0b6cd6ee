"""Building the RFC 5322 message from an outbox row: deterministic headers, real attachments.

Written directly rather than through ``email.message.EmailMessage``: the standard
library's generator re-parses and re-folds every header and wraps base64 in
Python, about 5 ms for a 100 KB invoice email, more than the SMTP server takes to
receive it. Here each part is encoded by C functions (``binascii``) and an
attachment's encoding is cached by its content hash, so the same PDF sent to
several parties (or retried) is encoded once. ``BytesParser`` reads the result
back to the same text, names and bytes (tests/unit/test_properties_headers.py,
tests/integration/test_properties_mime_roundtrip.py).
"""

from __future__ import annotations

import binascii
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

from docmail.adapters.mime_headers import address_header, unstructured_header

CRLF = b"\r\n"


@dataclass(frozen=True)
class AttachmentPart:
    filename: str
    content_type: str
    data: bytes
    key: str | None = None  # the content's sha256 when known: its encoding is then cached


@dataclass(frozen=True)
class OutgoingEmail:
    """Everything needed to produce the bytes sent to the server."""

    message_id: str
    date: datetime
    from_email: str
    from_name: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    body_text: str
    body_html: str
    attachments: list[AttachmentPart]

    @property
    def envelope_recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]


def new_message_id(domain: str) -> str:
    """A globally unique Message-ID, fixed before the first delivery attempt."""
    return f"<{uuid.uuid4().hex}@{domain or 'docmail.local'}>"


class EncodedCache:
    """Base64 bodies of attachments by content hash, bounded by total size (LRU)."""

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def encoded(self, part: AttachmentPart) -> bytes:
        if part.key is None:
            return _base64_lines(part.data)
        with self._lock:
            found = self._items.get(part.key)
            if found is not None:
                self._items.move_to_end(part.key)
                return found
        encoded = _base64_lines(part.data)
        with self._lock:
            if part.key not in self._items:
                self._items[part.key] = encoded
                self._size += len(encoded)
            while self._size > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
        return encoded


ENCODED = EncodedCache()


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters ending in CRLF (RFC 2045)."""
    # One C call for the whole body, then slices: base64.encodebytes loops in Python
    # over 57-byte pieces (~30 % slower for a 60 KB PDF).
    encoded = binascii.b2a_base64(data, newline=False)
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return CRLF.join(lines) + CRLF if lines else b""


def _text_lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text_part(text: str, subtype: str) -> bytes:
    """A text part in UTF-8: 7bit when it is short-lined ASCII, quoted-printable otherwise."""
    body = _text_lines(text)
    if not body.endswith("\n"):
        body += "\n"
    data = body.encode("utf-8", "replace")
    if data.isascii() and max(map(len, data.split(b"\n"))) <= 900 and b"\r" not in data:
        encoding, payload = b"7bit", data
    else:
        encoding = b"quoted-printable"
        payload = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return (
        b"Content-Type: text/" + subtype.encode() + b'; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: " + encoding + CRLF + CRLF + payload.replace(b"\n", CRLF)
    )


_TOKEN_SAFE = frozenset(
    "!#$&+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _filename_param(filename: str) -> bytes:
    """``filename="..."`` for plain ASCII names, RFC 2231 ``filename*`` otherwise."""
    plain = filename.isascii() and filename.isprintable() and '"' not in filename
    if plain and "\\" not in filename and len(filename) <= 60:
        return f'filename="{filename}"'.encode("ascii")
    encoded = quote(filename.encode("utf-8"), safe="".join(sorted(_TOKEN_SAFE)))
    pieces = [encoded[i : i + 60] for i in range(0, len(encoded), 60)]
    # Never split a %XX escape across two continuation pieces.
    fixed: list[str] = []
    carry = ""
    for piece in pieces:
        piece = carry + piece
        cut = piece.rfind("%", max(len(piece) - 2, 0))
        carry, piece = (piece[cut:], piece[:cut]) if cut != -1 else ("", piece)
        fixed.append(piece)
    if carry:
        fixed.append(carry)
    if len(fixed) == 1:
        return f"filename*=utf-8''{fixed[0]}".encode("ascii")
    lines = [
        f"filename*{n}*=utf-8''{p}" if n == 0 else f"filename*{n}*={p}" for n, p in enumerate(fixed)
    ]
    return ";\r\n ".join(lines).encode("ascii")


def _attachment_part(part: AttachmentPart, cache: EncodedCache) -> bytes:
    maintype, _, subtype = part.content_type.partition("/")
    content_type = f"{maintype or 'application'}/{subtype or 'octet-stream'}"
    return (
        b"Content-Type: " + content_type.encode("ascii") + CRLF
        + b"Content-Transfer-Encoding: base64\r\n"
        + b"Content-Disposition: attachment;\r\n " + _filename_param(part.filename) + CRLF
        + CRLF + cache.encoded(part)
    )  # fmt: skip


def _boundary(parts: list[bytes]) -> bytes:
    """A boundary derived from the parts, so a message renders to the same bytes on every
    attempt (a retry to recipients the server deferred is the copy the others got)."""
    checksum = 0
    for part in parts:
        checksum = binascii.crc32(part, checksum)
    for salt in range(1_000_000):
        candidate = b"==docmail_%08x%08x_%d==" % (checksum, sum(map(len, parts)), salt)
        if not any(candidate in p for p in parts):
            return candidate
    raise ValueError("no MIME boundary found that the message does not contain")


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    boundary = _boundary(parts)
    out = [b"Content-Type: multipart/" + subtype.encode() + b'; boundary="' + boundary + b'"\r\n']
    out.append(CRLF)
    for part in parts:
        out.append(b"--" + boundary + CRLF + part + (b"" if part.endswith(CRLF) else CRLF))
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)


def _body(mail: OutgoingEmail, cache: EncodedCache) -> bytes:
    body = _text_part(mail.body_text or " ", "plain")
    if mail.body_html:
        body = _multipart("alternative", [body, _text_part(mail.body_html, "html")])
    if mail.attachments:
        attachments = [_attachment_part(a, cache) for a in mail.attachments]
        body = _multipart("mixed", [body, *attachments])
    return body


def _headers(mail: OutgoingEmail) -> bytes:
    lines = [
        b"Message-ID: " + mail.message_id.encode("ascii") + CRLF,
        b"Date: " + format_datetime(mail.date).encode("ascii") + CRLF,
        address_header("From", ((mail.from_name, mail.from_email),)),
        address_header("To", tuple(parseaddr(a) for a in mail.to)),
    ]
    if mail.cc:
        lines.append(address_header("Cc", tuple(parseaddr(a) for a in mail.cc)))
    lines.append(unstructured_header("Subject", mail.subject))
    lines.append(b"MIME-Version: 1.0\r\n")
    return b"".join(lines)


class CrlfMessage(bytes):
    """Message bytes built here, so known to end every line in CRLF: the SMTP transport
    need not scan 100 KB for bare line endings (a measurable share of a send)."""


def render_bytes(mail: OutgoingEmail, cache: EncodedCache = ENCODED) -> CrlfMessage:
    """The message with CRLF line endings, as SMTP wants. Bcc never appears in headers."""
    return CrlfMessage(_headers(mail) + _body(mail, cache))
