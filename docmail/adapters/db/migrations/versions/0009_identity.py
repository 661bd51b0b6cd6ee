"""identity: invitations, the sign-in throttle, the audit list, API token details

Members join by invitation instead of a password typed by an admin; sign-in
failures are counted in the database (shared by every process); every settings
change and message records the user or token that made it; API tokens get a
visible prefix, an expiry and their last use; OAuth states are bound to the
browser that started them; the demo catcher keeps each company's mail apart.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text_column(table: str, name: str, length: int) -> None:
    op.add_column(
        table, sa.Column(name, sa.String(length=length), nullable=False, server_default="")
    )


def _company_id() -> sa.Column[int]:
    return sa.Column(
        "company_id",
        sa.Integer(),
        sa.ForeignKey("companies.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), primary_key=True),
        _company_id(),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("invited_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_user_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_invitations_company_id", "invitations", ["company_id"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        _company_id(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_events_company_at", "audit_events", ["company_id", "at"])
    _text_column("api_tokens", "prefix", 16)
    _text_column("api_tokens", "created_by", 200)
    for column in ("expires_at", "last_used_at"):
        op.add_column("api_tokens", sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    _text_column("messages", "created_by", 200)
    _text_column("oauth_states", "browser_hash", 64)
    op.add_column("caught_messages", sa.Column("company_id", sa.Integer(), nullable=True))
    op.create_index("ix_caught_messages_company_id", "caught_messages", ["company_id"])


def downgrade() -> None:
    op.drop_index("ix_caught_messages_company_id", table_name="caught_messages")
    with op.batch_alter_table("caught_messages") as batch:
        batch.drop_column("company_id")
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_column("browser_hash")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("created_by")
    with op.batch_alter_table("api_tokens") as batch:
        for column in ("last_used_at", "expires_at", "created_by", "prefix"):
            batch.drop_column(column)
    op.drop_index("ix_audit_events_company_at", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("login_throttle")
    op.drop_index("ix_invitations_company_id", table_name="invitations")
    op.drop_table("invitations")
