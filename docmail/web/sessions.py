"""Browser sign-in: server-side session rows, CSRF tokens and a login rate limit.

The cookie carries a random token; the database keeps only its SHA-256, so a
leaked database does not leak live sessions. Logout deletes the row: the cookie
is worthless afterwards even if someone kept a copy.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.adapters.db import throttle
from docmail.services.passwords import verify_password
from docmail.services.runtime import Actor, Role, Runtime

COOKIE = "docmail_session"
PRELOGIN_COOKIE = "docmail_prelogin"
IDLE_TIMEOUT = timedelta(hours=12)
MAX_AGE = timedelta(days=7)
TOUCH_EVERY = timedelta(minutes=5)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@dataclass(frozen=True)
class Membership:
    company_id: int
    company_name: str
    role: Role


@dataclass(frozen=True)
class SignedIn:
    """Who is at the keyboard: the user, the company they work in now, and their role there."""

    session_id: str
    user_id: int
    email: str
    name: str
    language: str | None
    csrf: str
    actor: Actor
    memberships: tuple[Membership, ...]

    @property
    def company_name(self) -> str:
        return next(
            (m.company_name for m in self.memberships if m.company_id == self.actor.company_id),
            "",
        )


def memberships_of(runtime: Runtime, user_id: int) -> tuple[Membership, ...]:
    with runtime.read_session() as session:
        return _memberships(session, user_id)


def _memberships(session: Session, user_id: int) -> tuple[Membership, ...]:
    rows = session.execute(
        select(t.Membership.company_id, t.Company.name, t.Membership.role)
        .join(t.Company, t.Company.id == t.Membership.company_id)
        .where(t.Membership.user_id == user_id)
        .order_by(t.Membership.company_id)
    ).all()
    return tuple(Membership(cid, name, Role(role)) for cid, name, role in rows)


def check_password(runtime: Runtime, email: str, password: str) -> int | None:
    """The user id when the password is right (and the user belongs to a company)."""
    with runtime.session() as session:
        user = session.scalar(select(t.User).where(t.User.email == email.strip().lower()))
        if user is None:
            verify_password(password, _DUMMY_HASH)  # same cost whether or not the user exists
            return None
        if not verify_password(password, user.password_hash):
            return None
        return user.id


def start_session(runtime: Runtime, user_id: int, company_id: int) -> str:
    """Create a session row and return the cookie token (shown to the browser only)."""
    token = secrets.token_urlsafe(32)
    now = runtime.clock()
    with runtime.session() as session:
        session.add(
            t.WebSession(
                id=token_hash(token),
                user_id=user_id,
                company_id=company_id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
                expires_at=now + IDLE_TIMEOUT,
            )
        )
    return token


def end_session(runtime: Runtime, session_id: str) -> None:
    with runtime.session() as session:
        session.execute(delete(t.WebSession).where(t.WebSession.id == session_id))


def switch_company(runtime: Runtime, signed: SignedIn, company_id: int) -> bool:
    if all(m.company_id != company_id for m in signed.memberships):
        return False
    with runtime.session() as session:
        row = session.get_one(t.WebSession, signed.session_id)
        row.company_id = company_id
    return True


def load_session(runtime: Runtime, token: str | None) -> SignedIn | None:
    """The signed-in user for a cookie token, or None (unknown, expired or no membership).

    Every page asks this, so it reads in a read session (no SQLite write lock, which
    would make every request of every company queue behind one another); it writes
    only to end an expired session or, every few minutes, to note the session's use.
    """
    if not token:
        return None
    now, key = runtime.clock(), token_hash(token)
    with runtime.read_session() as session:
        row = session.get(t.WebSession, key)
        if row is None:
            return None
        expired = row.expires_at <= now or row.created_at + MAX_AGE <= now
        touch = now - row.last_seen_at >= TOUCH_EVERY
        user = session.get_one(t.User, row.user_id)
        found = (row.id, user.id, user.email, user.name, user.language, row.csrf_token)
        company_id = row.company_id
        memberships = _memberships(session, user.id)
    if expired or touch:
        _note_use(runtime, key, now, expired)
        if expired:
            return None
    member = next((m for m in memberships if m.company_id == company_id), None)
    if member is None:
        return None
    actor = Actor(company_id, member.role, user_id=found[1], label=f"user:{found[2]}")
    return SignedIn(*found, actor=actor, memberships=memberships)


def _note_use(runtime: Runtime, key: str, now: datetime, expired: bool) -> None:
    with runtime.session() as session:
        if expired:
            session.execute(delete(t.WebSession).where(t.WebSession.id == key))
        else:
            session.execute(
                update(t.WebSession)
                .where(t.WebSession.id == key)
                .values(last_seen_at=now, expires_at=now + IDLE_TIMEOUT)
            )


def set_language(runtime: Runtime, user_id: int, language: str) -> None:
    with runtime.session() as session:
        session.get_one(t.User, user_id).language = language


@dataclass(frozen=True)
class LoginLimiter:
    """At most ``attempts`` sign-ins per address, and per client address, in ``window``.

    The counts live in the database (``adapters/db/throttle.py``), so every server
    process shares them and a restart keeps them. ``admit`` counts an attempt
    *before* the password is checked: of many concurrent guesses, only the first
    ``attempts`` get a password check. A successful sign-in clears the address's
    count and takes its own attempt back from the client's, so people sharing one
    office address are not blocked by each other's successes.
    """

    engine: Engine
    clock: Callable[[], datetime]
    attempts: int = 5
    window: timedelta = timedelta(minutes=10)

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> LoginLimiter:
        s = runtime.settings
        return cls(
            runtime.engine,
            runtime.clock,
            s.login_attempts,
            timedelta(seconds=s.login_window_seconds),
        )

    def admit(self, email: str, client: str) -> bool:
        """Count this attempt; False when the address or the client is over the limit."""
        now = self.clock()
        counts = throttle.count_attempt(
            self.engine, throttle_keys(email, client), now, now - self.window
        )
        return max(counts.values()) <= self.attempts

    def succeeded(self, email: str, client: str) -> None:
        address_key, client_key = throttle_keys(email, client)
        throttle.forget(self.engine, address_key)
        throttle.take_back(self.engine, client_key)

    def prune(self) -> int:
        """Delete counts whose window is over (``admit`` also does it as windows start)."""
        return throttle.prune(self.engine, self.clock() - self.window)


def client_network(client: str) -> str:
    """The unit a client is counted by: its IPv4 address, or its IPv6 /64 (one subscriber
    usually holds a whole /64, and could otherwise take a new address per guess)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def throttle_keys(email: str, client: str) -> tuple[str, str]:
    """The two counters of a sign-in: its address and its client (hashed: the table keeps
    neither addresses nor IPs in clear)."""
    address = email.strip().lower()
    return (f"email:{token_hash(address)}", f"client:{token_hash(client_network(client))}")


_DUMMY_HASH = "scrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
