"""Safe XML reading: no DTDs, no entities, no network, bounded size.

E-invoices never carry a DTD, so any ``<!DOCTYPE`` is refused outright; that
also rules out entity expansion (billion laughs) and external entities.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import fromstring

from docmail.einvoice.model import invalid
from docmail.errors import PayloadTooLarge


def parse_xml(data: bytes, max_bytes: int, field: str = "file") -> Element:
    """Parse ``data`` into an element tree, or raise a 4xx naming ``field``."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{field} is {len(data)} bytes; the limit is {max_bytes} bytes",
            field=field,
            value=len(data),
        )
    if not data.strip():
        raise invalid(f"{field} is empty; upload the e-invoice XML", field)
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise invalid(
            f"{field} contains a DTD (<!DOCTYPE ...>); e-invoices have none, "
            "so it is refused for safety",
            field,
        ) from None
    except EntitiesForbidden:
        raise invalid(f"{field} declares XML entities; refused for safety", field) from None
    except DefusedXmlException as exc:
        raise invalid(f"{field} uses a forbidden XML feature ({exc}); refused", field) from None
    except ParseError as exc:
        raise invalid(f"{field} is not well-formed XML: {exc}", field) from None
    except ValueError as exc:  # e.g. an unknown encoding declaration
        raise invalid(f"{field} is not readable XML: {exc}", field) from None


def local(tag: str) -> str:
    """``{namespace}Name`` -> ``Name``."""
    return tag.rpartition("}")[2]


def namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


class Reader:
    """Path lookups in one namespace: ``Reader(ns).text(el, "ide/nNF")``."""

    def __init__(self, ns: str) -> None:
        self.ns = ns

    def _path(self, path: str) -> str:
        prefix = f"{{{self.ns}}}" if self.ns else ""
        return "/".join(p if p in (".", "..") else prefix + p for p in path.split("/"))

    def find(self, el: Element | None, path: str) -> Element | None:
        return None if el is None else el.find(self._path(path))

    def findall(self, el: Element | None, path: str) -> list[Element]:
        return [] if el is None else el.findall(self._path(path))

    def text(self, el: Element | None, path: str) -> str | None:
        found = self.find(el, path)
        if found is None or found.text is None:
            return None
        return found.text.strip()

    def first_text(self, el: Element | None, *paths: str) -> str | None:
        for path in paths:
            value = self.text(el, path)
            if value:
                return value
        return None


def descendant(el: Element, ns: str, name: str) -> Element | None:
    """The first element named ``{ns}name`` anywhere below ``el``."""
    return next(el.iter(f"{{{ns}}}{name}"), None)
