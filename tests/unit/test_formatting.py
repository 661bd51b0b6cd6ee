"""Locale-aware money, date and number formatting used by the template filters."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from docmail.errors import ValidationError
from docmail.templates.formatting import format_date, format_money, format_number, parse_locale

JAN_24 = date(2025, 1, 24)


# --------------------------------------------------------------------------- money


def test_mexican_pesos_use_the_dollar_sign_and_comma_grouping() -> None:
    assert format_money(Decimal("1000"), "MXN", locale="es_MX") == "$1,000.00"


def test_brazilian_reais_use_a_plain_space_and_dot_grouping() -> None:
    assert format_money(Decimal("1000"), "BRL", locale="pt_BR") == "R$ 1.000,00"


def test_colombian_pesos_separate_the_sign_from_the_amount() -> None:
    assert format_money(Decimal("1000"), "COP", locale="es_CO") == "$ 1.000,00"


def test_us_dollars_in_english() -> None:
    assert format_money(Decimal("1234.5"), "USD", locale="en_US") == "$1,234.50"


def test_foreign_currency_code_is_separated_from_the_digits() -> None:
    assert format_money(Decimal("1000.5"), "USD", locale="es_MX") == "USD 1,000.50"


def test_negative_amounts_keep_their_sign() -> None:
    assert format_money(Decimal("-250"), "MXN", locale="es_MX") == "-$250.00"


def test_currency_code_is_case_insensitive() -> None:
    assert format_money(10, "mxn", locale="es_MX") == "$10.00"


@pytest.mark.parametrize("value", [1000, 1000.0, "1000", " 1000.00 ", Decimal("1000.000")])
def test_money_accepts_numbers_and_numeric_text(value: object) -> None:
    assert format_money(value, "MXN", locale="es_MX") == "$1,000.00"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_amount_formats_as_empty_text(value: object) -> None:
    assert format_money(value, "MXN", locale="es_MX") == ""


def test_money_without_currency_shows_two_decimals() -> None:
    assert format_money(Decimal("1234.5"), None, locale="pt_BR") == "1.234,50"


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", True, [1], object()])
def test_money_rejects_values_that_are_not_finite_numbers(value: object) -> None:
    with pytest.raises(ValidationError, match="number"):
        format_money(value, "MXN", locale="es_MX")


@pytest.mark.parametrize("currency", ["pesos", "MX", "M1N", "$"])
def test_money_rejects_currency_that_is_not_an_iso_code(currency: str) -> None:
    with pytest.raises(ValidationError, match="ISO 4217") as excinfo:
        format_money(1, currency, locale="es_MX")
    assert excinfo.value.field == "currency"


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        ("es_MX", "MXN", "$1,234,567.89"),
        ("es_CO", "COP", "$ 1.234.567,89"),
        ("pt_BR", "BRL", "R$ 1.234.567,89"),
        ("en_US", "USD", "$1,234,567.89"),
        ("es_CO", "USD", "USD 1.234.567,89"),
        ("pt_BR", "MXN", "MXN 1.234.567,89"),
        ("en_US", "BRL", "BRL 1,234,567.89"),
    ],
)
def test_fiscal_locales_write_money_by_docmails_own_rule(
    locale: str, currency: str, expected: str
) -> None:
    assert format_money(Decimal("1234567.891"), currency, locale=locale) == expected


def test_fiscal_locales_do_not_read_babels_currency_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # A future Babel may change symbols, digits or spacing (CLDR 47 dropped the cents
    # of COP): the four fiscal locales must not ask it.
    from docmail.templates import formatting

    def changed_locale_data(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("Babel was asked how to write money")

    monkeypatch.setattr(formatting, "_babel_format_currency", changed_locale_data)
    monkeypatch.setattr(formatting, "_babel_format_decimal", changed_locale_data)
    formatting._money_text.cache_clear()
    assert format_money(Decimal("1000"), "COP", locale="es_CO") == "$ 1.000,00"
    assert format_money(Decimal("-3.5"), "BRL", locale="pt_BR") == "-R$ 3,50"
    assert format_money(Decimal("2.5"), None, locale="es_CO") == "2,50"
    formatting._money_text.cache_clear()


def test_colombian_pesos_keep_their_cents() -> None:
    assert format_money(Decimal("14024.07"), "COP", locale="es_CO") == "$ 14.024,07"


def test_halves_round_up_as_on_commercial_invoices() -> None:
    assert format_money(Decimal("0.125"), "MXN", locale="es_MX") == "$0.13"
    assert format_money(Decimal("-0.125"), "MXN", locale="es_MX") == "-$0.13"


def test_an_amount_that_rounds_to_zero_has_no_minus_sign() -> None:
    assert format_money(Decimal("-0.001"), "MXN", locale="es_MX") == "$0.00"


def test_currencies_without_minor_units_show_no_decimals() -> None:
    assert format_money(Decimal("1500.6"), "CLP", locale="es_CO") == "CLP 1.501"


def test_other_locales_follow_babel_with_the_rules_decimals() -> None:
    from babel.numbers import format_currency

    babel_text = format_currency(Decimal("1000.00"), "COP", locale="fr_FR", currency_digits=False)
    expected = babel_text.replace("\u202f", " ").replace("\xa0", " ")
    assert format_money(Decimal("1000"), "COP", locale="fr_FR") == expected
    assert "1 000,00" in expected
    assert "," not in format_money(Decimal("1500.6"), "CLP", locale="fr_FR")


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("es_MX", "24 de enero de 2025"),
        ("es_CO", "24 de enero de 2025"),
        ("pt_BR", "24 de janeiro de 2025"),
        ("en_US", "January 24, 2025"),
    ],
)
def test_long_dates_are_written_out_in_the_locale(locale: str, expected: str) -> None:
    assert format_date(JAN_24, locale=locale) == expected


def test_short_and_medium_dates_follow_the_locale() -> None:
    assert format_date(JAN_24, "short", locale="es_CO") == "24/01/25"
    assert format_date(JAN_24, "medium", locale="pt_BR") == "24 de jan. de 2025"


def test_dates_accept_iso_text_and_datetimes() -> None:
    assert format_date("2025-01-24", "short", locale="en_US") == "1/24/25"
    assert format_date("2025-01-24T18:30:00", "short", locale="en_US") == "1/24/25"
    assert format_date(datetime(2025, 1, 24, 18, 30), "short", locale="en_US") == "1/24/25"


@pytest.mark.parametrize("value", [None, "", " "])
def test_missing_date_formats_as_empty_text(value: object) -> None:
    assert format_date(value, locale="es_MX") == ""


def test_dates_accept_a_cldr_pattern() -> None:
    assert format_date(JAN_24, "dd/MM/yyyy", locale="es_MX") == "24/01/2025"
    assert format_date(JAN_24, "d 'de' MMMM", locale="es_MX") == "24 de enero"


@pytest.mark.parametrize("style", ["tomorrow", "HH:mm", "zzzz", "{{ x }}", "d" * 100])
def test_date_format_must_be_a_style_or_a_date_pattern(style: str) -> None:
    with pytest.raises(ValidationError, match="date format"):
        format_date(JAN_24, style, locale="es_MX")


@pytest.mark.parametrize("value", ["24/01/2025", "soon", 20250124])
def test_date_rejects_values_that_are_not_dates(value: object) -> None:
    with pytest.raises(ValidationError, match="not a date"):
        format_date(value, locale="es_MX")


# --------------------------------------------------------------------------- numbers


def test_numbers_are_grouped_per_locale() -> None:
    assert format_number(Decimal("1234567.5"), locale="pt_BR") == "1.234.567,5"
    assert format_number(Decimal("1234567.5"), locale="es_MX") == "1,234,567.5"


def test_numbers_can_have_a_fixed_number_of_decimals() -> None:
    assert format_number(2, 3, locale="en_US") == "2.000"
    assert format_number(Decimal("2.5"), 0, locale="en_US") == "2"


def test_missing_number_formats_as_empty_text() -> None:
    assert format_number(None, locale="en_US") == ""


@pytest.mark.parametrize("decimals", [-1, 13, 1.5, True])
def test_decimals_must_be_a_small_whole_number(decimals: object) -> None:
    with pytest.raises(ValidationError, match="decimals"):
        format_number(1, decimals, locale="en_US")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- locales


@pytest.mark.parametrize("locale", ["xx_YY", "", "es-MX-bogus-locale"])
def test_unknown_locale_is_a_validation_error_naming_the_locale(locale: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_locale(locale)
    assert excinfo.value.field == "locale"
