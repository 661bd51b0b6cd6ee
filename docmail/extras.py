"""Optional features and the pip extra that installs each.

docmail's core runs SMTP on SQLite. PostgreSQL, Amazon SES and the other optional
parts come with extras (``pip install 'docmail[postgres]'``); a feature used
without its extra fails loudly with the command that installs it, instead of an
``ImportError`` somewhere deep in a request.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from docmail.errors import ValidationError

# The import that proves an extra is installed, by extra.
EXTRA_MODULES: dict[str, str] = {"postgres": "psycopg", "ses": "boto3"}


class FeatureNotInstalled(ValidationError):
    """A request needs an optional part this installation lacks (422: it names the fix)."""


def install_hint(extra: str) -> str:
    return f"pip install 'docmail[{extra}]'"


def require(extra: str, feature: str, *, field: str | None = None) -> ModuleType:
    """Import the module behind ``extra`` or raise :class:`FeatureNotInstalled`.

    ``feature`` says what needed it, e.g. ``"account kind 'ses'"``.
    """
    try:
        return importlib.import_module(EXTRA_MODULES[extra])
    except ImportError as exc:
        raise FeatureNotInstalled(
            f"{feature} needs `{install_hint(extra)}`", field=field, value=extra
        ) from exc


def installed(extra: str) -> bool:
    try:
        require(extra, extra)
    except FeatureNotInstalled:
        return False
    return True
