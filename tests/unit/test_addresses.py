"""Address and header validation: offline, with the field and value named."""

import pytest

from docmail.domain.addresses import check_subject, normalize_email, parse_mailbox_list
from docmail.errors import ValidationError


def test_valid_addresses_and_display_names_are_accepted() -> None:
    boxes = parse_mailbox_list(["ana@cliente.mx", "Edu Fiscal <edu@cliente.mx>"], "to")
    assert [(b.email, b.name) for b in boxes] == [
        ("ana@cliente.mx", ""),
        ("edu@cliente.mx", "Edu Fiscal"),
    ]


def test_duplicate_addresses_are_dropped_case_insensitively() -> None:
    boxes = parse_mailbox_list(["a@x.mx", "A@X.MX"], "to")
    assert len(boxes) == 1


@pytest.mark.parametrize("bad", ["not-an-email", "a@", "@x.mx", "a b@x.mx", "a@x.mx, b@x.mx"])
def test_malformed_addresses_name_the_field_and_the_value(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_mailbox_list(["ok@x.mx", bad], "cc")
    assert err.value.field == "cc[1]"
    assert repr(bad) in err.value.message or "not a single" in err.value.message


@pytest.mark.parametrize("value", ["Hi\r\nBcc: victim@x.mx", "Hi\nthere", "a\x00b"])
def test_subjects_with_line_breaks_are_rejected(value: str) -> None:
    with pytest.raises(ValidationError) as err:
        check_subject(value)
    assert err.value.field == "subject"


def test_display_name_with_newline_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_mailbox_list(["Evil\r\nBcc: x@y.mx <a@b.mx>"], "to")


def test_addresses_are_checked_offline_without_dns() -> None:
    # A syntactically valid domain that does not exist must still be accepted.
    assert (
        normalize_email("someone@no-such-domain-for-docmail.com")
        == "someone@no-such-domain-for-docmail.com"
    )
