"""Locale-aware formatting of money, dates and numbers, as used by the template filters.

Every function is pure: it takes the locale (``'es_MX'``, ``'pt_BR'``...) explicitly
and returns plain text. ``None`` and ``''`` format as ``''`` so optional fields
simply disappear from an email. Values may be :class:`~decimal.Decimal`, ``int``,
``float`` or numeric strings (ERP data often arrives as text); dates may be
:class:`~datetime.date`, :class:`~datetime.datetime` or ISO strings.

Money on fiscal documents does not follow the locale data of whichever Babel is
installed: CLDR changes from release to release (CLDR 47 dropped the cents of
Colombian pesos), and an invoice email must not change its amounts' look after an
upgrade. So the look of money is our own rule, fixed in :data:`MONEY_CONVENTIONS`:

=======  ==============  ==============  =====================  ==================
locale   local currency  example         another currency       separators
=======  ==============  ==============  =====================  ==================
es_MX    MXN ``$``       ``$1,000.00``   ``USD 1,000.50``       ``,`` groups
es_CO    COP ``$``       ``$ 1.000,00``  ``USD 1.000,50``       ``.`` groups
pt_BR    BRL ``R$``      ``R$ 1.000,00`` ``MXN 1.000,00``       ``.`` groups
en_US    USD ``$``       ``$1,000.00``   ``BRL 1,000.00``       ``,`` groups
=======  ==============  ==============  =====================  ==================

- The locale's own currency takes the local sign; any other currency is written
  with its ISO 4217 code and a space, never a symbol that could be read as the
  local one (``US$``/``MX$`` differ between CLDR releases; a code does not).
- Two decimals for every currency, as CFDI, NF-e and DIAN amounts have (COP too),
  except the currencies ISO 4217 gives no minor unit (:data:`ZERO_DECIMAL_CURRENCIES`,
  e.g. CLP, JPY). Halves round up (commercial rounding).
- A minus sign goes before the sign or code: ``-$250.00``.
- Spaces are plain spaces, so the same text appears in the subject, the plain-text
  body and the HTML body.

Other locales (``fr_FR``, a bare ``es``) follow Babel's data, with the decimals of
the rule above; only the four fiscal locales are fixed. ``scripts/check-latest.sh``
runs these tests under the newest Babel, so drift is seen before users see it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
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


@dataclass(frozen=True)
class MoneyConvention:
    """How one locale writes amounts on its invoices (see the module's table)."""

    group: str
    decimal: str
    currency: str
    sign: str
    space_after_sign: bool


MONEY_CONVENTIONS: dict[str, MoneyConvention] = {
    "es_MX": MoneyConvention(",", ".", "MXN", "$", space_after_sign=False),
    # Colombian invoices separate the peso sign from the amount.
    "es_CO": MoneyConvention(".", ",", "COP", "$", space_after_sign=True),
    "pt_BR": MoneyConvention(".", ",", "BRL", "R$", space_after_sign=True),
    "en_US": MoneyConvention(",", ".", "USD", "$", space_after_sign=False),
}
# ISO 4217 currencies with no minor unit; every other currency shows two decimals.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "UYI",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)

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
        convention = MONEY_CONVENTIONS.get(str(parse_locale(locale)))
        if convention is None:
            return format_number(amount, 2, locale=locale)
        rounded = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return ("-" if rounded < 0 else "") + _grouped(abs(rounded), 2, convention)
    return _money_text(amount, _currency_code(currency), locale)


@lru_cache(maxsize=4096)
def _money_text(amount: Decimal, currency: str, locale: str) -> str:
    # Cached: a batch formats the same few totals in the same locale thousands of times,
    # and Babel's pattern formatting is the largest cost of rendering an email.
    loc = parse_locale(locale)
    decimals = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    rounded = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    convention = MONEY_CONVENTIONS.get(str(loc))
    if convention is None:
        pattern = loc.currency_formats["standard"].pattern
        if not decimals:
            pattern = re.sub(r"\.0+", "", pattern)
        text = _babel_format_currency(
            rounded, currency, format=pattern, locale=loc, currency_digits=False
        )
        return _CODE_AGAINST_DIGIT.sub(r"\1 ", _plain_spaces(text))
    if currency == convention.currency:
        mark = convention.sign + (" " if convention.space_after_sign else "")
    else:
        mark = currency + " "
    sign = "-" if rounded < 0 else ""
    return sign + mark + _grouped(abs(rounded), decimals, convention)


def _grouped(amount: Decimal, decimals: int, convention: MoneyConvention) -> str:
    """``1234.5, 2`` -> ``'1,234.50'`` with the convention's separators."""
    whole, _, fraction = f"{amount:,.{decimals}f}".partition(".")
    whole = whole.replace(",", convention.group)
    return whole + (convention.decimal + fraction if decimals else "")


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
