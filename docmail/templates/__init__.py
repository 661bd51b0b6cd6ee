"""Email templates: a sandboxed Jinja engine, locale-aware filters and built-in defaults.

Callers use :class:`TemplateEngine` (``default_source``, ``check``, ``render``) and
:func:`locale_for`; see :mod:`docmail.templates.engine` for the context it expects.
"""

from docmail.templates.engine import (
    CONTEXT_SCHEMA,
    RenderedEmail,
    TemplateEngine,
    TemplateSource,
    locale_for,
)

__all__ = ["CONTEXT_SCHEMA", "RenderedEmail", "TemplateEngine", "TemplateSource", "locale_for"]
