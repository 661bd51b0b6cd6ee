"""Email templates per company, document type and language; built-in defaults otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.domain.documents import LANGUAGES, parse_language
from docmail.errors import NotFound, ValidationError
from docmail.services import audit
from docmail.services.doctypes import get_type_row
from docmail.services.inputs import TemplateIn
from docmail.services.runtime import Actor, Role, Runtime
from docmail.templates.engine import RenderedEmail, TemplateSource


@dataclass(frozen=True)
class EffectiveTemplate:
    doc_type: str
    language: str
    source: TemplateSource
    custom: bool


def _custom_row(session: Session, actor: Actor, doc_type: str, language: str) -> t.Template | None:
    return session.scalar(
        select(t.Template).where(
            t.Template.company_id == actor.company_id,
            t.Template.doc_type == doc_type,
            t.Template.language == language,
        )
    )


def _known_type(session: Session, actor: Actor, doc_type: str) -> None:
    """A type the company does not have (another company's, say) is absent: 404, not 422."""
    try:
        get_type_row(session, actor, doc_type)
    except ValidationError as exc:
        raise NotFound(exc.message, field="doc_type", value=doc_type) from None


def effective_template(
    runtime: Runtime, session: Session, actor: Actor, doc_type: str, language: str
) -> EffectiveTemplate:
    row = _custom_row(session, actor, doc_type, language)
    if row is not None:
        source = TemplateSource(row.subject, row.body_html, row.body_text)
        return EffectiveTemplate(doc_type, language, source, True)
    source = runtime.templates.default_source(doc_type, language)
    return EffectiveTemplate(doc_type, language, source, False)


def list_templates(runtime: Runtime, actor: Actor) -> list[EffectiveTemplate]:
    with runtime.session() as session:
        codes = session.scalars(
            select(t.DocumentType.code)
            .where(t.DocumentType.company_id == actor.company_id)
            .order_by(t.DocumentType.id)
        ).all()
        return [
            effective_template(runtime, session, actor, code, lang)
            for code in codes
            for lang in LANGUAGES
        ]


def get_template(runtime: Runtime, actor: Actor, doc_type: str, language: str) -> EffectiveTemplate:
    parse_language(language)
    with runtime.session() as session:
        _known_type(session, actor, doc_type)
        return effective_template(runtime, session, actor, doc_type, language)


def save_template(
    runtime: Runtime, actor: Actor, doc_type: str, language: str, data: TemplateIn
) -> EffectiveTemplate:
    """Check the template (syntax, unknown names) and store it; nothing is stored if it fails."""
    actor.require(Role.ADMIN)
    parse_language(language)
    source = TemplateSource(data.subject, data.body_html, data.body_text)
    runtime.templates.check(source)
    with runtime.session() as session:
        _known_type(session, actor, doc_type)
        row = _custom_row(session, actor, doc_type, language)
        if row is None:
            row = t.Template(company_id=actor.company_id, doc_type=doc_type, language=language)
            session.add(row)
        # Which parts changed and the new subject; bodies are too long for a list.
        fields = ("subject", "body_html", "body_text")
        parts = [k for k in fields if getattr(row, k) != getattr(data, k)]
        row.subject, row.body_html, row.body_text = data.subject, data.body_html, data.body_text
        if parts:
            detail = {"changed": parts, "subject": data.subject}
            audit.record(session, actor, "template.saved", _target(doc_type, language), detail)
    return EffectiveTemplate(doc_type, language, source, True)


def reset_template(runtime: Runtime, actor: Actor, doc_type: str, language: str) -> None:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        row = _custom_row(session, actor, doc_type, language)
        if row is None:
            raise NotFound(
                f"no custom template for {doc_type}/{language}; the default is in use",
                field="doc_type",
                value=doc_type,
            )
        session.delete(row)
        audit.record(session, actor, "template.reset", _target(doc_type, language))


def _target(doc_type: str, language: str) -> str:
    return f"template:{doc_type}/{language}"


def render_preview(
    runtime: Runtime, source: TemplateSource, context: dict[str, Any], locale: str
) -> RenderedEmail:
    runtime.templates.check(source)
    return runtime.templates.render(source, context, locale)
