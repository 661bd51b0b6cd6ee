"""HTML to PDF (WeasyPrint), with no access to anything but the given HTML."""

from docmail.adapters.pdf.render import html_to_pdf

__all__ = ["html_to_pdf"]
