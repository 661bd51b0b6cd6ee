"""The runtime: adapters wired together once by the composition root and passed down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from docmail.adapters.db import tables as t
from docmail.adapters.outbound import OutboundPolicy
from docmail.adapters.secrets import SecretBox
from docmail.adapters.smtp.transport import Transport
from docmail.config import Settings
from docmail.errors import ConfigurationError, PermissionDenied
from docmail.templates.engine import TemplateEngine


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(StrEnum):
    ADMIN = "admin"  # settings, users, everything a sender can do
    SENDER = "sender"  # compose and send, manage parties and documents
    VIEWER = "viewer"  # read only


_ROLE_RANK = {Role.VIEWER: 0, Role.SENDER: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Actor:
    """Who is asking, for which company: every query is scoped by ``company_id``."""

    company_id: int
    role: Role
    user_id: int | None = None
    label: str = ""
    # docmail itself carrying out a choice made earlier by someone allowed to make it
    # (a batch's account, checked when the batch was accepted; an admin's automation rule).
    system: bool = False

    def require(self, role: Role) -> None:
        if _ROLE_RANK[self.role] < _ROLE_RANK[role]:
            raise PermissionDenied(
                f"this needs the {role.value} role; you are {self.role.value}", field="role"
            )


# Builds the transport for one mail account; registered per account kind ("smtp", ...).
AccountTransportFactory = Callable[["Runtime", t.MailAccount], Transport]


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secrets: SecretBox
    templates: TemplateEngine
    transports: dict[str, AccountTransportFactory]
    clock: Callable[[], datetime] = field(default=utcnow)
    wake_listeners: list[Callable[[], None]] = field(default_factory=list)

    @property
    def outbound(self) -> OutboundPolicy:
        """Where companies may make docmail connect (``DOCMAIL_OUTBOUND_ALLOW``)."""
        return OutboundPolicy(self.settings.outbound_allow)

    def transport_for(self, account: t.MailAccount) -> Transport:
        """The transport for an account, chosen by its kind (one registry, see bootstrap).

        Factories hand the installation's outbound policy (``self.outbound``) to the
        transports they build, so no company can aim docmail at an internal host.
        """
        factory = self.transports.get(account.kind)
        if factory is None:
            known = ", ".join(sorted(self.transports))
            raise ConfigurationError(
                f"mail account {account.name!r} has kind {account.kind!r}, which this "
                f"installation cannot send with; known kinds: {known}",
                field="kind",
                value=account.kind,
            )
        return factory(self, account)

    def wakeup(self) -> None:
        """Tell in-process workers that new messages are queued (they also poll)."""
        for listener in self.wake_listeners:
            listener()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A unit of work that only reads, rolled back at the end.

        On SQLite it begins DEFERRED instead of IMMEDIATE, so it holds no write
        lock: a slow read (a template render near its time limit, a big health
        count) does not make every writer, and every other request, wait.
        """
        with self.engine.connect() as conn:
            conn.info["sqlite_begin_mode"] = "DEFERRED"
            with self.sessions(bind=conn) as session:
                session.info["read_only"] = True
                try:
                    yield session
                finally:
                    # Detach first: a rollback would expire what the caller returns.
                    session.expunge_all()
                    session.rollback()
