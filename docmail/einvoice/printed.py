"""The printed form of an e-invoice, as self-contained HTML for the PDF adapter.

One layout per country, in the country's language: a CFDI representation for
Mexico, a simplified DANFE/DACTE for Brazil, an invoice with its CUFE for
Colombia. Every value from the XML is HTML-escaped (Jinja autoescape).
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from docmail.einvoice.model import EInvoice

LAYOUTS = {"MX": "mx.html", "BR": "br.html", "CO": "co.html"}
# Thousands and decimal separators of each country's usual number format.
SEPARATORS = {"MX": (",", "."), "BR": (".", ","), "CO": (".", ",")}


#: What the readers let through (einvoice/model.py: at most 18 digits, 10 decimals, no
#: exponent), with room to spare; anything else is printed as written, never expanded.
_PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,30}(?:\.[0-9]{1,12})?", re.ASCII)


def _amount(value: object, country: str = "MX") -> str:
    """``1950`` -> ``1,950.00`` (MX) or ``1.950,00`` (BR, CO); text that is no plain amount stays.

    ``Decimal(str(value))`` took ``1e100000000`` and ``{:,.2f}`` wrote all its digits
    (133 MB): only amounts written out in digits are formatted.
    """
    if value is None or value == "":
        return ""
    text = str(value).strip()
    if not _PLAIN_AMOUNT.fullmatch(text):
        return text
    thousands, decimal = SEPARATORS.get(country, (",", "."))
    formatted = f"{Decimal(text):,.2f}"
    return formatted.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


def _group(text: str, size: int = 4) -> str:
    """An access key in groups of four digits, as DANFE prints it."""
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("docmail.einvoice", "layouts"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["amount"] = _amount
    env.filters["group"] = _group
    return env


def printed_form_html(invoice: EInvoice) -> str:
    """The HTML of ``invoice``'s printed form (layout chosen by its country)."""
    template = _environment().get_template(LAYOUTS[invoice.country])
    return template.render(inv=invoice, data=invoice.data, country=invoice.country)
