"""SQLAlchemy 2 table mappings. Every tenant-owned row carries ``company_id``.

The schema itself is created by Alembic migrations (``migrations/versions``);
these classes must stay in step with them (a test compares the two).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from docmail.adapters.db.automation_events import AutomationEvent as AutomationEvent

# Re-exported: every mapping is reachable as ``tables.X``.
from docmail.adapters.db.base import Base as Base
from docmail.adapters.db.base import UTCDateTime as UTCDateTime
from docmail.adapters.db.base import table_of as table_of
from docmail.adapters.db.base import utcnow as utcnow
from docmail.adapters.db.identity import ApiToken as ApiToken
from docmail.adapters.db.identity import AuditEvent as AuditEvent
from docmail.adapters.db.identity import Invitation as Invitation
from docmail.adapters.db.identity import LoginThrottle as LoginThrottle
from docmail.adapters.db.identity import Membership as Membership
from docmail.adapters.db.identity import User as User
from docmail.adapters.db.identity import WebSession as WebSession


class Company(Base):
    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), default="MX")
    default_language: Mapped[str] = mapped_column(String(2), default="es")
    sending_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailAccount(Base):
    __tablename__ = "mail_accounts"
    __table_args__ = (UniqueConstraint("company_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="smtp")
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(10), default="starttls")
    username: Mapped[str | None] = mapped_column(String(320), nullable=True)
    password_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_email: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(200), default="")
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Pacing, shared by every worker through the database (None = no limit).
    rate_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_per_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrency: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Retry policy: {"kind": "exponential", "max_attempts": 8, ...}; empty = defaults.
    retry_policy: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Migration 0003 (OAuth, SES, per-user accounts):
    # No ON DELETE: SQLite's reflection cannot see it on an added column; unset the owner
    # before deleting a user.
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    region: Mapped[str | None] = mapped_column(String(40), nullable=True)  # SES
    endpoint_url: Mapped[str | None] = mapped_column(String(500), nullable=True)  # SES
    oauth_token: Mapped[OAuthToken | None] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )


class Party(Base):
    __tablename__ = "parties"
    __table_args__ = (UniqueConstraint("company_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    tax_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    language: Mapped[str] = mapped_column(String(2), default="es")
    auto_send: Mapped[bool] = mapped_column(Boolean, default=True)
    auto_send_only_multiple: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="party", cascade="all, delete-orphan", order_by="Contact.id"
    )


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(320))
    roles: Mapped[list[str]] = mapped_column(default=list)
    bouncing: Mapped[bool] = mapped_column(Boolean, default=False)
    bounce_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    party: Mapped[Party] = relationship(back_populates="contacts")


class DocumentType(Base):
    __tablename__ = "document_types"
    __table_args__ = (UniqueConstraint("company_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    recipient_roles: Mapped[list[str]] = mapped_column(default=list)
    cc_roles: Mapped[list[str]] = mapped_column(default=list)
    fallback: Mapped[str] = mapped_column(String(20), default="general_email")
    required_status: Mapped[str | None] = mapped_column(String(20), nullable=True)


class Template(Base):
    """A company's own template for one document type and language (overrides the default)."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("company_id", "doc_type", "language"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    doc_type: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Blob(Base):
    """Attachment bytes, stored once per content (sha256), shared by documents and messages."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("company_id", "doc_type", "number"),
        Index("ix_documents_company_party", "company_id", "party_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    doc_type: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(100))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    issue_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    total: Mapped[Decimal | None] = mapped_column(Numeric(20, 6), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="issued")
    fiscal_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    party: Mapped[Party] = relationship()
    attachments: Mapped[list[DocumentAttachment]] = relationship(
        cascade="all, delete-orphan", order_by="DocumentAttachment.id"
    )


class DocumentAttachment(Base):
    __tablename__ = "document_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)


class Batch(Base):
    """Many documents sent at once; expanded into messages chunk by chunk.

    ``state``: receiving (items being stored) -> ready -> expanding -> done, or
    quarantined (``last_error``) after chunks failed as a whole too many times.
    A worker that dies while expanding leaves a lease that another worker takes over.
    """

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("company_id", "idempotency_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="receiving")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("mail_accounts.id"), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # A chunk that fails as a whole backs the batch off; too many: state "quarantined".
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class BatchItem(Base):
    """One document of a batch and what became of it (its message, or why not)."""

    __tablename__ = "batch_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "document_id"),
        Index("ix_batch_items_pending", "batch_id", "done", "group_key", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(Integer)
    group_key: Mapped[int] = mapped_column(BigInteger)  # party id (per_party) or document id
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True, index=True
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_field: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Message(Base):
    """One email in the outbox: what to send, to whom, and how delivery went."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("company_id", "idempotency_key"),
        Index("ix_messages_claim", "state", "next_attempt_at"),
        Index("ix_messages_account_due", "account_id", "state", "next_attempt_at", "id"),
        Index("ix_messages_company_created", "company_id", "created_at"),
        Index("ix_messages_batch_state", "batch_id", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("mail_accounts.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), nullable=True)
    resend_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id"), nullable=True, index=True
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    from_email: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to: Mapped[list[str]] = mapped_column(default=list)
    cc: Mapped[list[str]] = mapped_column(default=list)
    bcc: Mapped[list[str]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    message_id_header: Mapped[str] = mapped_column(String(300), unique=True)
    date_header: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A bulk requeue restarts the retry budget: attempts and age count from here.
    attempts_at_queue: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    smtp_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    server_reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Migration 0009: the user or API token that queued it ("user:ana@x", "token:erp").
    created_by: Mapped[str] = mapped_column(String(200), default="")
    attachments: Mapped[list[MessageAttachment]] = relationship(
        cascade="all, delete-orphan", order_by="MessageAttachment.id"
    )
    document_links: Mapped[list[MessageDocument]] = relationship(cascade="all, delete-orphan")


class MessageDocument(Base):
    __tablename__ = "message_documents"
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class MessageAttachment(Base):
    __tablename__ = "message_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    blob_sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)


class MessageAttempt(Base):
    """One delivery attempt: when, how it ended, and the server's own words."""

    __tablename__ = "message_attempts"
    __table_args__ = (Index("ix_message_attempts_account_started", "account_id", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    smtp_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class WorkerHeartbeat(Base):
    """Workers announce themselves here; health and metrics read it."""

    __tablename__ = "worker_heartbeats"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    sent: Mapped[int] = mapped_column(BigInteger, default=0)


class CaughtMessage(Base):
    """A message captured by the built-in demo mail catcher."""

    __tablename__ = "caught_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[list[str]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # Migration 0009: the company whose demo account sent it (each sees only its own).
    company_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)


# ---------------------------------------------------------------- OAuth (migration 0003)


class OAuthClient(Base):
    """A company's own OAuth client for a provider (else the installation's is used)."""

    __tablename__ = "oauth_clients"
    __table_args__ = (UniqueConstraint("company_id", "provider"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[str] = mapped_column(String(500))
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OAuthState(Base):
    """One pending authorization: single use, short-lived, bound to company and account."""

    __tablename__ = "oauth_states"
    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("mail_accounts.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Migration 0009: SHA-256 of a nonce in the starting browser's cookie; the callback
    # must come back to that browser, signed in as that user.
    browser_hash: Mapped[str] = mapped_column(String(64), default="")
    code_verifier_encrypted: Mapped[str] = mapped_column(Text)
    return_to: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OAuthToken(Base):
    """The tokens of one OAuth mail account, encrypted; ``version`` grows with every change."""

    __tablename__ = "oauth_tokens"
    account_id: Mapped[int] = mapped_column(
        ForeignKey("mail_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(20))
    access_token_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=0)
    needs_reauth: Mapped[bool] = mapped_column(Boolean, default=False)
    reauth_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_updated_at: Mapped[datetime | None] = mapped_column(nullable=True)  # user re-auth
    refreshed_at: Mapped[datetime | None] = mapped_column(nullable=True)  # background refresh


# ---------------------------------------------------------------- automation (migration 0005)


class AutomationRule(Base):
    """Send a document type's email automatically on a trigger (see docmail.automation.policy)."""

    __tablename__ = "automation_rules"
    __table_args__ = (UniqueConstraint("company_id", "doc_type", "trigger"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    doc_type: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    policy: Mapped[str] = mapped_column(String(20), default="all")
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0)
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)  # template overrides
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    body_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AutomationRun(Base):
    """A named group of documents (one import, one month's rent) decided together on close.

    ``state``: open -> closing (a worker or request holds ``locked_until``) -> closed.
    """

    __tablename__ = "automation_runs"
    __table_args__ = (
        UniqueConstraint("company_id", "name"),
        Index("ix_automation_runs_closing", "state", "closes_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="open")
    quiet_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closes_at: Mapped[datetime | None] = mapped_column(nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AutomationRunDocument(Base):
    __tablename__ = "automation_run_documents"
    run_id: Mapped[int] = mapped_column(
        ForeignKey("automation_runs.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AutomationOutcome(Base):
    """What automation decided for one key (rule+document, reminder, statement): once, ever."""

    __tablename__ = "automation_outcomes"
    __table_args__ = (
        UniqueConstraint("company_id", "key"),
        Index("ix_automation_outcomes_run", "run_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # rule | reminder | statement
    status: Mapped[str] = mapped_column(String(20))  # sent | skipped | failed
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_runs.id", ondelete="SET NULL"), nullable=True
    )
    rule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    document_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    party_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReminderRule(Base):
    """Remind of a document type's payment ``offset_days`` from its due date (negative: before)."""

    __tablename__ = "automation_reminder_rules"
    __table_args__ = (UniqueConstraint("company_id", "doc_type", "offset_days"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    doc_type: Mapped[str] = mapped_column(String(40))
    offset_days: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduledJob(Base):
    """A one-off (``run_at``) or recurring (``cron`` in ``timezone``) job, claimed with a lease."""

    __tablename__ = "automation_jobs"
    __table_args__ = (
        UniqueConstraint("company_id", "name"),
        Index("ix_automation_jobs_due", "enabled", "next_run_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # send | statements | reminders
    cron: Mapped[str | None] = mapped_column(String(100), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class JobExecution(Base):
    """One occurrence of a job; unique per (job, scheduled time) so it never runs twice."""

    __tablename__ = "automation_job_executions"
    __table_args__ = (UniqueConstraint("job_id", "scheduled_for"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("automation_jobs.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime] = mapped_column()
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
