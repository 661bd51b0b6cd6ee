"""Who belongs to a company: invitations, members, roles, sessions and passwords.

Users are global (one person may work for several companies), so nobody sets
another person's password: an admin *invites* an address with a role, docmail
emails the link through the company's own account (and shows it once to the
admin to hand over), and the person accepts — signing in first if they already
use docmail, or choosing their own password if they are new. The answer to an
invitation is the same whether or not the address is known elsewhere.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from docmail.adapters.db import outbox_store as store
from docmail.adapters.db import tables as t
from docmail.adapters.mime import new_message_id
from docmail.domain.addresses import check_display_name, normalize_email
from docmail.domain.outbox import MessageState
from docmail.errors import Conflict, DocmailError, NotFound, PermissionDenied, ValidationError
from docmail.services import audit
from docmail.services.accounts import resolve_account
from docmail.services.invitation_mail import invitation_mail
from docmail.services.passwords import hash_password, verify_password
from docmail.services.runtime import Actor, Role, Runtime

INVITATION_TTL = timedelta(days=7)
MIN_PASSWORD = 10
INVITE_PATH = "/invitations/"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationError(
            f"role {value!r} is not one of admin, sender, viewer", field="role", value=value
        ) from None


def check_new_password(password: str, field: str = "password") -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"the password needs at least {MIN_PASSWORD} characters", field=field)
    return password


# ---------------------------------------------------------------- inviting


@dataclass(frozen=True)
class Invited:
    """An invitation made: the link (shown once) and whether it was emailed."""

    invitation_id: int
    email: str
    role: str
    link: str
    expires_at: datetime
    emailed: bool
    not_emailed_reason: str | None


def invite(
    runtime: Runtime, actor: Actor, email: str, role: str, *, name: str = "", base_url: str
) -> Invited:
    """Invite ``email`` to the actor's company; the email goes out with the same commit."""
    actor.require(Role.ADMIN)
    address, wanted = normalize_email(email, "email"), _role(role)
    name = check_display_name(name.strip(), "name")
    token, now = secrets.token_urlsafe(32), runtime.clock()
    link = base_url.rstrip("/") + INVITE_PATH + quote(token)
    with runtime.session() as session:
        if _member_id(session, actor.company_id, address) is not None:
            raise Conflict(f"{address} is already a member of this company", field="email")
        _revoke_pending(session, actor.company_id, address, now)
        row = t.Invitation(
            company_id=actor.company_id,
            email=address,
            name=name,
            role=wanted.value,
            token_hash=_hash(token),
            invited_by=actor.label,
            created_at=now,
            expires_at=now + INVITATION_TTL,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "invitation.created",
            f"invitation:{row.id} {address}",
            {"role": row.role},
        )
        reason = _queue_invitation_mail(runtime, session, actor, row, link)
        result = Invited(row.id, address, row.role, link, row.expires_at, reason is None, reason)
    runtime.wakeup()
    return result


def _member_id(session: Session, company_id: int, address: str) -> int | None:
    return session.scalar(
        select(t.Membership.id)
        .join(t.User, t.User.id == t.Membership.user_id)
        .where(t.Membership.company_id == company_id, t.User.email == address)
    )


def _revoke_pending(session: Session, company_id: int, address: str, now: datetime) -> None:
    """A new invitation for the same address replaces the pending one."""
    session.execute(
        update(t.Invitation)
        .where(
            t.Invitation.company_id == company_id,
            t.Invitation.email == address,
            t.Invitation.accepted_at.is_(None),
            t.Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


def _queue_invitation_mail(
    runtime: Runtime, session: Session, actor: Actor, row: t.Invitation, link: str
) -> str | None:
    """Put the invitation email in the outbox, in this transaction; or say why not."""
    try:
        account = resolve_account(session, actor, None)
    except DocmailError as exc:
        return exc.message
    company = session.get_one(t.Company, actor.company_id)
    inviter = _inviter(session, actor, company.name)
    mail = invitation_mail(
        company.default_language,
        company=company.name,
        inviter=inviter,
        role=row.role,
        link=link,
        expires=row.expires_at.date().isoformat(),
    )
    now = runtime.clock()
    session.add(
        t.Message(
            company_id=actor.company_id,
            account_id=account.id,
            state=MessageState.QUEUED.value,
            from_email=account.from_email,
            from_name=account.from_name,
            to=[row.email],
            subject=mail.subject,
            body_html=mail.body_html,
            body_text=mail.body_text,
            message_id_header=new_message_id(account.from_email.rpartition("@")[2]),
            date_header=now,
            next_attempt_at=now,
            created_at=now,
            queued_at=now,
            created_by=actor.label,
        )
    )
    store.notify_queued(session)
    return None


def _inviter(session: Session, actor: Actor, company_name: str) -> str:
    user = session.get(t.User, actor.user_id) if actor.user_id is not None else None
    if user is None:
        return company_name
    return user.name or user.email


def pending_invitations(runtime: Runtime, actor: Actor) -> list[t.Invitation]:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        return list(
            session.scalars(
                select(t.Invitation)
                .where(
                    t.Invitation.company_id == actor.company_id,
                    t.Invitation.accepted_at.is_(None),
                    t.Invitation.revoked_at.is_(None),
                    t.Invitation.expires_at > runtime.clock(),
                )
                .order_by(t.Invitation.created_at.desc())
            )
        )


def revoke_invitation(runtime: Runtime, actor: Actor, invitation_id: int) -> None:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        row = session.get(t.Invitation, invitation_id)
        if row is None or row.company_id != actor.company_id:
            raise NotFound(
                f"invitation {invitation_id} not found", field="invitation_id", value=invitation_id
            )
        if row.accepted_at is None and row.revoked_at is None:
            row.revoked_at = runtime.clock()
            audit.record(session, actor, "invitation.withdrawn", f"invitation:{row.id} {row.email}")


# ---------------------------------------------------------------- accepting


@dataclass(frozen=True)
class Offer:
    """What the invitation page shows the person holding the link."""

    email: str
    name: str
    role: str
    company_id: int
    company_name: str
    invited_by: str
    expires_at: datetime


_GONE = "this invitation is unknown, was already used, was withdrawn or has expired"


def _open_invitation(session: Session, token: str, now: datetime) -> t.Invitation:
    row = session.scalar(select(t.Invitation).where(t.Invitation.token_hash == _hash(token)))
    if row is None or row.accepted_at or row.revoked_at or row.expires_at <= now:
        raise NotFound(_GONE, field="invitation")
    return row


def offer(runtime: Runtime, token: str) -> Offer:
    with runtime.session() as session:
        row = _open_invitation(session, token, runtime.clock())
        company = session.get_one(t.Company, row.company_id)
        return Offer(
            row.email,
            row.name,
            row.role,
            row.company_id,
            company.name,
            row.invited_by.partition(":")[2] or row.invited_by,
            row.expires_at,
        )


def _take(session: Session, token: str, now: datetime) -> t.Invitation:
    """Mark the invitation accepted (once, whatever the concurrency) and return it."""
    row = _open_invitation(session, token, now)
    taken = session.execute(
        update(t.Invitation)
        .where(t.Invitation.id == row.id, t.Invitation.accepted_at.is_(None))
        .values(accepted_at=now)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(_GONE, field="invitation")
    return row


def accept_signed_in(runtime: Runtime, token: str, user_id: int) -> int:
    """Accept as the signed-in user, whose address must be the invited one; the company id."""
    now = runtime.clock()
    with runtime.session() as session:
        user = session.get_one(t.User, user_id)
        row = _open_invitation(session, token, now)
        if user.email != row.email:
            raise PermissionDenied(
                f"this invitation is for {row.email}; you are signed in as {user.email}",
                field="invitation",
            )
        row = _take(session, token, now)
        row.accepted_user_id = user.id
        _join(session, row, user.id)
        return row.company_id


def accept_as_new_user(
    runtime: Runtime, token: str, *, name: str, password: str
) -> tuple[int, int]:
    """Create the invited person's user with the password they chose; (user id, company id).

    An address that already has a docmail user cannot take a new password this way:
    that person signs in first (their password stays theirs).
    """
    check_new_password(password)
    name = check_display_name(name.strip(), "name")
    now = runtime.clock()
    with runtime.session() as session:
        row = _open_invitation(session, token, now)
        if session.scalar(select(t.User.id).where(t.User.email == row.email)) is not None:
            raise Conflict(
                f"{row.email} already uses docmail: sign in with your own password to accept",
                field="email",
            )
        row = _take(session, token, now)
        user = t.User(email=row.email, name=name or row.name, password_hash=hash_password(password))
        session.add(user)
        session.flush()
        row.accepted_user_id = user.id
        _join(session, row, user.id)
        return user.id, row.company_id


def _join(session: Session, row: t.Invitation, user_id: int) -> None:
    exists = session.scalar(
        select(t.Membership.id).where(
            t.Membership.user_id == user_id, t.Membership.company_id == row.company_id
        )
    )
    if exists is None:
        session.add(t.Membership(user_id=user_id, company_id=row.company_id, role=row.role))
    who = Actor(row.company_id, Role(row.role), user_id, label=f"user:{row.email}")
    audit.record(
        session, who, "member.joined", f"user:{row.email}", {"role": row.role, "invitation": row.id}
    )


# ---------------------------------------------------------------- members


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    name: str
    role: str
    sessions: int


def members(runtime: Runtime, actor: Actor) -> list[Member]:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        open_sessions = (
            select(t.WebSession.user_id, func.count().label("n"))
            .where(t.WebSession.company_id == actor.company_id)
            .group_by(t.WebSession.user_id)
            .subquery()
        )
        rows = session.execute(
            select(
                t.User.id,
                t.User.email,
                t.User.name,
                t.Membership.role,
                func.coalesce(open_sessions.c.n, 0),
            )
            .join(t.Membership, t.Membership.user_id == t.User.id)
            .outerjoin(open_sessions, open_sessions.c.user_id == t.User.id)
            .where(t.Membership.company_id == actor.company_id)
            .order_by(t.User.email)
        ).all()
    return [Member(*row) for row in rows]


def _membership(session: Session, actor: Actor, user_id: int) -> t.Membership:
    row = session.scalar(
        select(t.Membership).where(
            t.Membership.company_id == actor.company_id, t.Membership.user_id == user_id
        )
    )
    if row is None:
        raise NotFound(f"member {user_id} not found", field="user_id", value=user_id)
    return row


def _keep_an_admin(session: Session, company_id: int, leaving: t.Membership) -> None:
    if leaving.role != Role.ADMIN.value:
        return
    admins = session.scalar(
        select(func.count()).where(
            t.Membership.company_id == company_id, t.Membership.role == Role.ADMIN.value
        )
    )
    if (admins or 0) <= 1:
        raise Conflict(
            "the company needs at least one admin; make someone else admin first", field="role"
        )


def change_role(runtime: Runtime, actor: Actor, user_id: int, role: str) -> None:
    actor.require(Role.ADMIN)
    wanted = _role(role)
    with runtime.session() as session:
        row = _membership(session, actor, user_id)
        if wanted is not Role.ADMIN:
            _keep_an_admin(session, actor.company_id, row)
        audit.record(
            session,
            actor,
            "member.role_changed",
            _who(session, user_id),
            {"role": {"from": row.role, "to": wanted.value}},
        )
        row.role = wanted.value


def remove_member(runtime: Runtime, actor: Actor, user_id: int) -> None:
    """Take the person out of the company; their sessions in it end at once."""
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        row = _membership(session, actor, user_id)
        _keep_an_admin(session, actor.company_id, row)
        session.delete(row)
        ended = _end(session, actor.company_id, user_id)
        audit.record(
            session,
            actor,
            "member.removed",
            _who(session, user_id),
            {"role": row.role, "sessions_ended": ended},
        )


def end_sessions(runtime: Runtime, actor: Actor, user_id: int) -> int:
    """Sign the member out of this company everywhere; how many sessions ended."""
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        _membership(session, actor, user_id)
        ended = _end(session, actor.company_id, user_id)
        audit.record(
            session, actor, "member.signed_out", _who(session, user_id), {"sessions_ended": ended}
        )
        return ended


def _who(session: Session, user_id: int) -> str:
    return f"user:{session.get_one(t.User, user_id).email}"


def _end(session: Session, company_id: int, user_id: int) -> int:
    ended = session.execute(
        delete(t.WebSession).where(
            t.WebSession.company_id == company_id, t.WebSession.user_id == user_id
        )
    )
    return int(ended.rowcount or 0)  # type: ignore[attr-defined]


def change_password(
    runtime: Runtime, user_id: int, current: str, new: str, *, keep_session: str
) -> int:
    """Change one's own password; every other session of the user ends. How many ended."""
    check_new_password(new, "new_password")
    with runtime.session() as session:
        user = session.get_one(t.User, user_id)
        if not verify_password(current, user.password_hash):
            raise ValidationError("the current password is not right", field="current_password")
        user.password_hash = hash_password(new)
        ended = session.execute(
            delete(t.WebSession).where(
                t.WebSession.user_id == user_id, t.WebSession.id != keep_session
            )
        )
        return int(ended.rowcount or 0)  # type: ignore[attr-defined]
