"""Locale-aware formatting of money, dates and numbers, as used by the template filters.

Every function is pure: it takes the locale (``'es_MX'``, ``'pt_BR'``...) explicitly
and returns plain text. ``None`` and ``''`` format as ``''`` so optional fields
simply disappear from an email. Values may be :class:`~decimal.Decimal`, ``int``,
``float`` or numeric strings (ERP data often arrives as text); dates may be
:class:`~datetime.date`, :class:`~datetime.datetime` or ISO strings.

Babel separates a currency symbol from the amount with a no-break space in some
locales; we write a plain space instead, so the same text appears in the subject,
the plain-text body and the HTML body (``R$ 1.000,00``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as _babel_format_date
from babel.numbers import format_currency as _babel_format_currency
from babel.numbers import format_decimal as _babel_format_decimal

from docmail.errors import ValidationError

DATE_STYLES = ("short", "medium", "long", "full")
DEFAULT_DATE_STYLE = "long"
MAX_DATE_PATTERN_LENGTH = 64
MAX_DECIMALS = 12

# Colombian invoices separate the peso sign from the amount ("$ 1.000,00");
# recent CLDR data no longer does, so we keep the local convention here.
_CURRENCY_PATTERNS: dict[str, str] = {"es_CO": "¤ #,##0.00"}

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
# An ISO code written straight against the digits ("USD1,000.00") gets a space.
_CODE_AGAINST_DIGIT = re.compile(r"([A-Z]{2,3})(?=\d)")
# Date fields only (no time zones or hours: the value is a date), quoted text, punctuation.
_DATE_PATTERN = re.compile(r"(?:[GyYuQqMLwWdDFEec]+|'[^']*'|[ \-/.,:])+")
_WIDE_SPACES = str.maketrans({"\xa0": " ", "\u202f": " "})


@lru_cache(maxsize=64)
def parse_locale(locale: str) -> Locale:
    """Return Babel's :class:`Locale` for ``locale`` or raise :class:`ValidationError`."""
    try:
        return Locale.parse(locale)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValidationError(
            f"locale {locale!r} is not known; use a code such as 'es_MX', 'pt_BR' or 'en_US'",
            field="locale",
            value=locale,
        ) from None


def to_decimal(value: Any, what: str = "value") -> Decimal | None:
    """Convert ``value`` to a finite Decimal; ``None``/``''`` give ``None``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValidationError(f"{what} {value!r} is not a number", field=what, value=value)
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValidationError(f"{what} {value!r} is not a number", field=what) from None
    if not number.is_finite():
        raise ValidationError(f"{what} {value!r} is not a finite number", field=what)
    return number


def to_date(value: Any) -> date | None:
    """Convert ``value`` to a date; ``None``/``''`` give ``None``; datetimes lose their time."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()).date()
        except ValueError:
            pass
    raise ValidationError(
        f"date {value!r} is not a date; pass a date or an ISO text such as '2025-01-24'",
        field="date",
        value=value,
    )


def _plain_spaces(text: str) -> str:
    return text.translate(_WIDE_SPACES)


def _currency_code(currency: str) -> str:
    code = currency.strip().upper()
    if not _CURRENCY_CODE.fullmatch(code):
        raise ValidationError(
            f"currency {currency!r} is not an ISO 4217 code such as 'MXN', 'COP' or 'BRL'",
            field="currency",
            value=currency,
        )
    return code


def format_money(value: Any, currency: str | None = None, *, locale: str) -> str:
    """``1000, 'MXN', 'es_MX'`` -> ``'$1,000.00'``; without a currency, two decimals only."""
    amount = to_decimal(value, "amount")
    if amount is None:
        return ""
    if not currency:
        return format_number(amount, 2, locale=locale)
    return _money_text(amount, _currency_code(currency), locale)


@lru_cache(maxsize=4096)
def _money_text(amount: Decimal, currency: str, locale: str) -> str:
    # Cached: a batch formats the same few totals in the same locale thousands of times,
    # and Babel's pattern formatting is the largest cost of rendering an email.
    loc = parse_locale(locale)
    pattern = _CURRENCY_PATTERNS.get(str(loc))
    text = _babel_format_currency(amount, currency, format=pattern, locale=loc)
    return _CODE_AGAINST_DIGIT.sub(r"\1 ", _plain_spaces(text))


def format_date(value: Any, style: str = DEFAULT_DATE_STYLE, *, locale: str) -> str:
    """``date(2025, 1, 24)`` in ``es_MX`` -> ``'24 de enero de 2025'`` (style ``'long'``).

    ``style`` is one of ``short``, ``medium``, ``long``, ``full`` or a CLDR pattern
    such as ``'dd/MM/yyyy'``.
    """
    day = to_date(value)
    if day is None:
        return ""
    if not _is_date_style(style):
        raise ValidationError(
            f"date format {style!r} is not valid; use one of {', '.join(DATE_STYLES)} "
            "or a pattern of date fields such as 'dd/MM/yyyy'",
            field="format",
            value=style,
        )
    return _plain_spaces(_babel_format_date(day, style, locale=parse_locale(locale)))


def _is_date_style(style: Any) -> bool:
    if not isinstance(style, str) or len(style) > MAX_DATE_PATTERN_LENGTH:
        return False
    return style in DATE_STYLES or _DATE_PATTERN.fullmatch(style) is not None


def format_number(value: Any, decimals: int | None = None, *, locale: str) -> str:
    """``1234567.5`` in ``pt_BR`` -> ``'1.234.567,5'``; ``decimals`` fixes the fraction digits."""
    number = to_decimal(value, "number")
    if number is None:
        return ""
    pattern = None
    if decimals is not None:
        if isinstance(decimals, bool) or not isinstance(decimals, int):
            raise ValidationError("decimals must be a whole number", field="decimals")
        if not 0 <= decimals <= MAX_DECIMALS:
            raise ValidationError(
                f"decimals must be between 0 and {MAX_DECIMALS}", field="decimals", value=decimals
            )
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    text = _babel_format_decimal(number, format=pattern, locale=parse_locale(locale))
    return _plain_spaces(text)
