"""MIME round trip through docmail's real SMTP transport to a real aiosmtpd server.

Hypothesis makes the subject, the plain-text and HTML bodies and up to three
attachments (arbitrary bytes, Unicode file names that pass docmail's own filename
check); ``render_bytes`` builds the message exactly as the worker does and
``SmtpTransport`` delivers it to aiosmtpd on 127.0.0.1. What the server received
must parse back into the same parts. Each example sends a real message, so the
number of examples is kept small.
"""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from typing import cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docmail.adapters.mime import AttachmentPart, OutgoingEmail, render_bytes
from docmail.adapters.smtp import SmtpTransport
from docmail.errors import ValidationError
from docmail.services.inputs import check_content_type, check_filename
from tests.support.smtp_server import SmtpTestServer

SENDER = "facturas@acme.com.mx"
CUSTOMER = "contas@cliente.com.br"
CONTENT_TYPES = (
    "application/pdf", "application/xml", "application/zip", "application/octet-stream",
    "image/png", "text/plain", "text/xml", "text/csv",
)  # fmt: skip
IBERIAN = "ñÑçÇãõáéíóúâêôü¿¡«»“”ºª€ -_()[]',;&"
EMOJI = "🎉📄✅💰🇧🇷"

_chars = st.one_of(
    st.sampled_from(IBERIAN),
    st.sampled_from(EMOJI),
    st.characters(exclude_categories=("Cs",)),
)
#: Bodies: any text, including CR, LF, CRLF, lone dots and NUL-free control characters.
bodies = st.lists(
    st.one_of(_chars, st.sampled_from(["\r\n", "\n", "\r", "\n.\n", "."])), max_size=300
).map("".join)


def _acceptable_filename(name: str) -> bool:
    try:
        check_filename(name, "filename")
    except ValidationError:
        return False
    return True


#: File names as the API accepts them (outer whitespace stripped, then checked).
filenames = st.text(_chars, min_size=1, max_size=120).map(str.strip).filter(_acceptable_filename)
attachments = st.builds(
    AttachmentPart,
    filename=filenames,
    content_type=st.sampled_from(CONTENT_TYPES).map(lambda ct: check_content_type(ct, "ct")),
    data=st.binary(max_size=4096),
)
subjects = st.text(_chars, min_size=1, max_size=80).map(lambda s: " ".join(s.split()))


def _lines(text: str) -> str:
    """Line endings normalised: CRLF and lone CR become LF; one final LF."""
    text = re.sub(r"\r\n|\r", "\n", text)
    return text if text.endswith("\n") else text + "\n"


def _received(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, BytesParser(policy=email.policy.default).parsebytes(raw))


def _check_structure(message: EmailMessage, mail: OutgoingEmail) -> None:
    if mail.attachments:
        expected = "multipart/mixed"
    elif mail.body_html:
        expected = "multipart/alternative"
    else:
        expected = "text/plain"
    assert message.get_content_type() == expected
    assert message.defects == []


def _check_bodies(message: EmailMessage, mail: OutgoingEmail) -> None:
    plain = message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert _lines(plain.get_content()) == _lines(mail.body_text or " ")
    html = message.get_body(preferencelist=("html",))
    if mail.body_html:
        assert html is not None
        assert _lines(html.get_content()) == _lines(mail.body_html)
    else:
        assert html is None


def _check_attachments(message: EmailMessage, mail: OutgoingEmail) -> None:
    received = list(message.iter_attachments())
    assert [part.get_filename() for part in received] == [a.filename for a in mail.attachments]
    assert [part.get_content_type() for part in received] == [
        a.content_type for a in mail.attachments
    ]
    for part, sent in zip(received, mail.attachments, strict=True):
        assert part.get_content_disposition() == "attachment"
        assert part.get_payload(decode=True) == sent.data


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    subject=subjects.filter(bool),
    body_text=bodies,
    body_html=st.one_of(st.just(""), bodies.map(lambda b: f"<p>{b}</p>")),
    parts=st.lists(attachments, max_size=3),
)
def test_messages_arrive_with_the_same_bodies_and_attachments(
    smtp_server_plain: SmtpTestServer,
    subject: str,
    body_text: str,
    body_html: str,
    parts: list[AttachmentPart],
) -> None:
    mail = OutgoingEmail(
        message_id="<9a8b7c6d@acme.com.mx>",
        date=datetime(2025, 1, 24, 12, 0, tzinfo=UTC),
        from_email=SENDER,
        from_name="Facturación ACME",
        to=[f"Conceição Muñoz <{CUSTOMER}>"],
        cc=[],
        bcc=["archivo@acme.com.mx"],
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        attachments=parts,
    )
    before = len(smtp_server_plain.messages)
    with SmtpTransport(smtp_server_plain.client_settings()) as transport:
        result = transport.send(SENDER, [CUSTOMER, "archivo@acme.com.mx"], render_bytes(mail))
    assert result.code == 250
    arrived = smtp_server_plain.wait_for(before + 1)[before]
    assert arrived.rcpt_tos == [CUSTOMER, "archivo@acme.com.mx"]

    message = _received(arrived.raw)
    assert message["Subject"] == subject
    assert message["Bcc"] is None
    _check_structure(message, mail)
    _check_bodies(message, mail)
    _check_attachments(message, mail)
