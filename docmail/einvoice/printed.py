"""The printed form of an e-invoice, as self-contained HTML for the PDF adapter.

One layout per country, in the country's language: a CFDI representation for
Mexico, a simplified DANFE/DACTE for Brazil, an invoice with its CUFE for
Colombia. Every value from the XML is HTML-escaped (Jinja autoescape).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from docmail.einvoice.model import EInvoice

LAYOUTS = {"MX": "mx.html", "BR": "br.html", "CO": "co.html"}
# Thousands and decimal separators of each country's usual number format.
SEPARATORS = {"MX": (",", "."), "BR": (".", ","), "CO": (".", ",")}


def _amount(value: object, country: str = "MX") -> str:
    """``1950`` -> ``1,950.00`` (MX) or ``1.950,00`` (BR, CO); text that is no number stays."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    thousands, decimal = SEPARATORS.get(country, (",", "."))
    text = f"{number:,.2f}"
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


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
