"""Electronic invoices of Mexico (CFDI), Brazil (NF-e, CT-e) and Colombia (DIAN UBL 2.1).

``parse_einvoice(data)`` reads one XML file safely and returns an :class:`EInvoice`;
``printed_form_html(invoice)`` lays it out as HTML for the PDF adapter.
"""

from docmail.einvoice.model import EInvoice, TaxParty
from docmail.einvoice.parse import parse_einvoice

__all__ = ["EInvoice", "TaxParty", "parse_einvoice"]
