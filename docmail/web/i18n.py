"""Interface language: the user's preference, else Accept-Language, else Spanish.

Messages are written in English in the code and templates (``_("Documents")``);
the Spanish and Portuguese catalogs are plain dicts in :mod:`docmail.web.catalog`.
A test checks that every message used has both translations.
"""

from __future__ import annotations

from collections.abc import Callable

from docmail.web.catalog import ES, PT

LANGUAGES = ("es", "pt", "en")
DEFAULT = "es"
LOCALES = {"es": "es_MX", "pt": "pt_BR", "en": "en_US"}
CATALOGS: dict[str, dict[str, str]] = {"es": ES, "pt": PT, "en": {}}


def translator(lang: str) -> Callable[[str], str]:
    catalog = CATALOGS.get(lang, {})

    def translate(message: str) -> str:
        return catalog.get(message, message)

    return translate


def negotiate(header: str) -> str:
    """The best of es/pt/en for an Accept-Language header ('pt-BR,pt;q=0.9,en;q=0.8')."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().lower()[:2]
        if language in LANGUAGES and quality > 0:
            choices.append((-quality, index, language))
    return min(choices)[2] if choices else DEFAULT
