"""Building the RFC 5322 message from an outbox row: deterministic headers, real attachments."""

from __future__ import annotations

import email.policy
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

_POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class AttachmentPart:
    filename: str
    content_type: str
    data: bytes


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


def _address(value: str) -> Address:
    from email.utils import parseaddr

    name, addr = parseaddr(value)
    return Address(display_name=name, addr_spec=addr)


def build_message(mail: OutgoingEmail) -> EmailMessage:
    msg = EmailMessage(policy=_POLICY)
    msg["Message-ID"] = mail.message_id
    msg["Date"] = format_datetime(mail.date)
    msg["From"] = Address(display_name=mail.from_name, addr_spec=mail.from_email)
    msg["To"] = [_address(a) for a in mail.to]
    if mail.cc:
        msg["Cc"] = [_address(a) for a in mail.cc]
    msg["Subject"] = mail.subject
    msg["MIME-Version"] = "1.0"
    msg.set_content(mail.body_text or " ")
    if mail.body_html:
        msg.add_alternative(mail.body_html, subtype="html")
    for part in mail.attachments:
        maintype, _, subtype = part.content_type.partition("/")
        msg.add_attachment(
            part.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=part.filename,
        )
    return msg


def render_bytes(mail: OutgoingEmail) -> bytes:
    """Serialise with CRLF line endings, as SMTP wants. Bcc never appears in headers."""
    return build_message(mail).as_bytes(policy=_POLICY)
