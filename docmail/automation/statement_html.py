"""The printed account statement: self-contained HTML for the PDF adapter.

Inline CSS only, fonts by family name (DejaVu Sans, installed with WeasyPrint's
system libraries), nothing fetched. Every value is HTML-escaped (autoescape).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

from jinja2 import Environment, StrictUndefined, Template

from docmail.automation.statements import BUCKETS, Statement

LABELS = {
    "es": {
        "title": "Estado de cuenta",
        "as_of": "Al",
        "document": "Documento",
        "issued": "Emisión",
        "due": "Vencimiento",
        "days": "Días vencido",
        "amount": "Importe",
        "aging": "Antigüedad de saldos",
        "balance": "Saldo total",
        "nothing": "Sin documentos pendientes.",
    },
    "pt": {
        "title": "Extrato de conta",
        "as_of": "Em",
        "document": "Documento",
        "issued": "Emissão",
        "due": "Vencimento",
        "days": "Dias em atraso",
        "amount": "Valor",
        "aging": "Aging de recebíveis",
        "balance": "Saldo total",
        "nothing": "Nenhum documento em aberto.",
    },
    "en": {
        "title": "Account statement",
        "as_of": "As of",
        "document": "Document",
        "issued": "Issued",
        "due": "Due",
        "days": "Days overdue",
        "amount": "Amount",
        "aging": "Aged receivables",
        "balance": "Total balance",
        "nothing": "No open documents.",
    },
}
SEPARATORS = {"BR": (".", ","), "CO": (".", ","), "PT": (".", ",")}  # else "," and "."

_LAYOUT = """<!DOCTYPE html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><style>
@page { size: A4; margin: 18mm 15mm; }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9pt; color: #222; }
h1 { font-size: 15pt; margin: 0 0 4pt 0; }
table { width: 100%; border-collapse: collapse; margin: 8pt 0 14pt 0; }
th, td { border-bottom: 0.5pt solid #bbb; padding: 3pt 4pt; text-align: left; }
td.n, th.n { text-align: right; }
.total td { font-weight: bold; border-bottom: 1pt solid #222; }
</style></head><body>
<h1>{{ l.title }}</h1>
<p>{{ company }}<br>{{ s.party_name }} ({{ s.party_code }})<br>{{ l.as_of }} {{ s.as_of|day }}</p>
{% if not s.sections %}<p>{{ l.nothing }}</p>{% endif %}
{% for sec in s.sections %}
<table>
<tr><th>{{ l.document }}</th><th>{{ l.issued }}</th><th>{{ l.due }}</th>
<th class="n">{{ l.days }}</th><th class="n">{{ l.amount }} {{ sec.currency }}</th></tr>
{% for i in sec.items %}
<tr><td>{{ names.get(i.doc_type, i.doc_type) }} {{ i.number }}</td><td>{{ i.issue_date|day }}</td>
<td>{{ i.due_date|day }}</td><td class="n">{{ i.days_overdue }}</td>
<td class="n">{{ i.amount|money }}</td></tr>
{% endfor %}
</table>
<h2 style="font-size:11pt">{{ l.aging }} ({{ sec.currency }})</h2>
<table>
<tr>{% for b in buckets %}<th class="n">{{ b }}</th>{% endfor %}
<th class="n">{{ l.balance }}</th></tr>
<tr class="total">{% for b in buckets %}<td class="n">{{ sec.buckets[b]|money }}</td>{% endfor %}
<td class="n">{{ sec.balance|money }}</td></tr>
</table>
{% endfor %}
</body></html>
"""


def format_money(value: Decimal, country: str = "MX") -> str:
    """``-1234.5`` -> ``-1,234.50`` (or ``-1.234,50`` where the country writes it so)."""
    thousands, decimal = SEPARATORS.get(country, (",", "."))
    text = f"{value.quantize(Decimal('0.01')):,.2f}"
    return text.replace(",", "\0").replace(".", decimal).replace("\0", thousands)


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


@lru_cache(maxsize=8)
def _template(country: str) -> Template:
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True)
    env.filters["money"] = lambda v: format_money(v, country)
    env.filters["day"] = _day
    return env.from_string(_LAYOUT)


def statement_html(
    statement: Statement,
    company: str,
    language: str = "es",
    country: str = "MX",
    type_names: dict[str, str] | None = None,
) -> str:
    """The statement as one self-contained HTML page in ``language``."""
    return _template(country).render(
        s=statement,
        company=company,
        lang=language,
        l=LABELS.get(language, LABELS["en"]),
        names=type_names or {},
        buckets=BUCKETS,
    )
