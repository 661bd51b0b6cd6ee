"""Email addresses and header values: validated offline, normalised, never trusted.

email-validator checks syntax only (``check_deliverability=False``): docmail must
not make DNS queries while a clerk waits, and tests must not touch the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import getaddresses
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from docmail.errors import ValidationError

MAX_RECIPIENTS = 100
MAX_SUBJECT_LENGTH = 998  # RFC 5322 line limit; longer subjects are folded by the MIME layer
# CR, LF and NUL, plus every other character str.splitlines() breaks at (VT, FF, FS, GS,
# RS, NEL, U+2028, U+2029): Python's email package refuses those in a header value, so
# letting them in would fail later, when the worker builds the message.
_FORBIDDEN_HEADER_CHARS = (
    "\r", "\n", "\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029",
)  # fmt: skip


@dataclass(frozen=True)
class Mailbox:
    """One recipient or sender: an address and an optional display name."""

    email: str
    name: str = ""

    def formatted(self) -> str:
        return _formatted(self.name, self.email)


@lru_cache(maxsize=8192)
def _formatted(name: str, email: str) -> str:
    # Cached: a batch formats the same contacts' addresses for every document.
    return str(Address(display_name=name, addr_spec=email))


def check_header_value(value: str, field: str) -> str:
    """Reject CR, LF, NUL and other line breaks: they would let input inject extra headers."""
    for char in _FORBIDDEN_HEADER_CHARS:
        if char in value:
            raise ValidationError(
                f"{field} must be a single line; it contains {char!r}: {value!r}",
                field=field,
                value=value,
            )
    return value


def normalize_email(value: str, field: str = "email") -> str:
    """Return the normalised address or raise :class:`ValidationError` naming field and value.

    Messages are written without SMTPUTF8 (ASCII headers, RFC 2047), so a local part
    with non-ASCII letters is refused here, and an internationalised domain is kept in
    its ASCII (IDNA) form, the one headers and the SMTP envelope can carry.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} is empty; give an email address", field=field, value=value)
    check_header_value(value, field)
    try:
        result = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValidationError(
            f"{field} {value!r} is not a valid email address: {exc}", field=field, value=value
        ) from exc
    return result.ascii_email or result.normalized


def parse_mailbox(value: str, field: str) -> Mailbox:
    """Accept ``a@b.com`` or ``Name <a@b.com>``."""
    check_header_value(value, field)
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise ValidationError(
            f"{field} {value!r} is not a single email address", field=field, value=value
        )
    name, addr = pairs[0]
    if "<" in value and not addr:
        raise ValidationError(f"{field} {value!r} is malformed", field=field, value=value)
    return Mailbox(normalize_email(addr, field), check_display_name(name, field))


def check_display_name(name: str, field: str) -> str:
    check_header_value(name, field)
    return name.strip()


def parse_mailbox_list(values: list[str] | None, field: str) -> list[Mailbox]:
    """Validate a list of addresses; duplicates (case-insensitive) are dropped, order kept."""
    if not values:
        return []
    if len(values) > MAX_RECIPIENTS:
        raise ValidationError(
            f"{field} has {len(values)} addresses; at most {MAX_RECIPIENTS} are allowed",
            field=field,
            value=len(values),
        )
    seen: set[str] = set()
    result: list[Mailbox] = []
    for index, raw in enumerate(values):
        if not isinstance(raw, str):
            raise ValidationError(f"{field}[{index}] must be a string", field=f"{field}[{index}]")
        mailbox = parse_mailbox(raw, f"{field}[{index}]")
        key = mailbox.email.lower()
        if key not in seen:
            seen.add(key)
            result.append(mailbox)
    return result


def check_subject(subject: str, field: str = "subject") -> str:
    check_header_value(subject, field)
    if not subject.strip():
        raise ValidationError(f"{field} is empty", field=field, value=subject)
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise ValidationError(
            f"{field} is {len(subject)} characters long; at most {MAX_SUBJECT_LENGTH}",
            field=field,
            value=subject[:80],
        )
    return subject
