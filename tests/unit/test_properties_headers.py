"""Property tests of header encoding by the real message builder (docmail.adapters.mime).

Subjects and display names go through the same validation the send service applies
(``check_subject``, ``check_display_name``, ``parse_mailbox_list`` + ``formatted``)
and are then written by ``render_bytes``, the function the worker sends. The bytes
must carry no injected header, keep every line within RFC 5322's 998 octets, be
ASCII with RFC 2047 encoded-words (docmail does not use SMTPUTF8), and parse back
with ``BytesParser(policy=email.policy.default)`` to exactly the original text.
"""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docmail.adapters.mime import OutgoingEmail, render_bytes
from docmail.domain.addresses import (
    check_display_name,
    check_subject,
    parse_mailbox_list,
)
from docmail.errors import ValidationError

SENDER = "facturas@acme.com.mx"
CUSTOMER = "cuentas@cliente.com.br"
#: The headers a message without Cc and attachments has, each exactly once.
EXPECTED_HEADERS = [
    "Message-ID", "Date", "From", "To", "Subject", "MIME-Version",
    "Content-Type", "Content-Transfer-Encoding",
]  # fmt: skip
IBERIAN_TEXT = (
    "ñÑçÇãÃõÕáéíóúÁÉÍÓÚâêôàü¿¡«»“”\u2018\u2019\"',.;:—\u2013-ºª€$%&()[]<>@!?=_* "
    "Fatura Factura Nota Fiscal Conceição São João Peña Muñoz Cancún Ação Órgão Señor "
)
EMOJI = "🎉📄✅💰🇧🇷🇲🇽👩‍💼"

#: Text as people and templates write it: mostly Spanish and Portuguese, some emoji,
#: any other Unicode character (no surrogates: JSON input cannot carry them).
_chars = st.one_of(
    st.sampled_from(IBERIAN_TEXT),
    st.sampled_from(EMOJI),
    st.characters(exclude_categories=("Cs",)),
)


def _acceptable_subject(text: str) -> bool:
    try:
        check_subject(text)
    except ValidationError:
        return False
    return True


def _subjects(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    # The API strips outer whitespace (Strict models) and templates collapse it, so a
    # subject docmail sends never starts or ends with whitespace.
    return (
        st.text(_chars, min_size=min_size, max_size=max_size)
        .map(str.strip)
        .filter(_acceptable_subject)
    )


subjects = st.one_of(_subjects(1, 60), _subjects(200, 400))


def _acceptable_name(text: str) -> bool:
    try:
        check_display_name(text, "name")
    except ValidationError:
        return False
    return bool(text)


#: Display names as docmail stores them: whitespace runs are one space (RFC 5322 phrases
#: cannot keep more), no outer whitespace.
display_names = (
    st.text(_chars, min_size=1, max_size=250).map(lambda s: " ".join(s.split()))
).filter(_acceptable_name)


def outgoing(subject: str, from_name: str = "ACME", to_name: str = "Cliente") -> OutgoingEmail:
    """The email as the send service and the worker build it from validated input."""
    to = parse_mailbox_list([f'"{_quoted(to_name)}" <{CUSTOMER}>'], "to")
    return OutgoingEmail(
        message_id="<0f1e2d3c@acme.com.mx>",
        date=datetime(2025, 1, 24, 12, 0, tzinfo=UTC),
        from_email=SENDER,
        from_name=check_display_name(from_name, "from_name"),
        to=[m.formatted() for m in to],
        cc=[],
        bcc=[],
        subject=check_subject(subject),
        body_text="Adjuntamos su documento.",
        body_html="",
        attachments=[],
    )


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def parse(raw: bytes) -> EmailMessage:
    return cast(EmailMessage, BytesParser(policy=email.policy.default).parsebytes(raw))


def header_block(raw: bytes) -> bytes:
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, "the message has no blank line after its headers"
    return head


def assert_well_formed(raw: bytes) -> None:
    """No bare CR or LF, lines <= 998 octets, ASCII headers, one line per header or fold."""
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", raw) is None, "bare CR or LF in the message"
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998, f"line of {len(line)} octets: {line[:60]!r}..."
    head = header_block(raw)
    assert head.isascii(), "non-ASCII bytes in the headers of a non-SMTPUTF8 message"
    names = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the previous header
        name, colon, _ = line.partition(b":")
        assert colon and re.fullmatch(rb"[!-9;-~]+", name), f"not a header line: {line!r}"
        names.append(name.decode())
    assert names == EXPECTED_HEADERS, f"unexpected headers: {names}"


def raw_header(raw: bytes, name: str) -> str:
    """The header as written on the wire, unfolded."""
    match = re.search(rb"^" + name.encode() + rb":(.*?)\r\n(?![ \t])", raw, re.M | re.S)
    assert match is not None
    return re.sub(r"\r\n(?=[ \t])", "", match.group(1).decode("ascii"))


@given(subjects)
def test_subjects_are_encoded_folded_and_decode_to_the_exact_text(subject: str) -> None:
    raw = render_bytes(outgoing(subject))
    assert_well_formed(raw)
    if not subject.isascii():
        assert "=?utf-8?" in raw_header(raw, "Subject")
    message = parse(raw)
    assert message["Subject"] == subject
    assert message.defects == []


@given(display_names, display_names)
def test_display_names_are_encoded_and_decode_to_the_exact_text(
    from_name: str, to_name: str
) -> None:
    raw = render_bytes(outgoing("Factura A-1", from_name=from_name, to_name=to_name))
    assert_well_formed(raw)
    if not from_name.isascii():
        assert "=?utf-8?" in raw_header(raw, "From")
    message = parse(raw)
    sender = message["From"].addresses
    recipient = message["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in sender] == [(from_name, SENDER)]
    assert [(a.display_name, a.addr_spec) for a in recipient] == [(to_name, CUSTOMER)]


@given(st.sampled_from([*EXPECTED_HEADERS, "Bcc", "X-Evil", "Content-Disposition"]), subjects)
def test_text_that_looks_like_a_header_stays_inside_the_subject(name: str, text: str) -> None:
    # Injection needs a line break; validation refuses those (test_properties_addresses),
    # so header-like text can only ever be part of the subject or the name.
    subject = f"{text} {name}: intruso@evil.example"
    raw = render_bytes(outgoing(subject, from_name=f"{name}: x", to_name=f"{name}: y"))
    assert_well_formed(raw)
    message = parse(raw)
    assert message["Subject"] == subject
    assert message["Bcc"] is None
    assert message.get_all("Subject") == [subject]


# ------------------------------------------------------------------ once-found bugs
# Text that looks like an encoded-word was written unencoded (the reader decoded it),
# and a subject word over 989 characters was folded onto a continuation line.


@pytest.mark.parametrize("text", ["=?utf-8?q?Pagado?=", "Factura =?utf-8?b?w6E=?= 12"])
def test_subject_that_looks_like_an_encoded_word_decodes_to_the_same_text(text: str) -> None:
    assert parse(render_bytes(outgoing(text)))["Subject"] == text


def test_display_name_that_looks_like_an_encoded_word_decodes_to_the_same_text() -> None:
    name = "=?utf-8?q?Banco_Central?="
    message = parse(render_bytes(outgoing("Factura A-1", from_name=name, to_name=name)))
    assert message["From"].addresses[0].display_name == name
    assert message["To"].addresses[0].display_name == name


def test_a_long_subject_without_spaces_decodes_to_the_same_text() -> None:
    subject = "F" * 990
    raw = render_bytes(outgoing(subject))
    assert_well_formed(raw)
    assert parse(raw)["Subject"] == subject
