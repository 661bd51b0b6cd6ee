"""Browser sign-in: server-side session rows, CSRF tokens and a login rate limit.

The cookie carries a random token; the database keeps only its SHA-256, so a
leaked database does not leak live sessions. Logout deletes the row: the cookie
is worthless afterwards even if someone kept a copy.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, select

from docmail.adapters.db import tables as t
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
    with runtime.session() as session:
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
    """The signed-in user for a cookie token, or None (unknown, expired or no membership)."""
    if not token:
        return None
    now = runtime.clock()
    with runtime.session() as session:
        row = session.get(t.WebSession, token_hash(token))
        if row is None:
            return None
        if row.expires_at <= now or row.created_at + MAX_AGE <= now:
            session.delete(row)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at, row.expires_at = now, now + IDLE_TIMEOUT
        user = session.get_one(t.User, row.user_id)
        found = (row.id, user.id, user.email, user.name, user.language, row.csrf_token)
        company_id = row.company_id
    memberships = memberships_of(runtime, found[1])
    member = next((m for m in memberships if m.company_id == company_id), None)
    if member is None:
        return None
    actor = Actor(company_id, member.role, user_id=found[1], label=f"user:{found[2]}")
    return SignedIn(*found, actor=actor, memberships=memberships)


def set_language(runtime: Runtime, user_id: int, language: str) -> None:
    with runtime.session() as session:
        session.get_one(t.User, user_id).language = language


@dataclass
class LoginLimiter:
    """At most ``attempts`` failed sign-ins per address and client in ``window`` seconds."""

    attempts: int = 5
    window: float = 600.0
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.attempts

    def failed(self, key: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


_DUMMY_HASH = "scrypt$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
