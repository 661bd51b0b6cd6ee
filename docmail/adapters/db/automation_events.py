"""The mapping of durable automation triggers (migration 0011).

``tables`` re-exports it, so code keeps writing ``t.AutomationEvent``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from docmail.adapters.db.base import Base, utcnow


class AutomationEvent(Base):
    """A document was created or changed state: automation must look at it, exactly once.

    Written in the same transaction as the document's change (the outbox pattern),
    consumed by workers under a lease, so a crash between the commit and the
    evaluation loses nothing. Evaluating twice is harmless: each automatic email is
    keyed by (rule, document, trigger).
    """

    __tablename__ = "automation_events"
    __table_args__ = (Index("ix_automation_events_due", "state", "next_attempt_at", "id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))  # "created" or "status:<state>"
    run: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending|done|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)
