"""The built-in default templates, assembled from the files in ``defaults/``.

One layout per format serves every language and document type:

* ``defaults/layout.html`` and ``defaults/layout.txt`` hold the skeleton (greeting,
  a details table per document, attachments, closing) with ``[[label]]``
  placeholders and two lines, ``[[intro]]`` and ``[[after]]``, for the text that
  depends on the document type.
* ``defaults/<language>/common.txt`` holds the ``[labels]`` of a language,
  including the ``subject`` template.
* ``defaults/<language>/<type>.txt`` holds what is specific to a type: ``[labels]``
  that override the common ones, and the ``[intro]`` (before the details) and
  ``[after]`` (after them) paragraphs. ``document.txt`` is the generic type.

Paragraphs are written once as plain text with Jinja expressions (and may use
``[[label]]`` too); lines that are only a ``{% tag %}`` stay as they are. For the
HTML body each paragraph becomes a ``<p>`` (its lines joined by ``<br>``, its
literal text escaped); for the text body it is followed by a blank line. The result
is a self-contained template that needs no loader: companies start their own
templates from it and can change anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from markupsafe import escape

from docmail.domain.documents import DEFAULT_TYPE_CODES
from docmail.errors import ConfigurationError

GENERIC_TYPE = "document"
# Notices about a document rather than document types: ``cancellation`` announces
# that a sent document was cancelled (see services.einvoices); ``reminder`` asks for payment
# (see services.automation_reminders).
NOTICE_CODES = ("cancellation", "reminder")
PARAGRAPH_STYLE = "margin:0 0 16px 0;"

_SECTION_HEADER = re.compile(r"\[(\w+)\]")
_TAG_LINE = re.compile(r"\{%.*%\}|\{#.*#\}")
_JINJA_PARTS = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})")
_SECTION_LINE = re.compile(r"^\[\[(intro|after)\]\]\n", re.MULTILINE)
_LABEL = re.compile(r"\[\[(\w+)\]\]")

# A paragraph is a tuple of lines; a str is a line holding only a Jinja tag.
_Item = str | tuple[str, ...]


@dataclass(frozen=True)
class DefaultParts:
    subject: str
    body_html: str
    body_text: str


def default_parts(doc_type: str, language: str) -> DefaultParts:
    """The default template parts of ``doc_type`` (generic for unknown types) in ``language``."""
    code = doc_type if doc_type in (*DEFAULT_TYPE_CODES, *NOTICE_CODES) else GENERIC_TYPE
    return _assemble(code, language)


@lru_cache(maxsize=64)
def _assemble(code: str, language: str) -> DefaultParts:
    common = _sections(_read(language, "common.txt"))
    specific = _sections(_read(language, f"{code}.txt"))
    labels = {**_labels(common), **_labels(specific), "lang": language}
    intro = _items(specific.get("intro", []))
    after = _items(specific.get("after", []))
    html = _fill(_read("layout.html"), labels, {"intro": _html(intro), "after": _html(after)}, True)
    text = _fill(_read("layout.txt"), labels, {"intro": _text(intro), "after": _text(after)}, False)
    return DefaultParts(labels["subject"], html, text)


def _read(*parts: str) -> str:
    path = files("docmail.templates").joinpath("defaults")
    for part in parts:
        path = path.joinpath(part)
    return path.read_text(encoding="utf-8")


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        header = _SECTION_HEADER.fullmatch(line.strip())
        if header:
            current = sections.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
        elif line.strip():
            raise ConfigurationError(f"built-in template text outside a [section]: {line!r}")
    return sections


def _labels(sections: dict[str, list[str]]) -> dict[str, str]:
    labels = {}
    for line in sections.get("labels", []):
        if line.strip():
            key, _, value = line.partition("=")
            labels[key.strip()] = value.strip()
    return labels


def _items(lines: list[str]) -> list[_Item]:
    items: list[_Item] = []
    paragraph: list[str] = []
    for line in [*lines, ""]:
        stripped = line.strip()
        if stripped and not _TAG_LINE.fullmatch(stripped):
            paragraph.append(stripped)
            continue
        if paragraph:
            items.append(tuple(paragraph))
            paragraph = []
        if stripped:
            items.append(stripped)
    return items


def _escape_literal(text: str) -> str:
    """HTML-escape the literal text of a line, leaving its Jinja expressions and tags alone."""
    parts = _JINJA_PARTS.split(text)
    return "".join(part if i % 2 else str(escape(part)) for i, part in enumerate(parts))


def _html(items: list[_Item]) -> str:
    lines = [
        item
        if isinstance(item, str)
        else f'<p style="{PARAGRAPH_STYLE}">' + "<br>\n".join(map(_escape_literal, item)) + "</p>"
        for item in items
    ]
    return "".join(f"{line}\n" for line in lines)


def _text(items: list[_Item]) -> str:
    lines = [item if isinstance(item, str) else "\n".join(item) + "\n" for item in items]
    return "".join(f"{line}\n" for line in lines)


def _fill(layout: str, labels: dict[str, str], sections: dict[str, str], html: bool) -> str:
    def section(match: re.Match[str]) -> str:
        return sections[match.group(1)]

    def label(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in labels:
            raise ConfigurationError(f"built-in template label {key!r} is not defined")
        return _escape_literal(labels[key]) if html else labels[key]

    return _LABEL.sub(label, _SECTION_LINE.sub(section, layout))
