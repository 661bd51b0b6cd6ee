"""Render HTML to PDF with WeasyPrint.

The renderer never reaches out: its URL fetcher accepts only inline ``data:``
URLs, so neither a template nor data inside an e-invoice can make docmail
fetch a remote or local file. Fonts come from the system (DejaVu on Debian).
WeasyPrint is imported on first use: it takes about 0.4 s to import.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from docmail.errors import ConfigurationError

ALLOWED_PROTOCOLS = ("data",)


@lru_cache(maxsize=1)
def _weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: Pango or HarfBuzz missing
        raise ConfigurationError(
            f"PDF rendering needs WeasyPrint and its system libraries (Pango, "
            f"libharfbuzz-subset0): {exc}"
        ) from exc
    return weasyprint


def local_only_fetcher() -> Any:
    """A WeasyPrint URL fetcher that refuses every URL except inline ``data:``."""
    weasyprint = _weasyprint()
    return weasyprint.URLFetcher(allowed_protocols=ALLOWED_PROTOCOLS, allow_redirects=False)


def html_to_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML page (inline CSS, no external resources)."""
    weasyprint = _weasyprint()
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=local_only_fetcher())
    pdf: bytes = document.write_pdf()
    return pdf
