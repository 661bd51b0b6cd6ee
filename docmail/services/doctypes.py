"""Document types per company: recipient roles, fallback and the state required to send."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.domain.documents import DocumentStatus, DocumentTypeRule, Fallback
from docmail.errors import Conflict, NotFound, ValidationError
from docmail.services import audit
from docmail.services.inputs import DocumentTypeIn, DocumentTypePatch
from docmail.services.runtime import Actor, Role, Runtime


def get_type_row(session: Session, actor: Actor, code: str, field: str = "type") -> t.DocumentType:
    row = session.scalar(
        select(t.DocumentType).where(
            t.DocumentType.company_id == actor.company_id, t.DocumentType.code == code
        )
    )
    if row is None:
        known = session.scalars(
            select(t.DocumentType.code).where(t.DocumentType.company_id == actor.company_id)
        )
        raise ValidationError(
            f"unknown document type {code!r}; known types: {', '.join(sorted(known))}",
            field=field,
            value=code,
        )
    return row


def rule_of(row: t.DocumentType) -> DocumentTypeRule:
    return DocumentTypeRule(
        code=row.code,
        name=row.name,
        recipient_roles=tuple(row.recipient_roles),
        cc_roles=tuple(row.cc_roles),
        fallback=Fallback(row.fallback),
        required_status=DocumentStatus(row.required_status) if row.required_status else None,
    )


def list_types(runtime: Runtime, actor: Actor) -> list[t.DocumentType]:
    with runtime.session() as session:
        query = select(t.DocumentType).where(t.DocumentType.company_id == actor.company_id)
        return list(session.scalars(query.order_by(t.DocumentType.id)))


def get_type(runtime: Runtime, actor: Actor, code: str) -> t.DocumentType:
    with runtime.session() as session:
        try:
            return get_type_row(session, actor, code)
        except ValidationError as exc:
            raise NotFound(exc.message, field="code", value=code) from None


def create_type(runtime: Runtime, actor: Actor, data: DocumentTypeIn) -> t.DocumentType:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        clash = session.scalar(
            select(t.DocumentType.id).where(
                t.DocumentType.company_id == actor.company_id, t.DocumentType.code == data.code
            )
        )
        if clash is not None:
            raise Conflict(f"document type {data.code!r} exists", field="code", value=data.code)
        row = t.DocumentType(company_id=actor.company_id, **data.model_dump())
        session.add(row)
        audit.record(session, actor, "doctype.created", f"doctype:{row.code}", data.model_dump())
    return row


def update_type(
    runtime: Runtime, actor: Actor, code: str, patch: DocumentTypePatch
) -> t.DocumentType:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        try:
            row = get_type_row(session, actor, code)
        except ValidationError as exc:
            raise NotFound(exc.message, field="code", value=code) from None
        changes = patch.model_dump(exclude_unset=True)
        diff = audit.changed(row, changes)
        for key, value in changes.items():
            setattr(row, key, value)
        if diff:
            audit.record(session, actor, "doctype.updated", f"doctype:{code}", diff)
    return row
