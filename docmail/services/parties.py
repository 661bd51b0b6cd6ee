"""Parties (customers, suppliers, third parties) and their contacts with roles."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from docmail.adapters.db import tables as t
from docmail.domain.recipients import ContactInfo, PartyInfo
from docmail.errors import Conflict, NotFound
from docmail.services import audit
from docmail.services.inputs import ContactIn, PartyIn, PartyPatch
from docmail.services.runtime import Actor, Role, Runtime


def get_party_row(session: Session, actor: Actor, party_id: int) -> t.Party:
    party = session.get(t.Party, party_id, options=[selectinload(t.Party.contacts)])
    if party is None or party.company_id != actor.company_id:
        raise NotFound(f"party {party_id} not found", field="party_id", value=party_id)
    return party


def find_party_by_code(session: Session, actor: Actor, code: str, field: str) -> t.Party:
    party = session.scalar(
        select(t.Party)
        .where(t.Party.company_id == actor.company_id, t.Party.code == code)
        .options(selectinload(t.Party.contacts))
    )
    if party is None:
        raise NotFound(f"party with code {code!r} not found", field=field, value=code)
    return party


def _contact_rows(actor: Actor, contacts: list[ContactIn]) -> list[t.Contact]:
    return [
        t.Contact(company_id=actor.company_id, name=c.name, email=c.email, roles=list(c.roles))
        for c in contacts
    ]


def _replace_contacts(party: t.Party, actor: Actor, contacts: list[ContactIn]) -> None:
    """Replace the contact list, keeping bounce marks of addresses that stay."""
    old = {c.email.lower(): c for c in party.contacts}
    fresh = _contact_rows(actor, contacts)
    for contact in fresh:
        previous = old.get(contact.email.lower())
        if previous is not None:
            contact.bouncing = previous.bouncing
            contact.bounce_reason = previous.bounce_reason
    party.contacts = fresh


def create_party(runtime: Runtime, actor: Actor, data: PartyIn) -> t.Party:
    actor.require(Role.SENDER)
    with runtime.session() as session:
        clash = session.scalar(
            select(t.Party.id).where(
                t.Party.company_id == actor.company_id, t.Party.code == data.code
            )
        )
        if clash is not None:
            raise Conflict(f"party code {data.code!r} exists", field="code", value=data.code)
        party = t.Party(company_id=actor.company_id, **data.model_dump(exclude={"contacts"}))
        party.contacts = _contact_rows(actor, data.contacts)
        session.add(party)
        session.flush()
        detail = {"name": party.name, "contacts": len(data.contacts)}
        audit.record(session, actor, "party.created", _target(party), detail)
    return party


def update_party(runtime: Runtime, actor: Actor, party_id: int, patch: PartyPatch) -> t.Party:
    actor.require(Role.SENDER)
    with runtime.session() as session:
        party = get_party_row(session, actor, party_id)
        changes = patch.model_dump(exclude_unset=True, exclude={"contacts"})
        diff = audit.changed(party, changes)
        for key, value in changes.items():
            setattr(party, key, value)
        if patch.contacts is not None:
            diff["contacts"] = [c.email for c in patch.contacts]
            _replace_contacts(party, actor, patch.contacts)
        if diff:
            audit.record(session, actor, "party.updated", _target(party), diff)
        session.flush()
        session.refresh(party, ["contacts"])
    return party


def get_party(runtime: Runtime, actor: Actor, party_id: int) -> t.Party:
    with runtime.session() as session:
        return get_party_row(session, actor, party_id)


def list_parties(
    runtime: Runtime, actor: Actor, *, search: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[t.Party], int]:
    with runtime.session() as session:
        query = select(t.Party).where(t.Party.company_id == actor.company_id)
        if search:
            like = f"%{search.lower()}%"
            query = query.where(
                func.lower(t.Party.name).like(like) | func.lower(t.Party.code).like(like)
            )
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.options(selectinload(t.Party.contacts))
            .order_by(t.Party.code)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), total


def delete_party(runtime: Runtime, actor: Actor, party_id: int) -> None:
    actor.require(Role.SENDER)
    with runtime.session() as session:
        party = get_party_row(session, actor, party_id)
        has_docs = session.scalar(select(t.Document.id).where(t.Document.party_id == party.id))
        if has_docs is not None:
            raise Conflict(
                f"party {party.code} has documents and cannot be deleted",
                field="party_id",
                value=party_id,
            )
        session.delete(party)
        audit.record(session, actor, "party.deleted", _target(party), {"name": party.name})


def _target(party: t.Party) -> str:
    return f"party:{party.code}"


def party_info(party: t.Party) -> PartyInfo:
    """The domain's view of a party, for recipient rules."""
    return PartyInfo(
        code=party.code,
        name=party.name,
        email=party.email,
        contacts=tuple(
            ContactInfo(c.name, c.email, tuple(c.roles), c.bouncing, c.bounce_reason)
            for c in party.contacts
        ),
    )
