"""Property tests of address parsing and validation (docmail.domain.addresses).

Addresses are generated in the shapes ERPs send (dotted local parts, tags, country
domains, Spanish and Portuguese letters); display names mix accented letters, «»,
quotes, commas and the other characters RFC 5322 only allows inside quotes.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docmail.domain.addresses import (
    Mailbox,
    check_display_name,
    check_header_value,
    check_subject,
    normalize_email,
    parse_mailbox,
    parse_mailbox_list,
)
from docmail.errors import ValidationError

ATOM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-"
IBERIAN = "ñÑçÇãÃõÕáéíóúÁÉÍÓÚâêôàü"
TLDS = ("mx", "br", "co", "ar", "pt", "es", "com", "net", "org", "com.br", "com.mx")
#: Characters that split a header value into lines; every one must be refused.
LINE_BREAKS = ("\r", "\n", "\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028")

_atom = st.text(alphabet=ATOM, min_size=1, max_size=10)
local_parts = st.lists(_atom, min_size=1, max_size=3).map(".".join)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
domains = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(_label, min_size=1, max_size=3),
    st.sampled_from(TLDS),
)
addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
_iberian_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz" + IBERIAN, min_size=1, max_size=12)
#: Local parts with Spanish and Portuguese letters (they would need SMTPUTF8).
iberian_local_parts = _iberian_word.filter(lambda word: not word.isascii())
#: Internationalised domains (IDN), e.g. ñandú.com.ar.
iberian_domains = st.builds(
    lambda label, tld: f"{label}.{tld}", iberian_local_parts, st.sampled_from(TLDS)
)

NAME_CHARS = IBERIAN + "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789" + "«»“”\"',.;:()<>@[]\\&ºª-"
#: A display name as docmail keeps it: words separated by single spaces, no outer spaces.
display_names = st.lists(
    st.text(alphabet=NAME_CHARS, min_size=1, max_size=12), min_size=1, max_size=5
).map(" ".join)


def _with_break(text: str, position: int, char: str) -> str:
    index = position % (len(text) + 1)
    return text[:index] + char + text[index:]


values_with_a_line_break = st.builds(
    _with_break, st.text(max_size=40), st.integers(min_value=0), st.sampled_from(LINE_BREAKS)
)


@given(addresses)
def test_valid_addresses_are_accepted_unchanged(address: str) -> None:
    assert normalize_email(address) == address
    assert parse_mailbox(address, "to") == Mailbox(address, "")


@given(local_parts, iberian_domains, display_names)
def test_internationalised_domains_are_kept_in_their_ascii_form_and_stay_stable(
    local: str, domain: str, name: str
) -> None:
    normalized = normalize_email(f"{local}@{domain}")
    assert normalized.isascii()
    assert normalized.startswith(f"{local}@")
    assert normalized.rpartition("@")[2] == domain.encode("idna").decode("ascii").lower()
    assert normalize_email(normalized) == normalized
    assert parse_mailbox(Mailbox(normalized, name).formatted(), "to") == Mailbox(normalized, name)


@given(iberian_local_parts, domains)
def test_local_parts_with_non_ascii_letters_are_refused_naming_field_and_value(
    local: str, domain: str
) -> None:
    # Messages are written without SMTPUTF8, so such an address could never be delivered.
    value = f"{local}@{domain}"
    with pytest.raises(ValidationError) as excinfo:
        parse_mailbox_list(["ok@cliente.mx", value], "to")
    assert excinfo.value.field == "to[1]"
    assert excinfo.value.value == value
    assert repr(value) in excinfo.value.message


@given(addresses, display_names)
def test_display_names_round_trip_through_formatting_and_parsing(address: str, name: str) -> None:
    mailbox = Mailbox(address, name)
    assert parse_mailbox(mailbox.formatted(), "to") == mailbox


@given(st.lists(st.tuples(addresses, display_names), min_size=1, max_size=6))
def test_a_list_of_formatted_mailboxes_parses_back_in_order_without_duplicates(
    pairs: list[tuple[str, str]],
) -> None:
    formatted = [Mailbox(address, name).formatted() for address, name in pairs]
    parsed = parse_mailbox_list(formatted, "to")
    first_of_each: dict[str, Mailbox] = {}
    for address, name in pairs:
        first_of_each.setdefault(address.lower(), Mailbox(address, name))
    assert parsed == list(first_of_each.values())


def _assert_refused(call: object, field: str, value: str) -> ValidationError:
    assert callable(call)
    with pytest.raises(ValidationError) as excinfo:
        call()
    error = excinfo.value
    assert error.field == field
    assert error.value == value
    assert error.to_dict()["field"] == field
    return error


@given(values_with_a_line_break)
def test_header_values_with_a_line_break_or_nul_are_refused_naming_field_and_value(
    value: str,
) -> None:
    error = _assert_refused(lambda: check_header_value(value, "subject"), "subject", value)
    assert repr(value) in error.message
    _assert_refused(lambda: check_subject(value), "subject", value)
    _assert_refused(lambda: check_display_name(value, "from_name"), "from_name", value)


@given(addresses, display_names, values_with_a_line_break)
def test_mailboxes_with_a_line_break_anywhere_are_refused_naming_field_and_value(
    address: str, name: str, injected: str
) -> None:
    for value in (
        f"{injected} <{address}>",
        f'"{name}{injected}" <{address}>',
        f"{name} <{address}>{injected}",
        address + injected,
    ):
        _assert_refused(lambda v=value: parse_mailbox(v, "to"), "to", value)  # type: ignore[misc]
        _assert_refused(
            lambda v=value: parse_mailbox_list(["ok@cliente.mx", v], "cc"),  # type: ignore[misc]
            "cc[1]",
            value,
        )


@given(st.text(max_size=30).filter(lambda s: not s.strip()), values_with_a_line_break)
def test_an_email_field_with_a_line_break_is_refused_naming_field_and_value(
    blank: str, injected: str
) -> None:
    _assert_refused(lambda: normalize_email(blank + injected, "party.email"), "party.email",
                    blank + injected)  # fmt: skip
    _assert_refused(lambda: normalize_email("a@b.mx" + injected), "email", "a@b.mx" + injected)
