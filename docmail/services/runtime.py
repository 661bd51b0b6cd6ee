"""The runtime: adapters wired together once by the composition root and passed down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from docmail.adapters.secrets import SecretBox
from docmail.adapters.smtp.transport import SmtpSettings, Transport
from docmail.config import Settings
from docmail.errors import PermissionDenied
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

    def require(self, role: Role) -> None:
        if _ROLE_RANK[self.role] < _ROLE_RANK[role]:
            raise PermissionDenied(
                f"this needs the {role.value} role; you are {self.role.value}", field="role"
            )


TransportFactory = Callable[[SmtpSettings], Transport]


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secrets: SecretBox
    templates: TemplateEngine
    transport_factory: TransportFactory
    clock: Callable[[], datetime] = field(default=utcnow)
    wake_listeners: list[Callable[[], None]] = field(default_factory=list)

    def wakeup(self) -> None:
        """Tell in-process workers that new messages are queued (they also poll)."""
        for listener in self.wake_listeners:
            listener()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        with self.sessions() as session, session.begin():
            yield session
