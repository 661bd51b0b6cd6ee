"""Companies (tenants), users, memberships and API tokens."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.domain.documents import DEFAULT_DOCUMENT_TYPES, DocumentTypeRule, parse_language
from docmail.errors import Conflict, ValidationError
from docmail.services.passwords import hash_password
from docmail.services.runtime import Role, Runtime
from docmail.services.tokens import authenticate_token as authenticate_token  # old home
from docmail.services.tokens import new_token_row


def document_type_row(company_id: int, rule: DocumentTypeRule) -> t.DocumentType:
    """A company's copy of a default document type."""
    return t.DocumentType(
        company_id=company_id,
        code=rule.code,
        name=rule.name,
        recipient_roles=list(rule.recipient_roles),
        cc_roles=list(rule.cc_roles),
        fallback=rule.fallback.value,
        required_status=rule.required_status.value if rule.required_status else None,
    )


def seed_document_types(session: Session, company_id: int) -> None:
    existing = set(
        session.scalars(select(t.DocumentType.code).where(t.DocumentType.company_id == company_id))
    )
    for default in DEFAULT_DOCUMENT_TYPES:
        rule = default.rule
        if rule.code in existing:
            continue
        session.add(document_type_row(company_id, rule))


def create_company(
    runtime: Runtime, name: str, *, country: str = "MX", language: str = "es"
) -> t.Company:
    if not name.strip():
        raise ValidationError("company name is empty", field="name", value=name)
    if len(country) != 2 or not country.isalpha():
        raise ValidationError(
            f"country {country!r} must be a two-letter code such as MX", field="country"
        )
    parse_language(language)
    with runtime.session() as session:
        company = t.Company(name=name.strip(), country=country.upper(), default_language=language)
        session.add(company)
        session.flush()
        seed_document_types(session, company.id)
    return company


def create_api_token(
    runtime: Runtime,
    company_id: int,
    name: str,
    role: Role = Role.ADMIN,
    *,
    created_by: str = "cli",
) -> str:
    """Create a token without an acting user (``docmail init``, the demo, tests).

    Returns the token in clear: the only time it is ever shown. People and
    integrations make theirs with :func:`docmail.services.tokens.create_token`.
    """
    made = new_token_row(company_id, name, role, created_by=created_by)
    with runtime.session() as session:
        session.add(made.row)
    return made.token


def create_user(
    runtime: Runtime, email: str, password: str, *, name: str = "", language: str | None = None
) -> t.User:
    if len(password) < 8:
        raise ValidationError("password must have at least 8 characters", field="password")
    with runtime.session() as session:
        if session.scalar(select(t.User).where(t.User.email == email.lower())):
            raise Conflict(f"a user with email {email!r} exists", field="email", value=email)
        user = t.User(
            email=email.lower(), name=name, password_hash=hash_password(password), language=language
        )
        session.add(user)
    return user


def add_membership(runtime: Runtime, user_id: int, company_id: int, role: Role) -> None:
    with runtime.session() as session:
        session.add(t.Membership(user_id=user_id, company_id=company_id, role=role.value))
