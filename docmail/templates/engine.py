"""Render the subject and bodies of an email from a company's (or the built-in) templates.

Templates are Jinja2, run in :class:`~docmail.templates.sandbox.BoundedEnvironment`:
a sandbox with time and size limits and no access to files, so a company template
cannot ``{% include %}`` or ``{% extends %}`` anything (the built-in defaults are
self-contained too: see :mod:`docmail.templates.builtin`). The HTML body is
autoescaped; the subject and the plain-text body are not.

The names a template can use, and the attributes the checker knows, are all in
:data:`CONTEXT_SCHEMA` below. ``None`` values render as empty text, and so do
missing attributes (``document.data.anything``); a missing top-level name fails.
Dict keys win over dict methods: ``document.data.items`` is the ERP's ``items``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from babel import localedata
from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError

from docmail.domain.documents import parse_language
from docmail.errors import TemplateError, ValidationError
from docmail.templates import builtin
from docmail.templates.checks import ListOf, Problem, Schema, find_problems
from docmail.templates.formatting import parse_locale
from docmail.templates.sandbox import BoundedEnvironment, check_deadline, rendering

ATTACHMENT: dict[str, Schema] = {"filename": None, "content_type": None, "size": None}

DOCUMENT: dict[str, Schema] = {
    "type": None,  # code: invoice, nfe, ...
    "type_name": None,  # name in the email's language: Factura, Fatura, Invoice
    "number": None,
    "issue_date": None,  # datetime.date
    "due_date": None,  # datetime.date or None
    "total": None,  # decimal.Decimal or None
    "currency": None,  # ISO 4217 code
    "status": None,
    "fiscal_id": None,  # UUID (MX), CUFE/CUDE (CO), chave de acesso (BR)
    "data": None,  # free dict from the ERP; anything below it is accepted
    "attachments": ListOf(ATTACHMENT),
}

#: Every name a template may use, with the attributes the checker knows.
CONTEXT_SCHEMA: dict[str, Schema] = {
    "document": DOCUMENT,
    "documents": ListOf(DOCUMENT),  # all documents of the email; [document] for one
    "party": {"code": None, "name": None, "tax_id": None, "email": None},
    "company": {"name": None, "country": None},
    "sender": {"name": None, "email": None},
}

FIELDS = ("subject", "body_html", "body_text")
DEFAULT_LOCALES = {"es": "es_MX", "pt": "pt_BR", "en": "en_US"}

_TEMPLATE_FILE = "<template>"
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class TemplateSource:
    subject: str
    body_html: str
    body_text: str


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body_html: str
    body_text: str


class TemplateEngine:
    """Checks and renders templates; one instance can be shared by threads."""

    def __init__(
        self, *, timeout_seconds: float = 2.0, max_output_bytes: int = 2 * 1024 * 1024
    ) -> None:
        if timeout_seconds <= 0 or max_output_bytes <= 0:
            raise ValidationError("template limits must be positive numbers")
        self.timeout_seconds = timeout_seconds
        self.max_output_bytes = max_output_bytes
        self._html = BoundedEnvironment(autoescape=True, max_value_bytes=max_output_bytes)
        self._text = BoundedEnvironment(autoescape=False, max_value_bytes=max_output_bytes)

    def default_source(self, doc_type: str, language: str) -> TemplateSource:
        """Built-in default for a document type code and language ('es'|'pt'|'en').

        An unknown type gets the generic 'document' template of that language.
        """
        parts = builtin.default_parts(doc_type, parse_language(language))
        return TemplateSource(parts.subject, parts.body_html, parts.body_text)

    def check(self, source: TemplateSource) -> None:
        """Raise :class:`TemplateError` listing every problem of the three parts."""
        problems: list[Problem] = []
        for field in FIELDS:
            env = self._env_for(field)
            problems.extend(find_problems(env, field, getattr(source, field), CONTEXT_SCHEMA))
        if problems:
            raise _error_for(problems)

    def render(self, source: TemplateSource, context: dict[str, Any], locale: str) -> RenderedEmail:
        """Render the three parts with ``locale`` (e.g. 'es_MX') for money and dates."""
        parse_locale(locale)
        context = dict(context)
        if "document" in context:
            context.setdefault("documents", [context["document"]])
        with rendering(self.timeout_seconds, locale):
            subject = self._render_part("subject", source.subject, context)
            body_html = self._render_part("body_html", source.body_html, context)
            body_text = self._render_part("body_text", source.body_text, context)
        return RenderedEmail(_one_line(subject), body_html.strip(), _tidy_text(body_text))

    def _env_for(self, field: str) -> BoundedEnvironment:
        return self._html if field == "body_html" else self._text

    def _render_part(self, field: str, source: str, context: Mapping[str, Any]) -> str:
        try:
            template = self._env_for(field).compile_source(source)
            chunks = cast(Generator[str, None, None], template.generate(context))
            try:
                return self._collect(chunks)
            finally:
                chunks.close()
        except Exception as exc:
            raise _translate(exc, field) from exc

    def _collect(self, chunks: Iterable[str]) -> str:
        parts: list[str] = []
        size = 0
        for chunk in chunks:
            size += len(chunk.encode("utf-8", "surrogatepass"))
            if size > self.max_output_bytes:
                raise TemplateError(
                    f"the template produced more than {self.max_output_bytes:,} bytes; "
                    "make it shorter or loop over fewer items"
                )
            check_deadline()
            parts.append(chunk)
        return "".join(parts)


def locale_for(language: str, country: str | None) -> str:
    """The Babel locale for an email: 'es'+'CO' -> 'es_CO', 'pt' -> 'pt_BR', 'en' -> 'en_US'.

    The company's country picks the regional variant when Babel knows it (es_MX,
    es_CO, es_AR, pt_PT, en_GB...); otherwise es -> es_MX, pt -> pt_BR, en -> en_US.
    """
    language = parse_language(language)
    region = (country or "").strip().upper()
    if len(region) == 2 and region.isalpha() and localedata.exists(f"{language}_{region}"):
        return f"{language}_{region}"
    return DEFAULT_LOCALES[language]


def _error_for(problems: list[Problem]) -> TemplateError:
    first = problems[0]
    lines = [f"{p.field} line {p.line}: {p.message}" for p in problems]
    if len(lines) == 1:
        message = lines[0]
    else:
        numbered = "; ".join(f"({n}) {line}" for n, line in enumerate(lines, 1))
        message = f"the template has {len(lines)} problems: {numbered}"
    return TemplateError(
        message,
        field=first.field,
        line=first.line,
        problems=[p.as_dict() for p in problems],
    )


def _template_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _message_for(exc: Exception) -> str:
    if isinstance(exc, TemplateError | ValidationError):
        return exc.message
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"{exc}; templates may only read the documented values and their fields"
    if isinstance(exc, UndefinedError) and str(exc).endswith("is undefined"):
        return f"{exc}; available names: {', '.join(CONTEXT_SCHEMA)}"
    if isinstance(exc, RecursionError):
        return "macros call each other too deeply; remove the recursion"
    if isinstance(exc, MemoryError):
        return "the template needs too much memory; make it produce less text"
    return f"{type(exc).__name__}: {exc}; correct the expression on this line"


def _translate(exc: Exception, field: str) -> TemplateError:
    """Any failure of a template becomes a TemplateError naming the part and the line."""
    line: int | None = _template_line(exc.__traceback__)
    if isinstance(exc, TemplateSyntaxError):
        line = exc.lineno
    message = _message_for(exc)
    where = f"{field} line {line}" if line else field
    problems = [Problem(field, line, message).as_dict()]
    return TemplateError(f"{where}: {message}", field=field, line=line, problems=problems)


def _one_line(text: str) -> str:
    """Subjects: control characters (CR, LF, tabs...) become spaces; runs of spaces collapse."""
    spaced = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(spaced.split())


def _tidy_text(text: str) -> str:
    """Plain-text bodies: no trailing spaces, at most one blank line in a row."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    tidy = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
    return f"{tidy}\n" if tidy else ""
