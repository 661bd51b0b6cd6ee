"""durable automation triggers: an event row per document change, consumed by workers

Automation was evaluated in the request thread after the document's commit; a
crash or error in between lost the automatic email. Now the change and its event
are committed together and workers consume the events.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "automation_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "company_id",
            sa.Integer(),
            sa.ForeignKey("companies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("run", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when, nullable=False),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        sa.Column("locked_until", when, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("processed_at", when, nullable=True),
    )
    op.create_index(
        "ix_automation_events_due", "automation_events", ["state", "next_attempt_at", "id"]
    )
    op.create_index("ix_automation_events_document_id", "automation_events", ["document_id"])


def downgrade() -> None:
    op.drop_index("ix_automation_events_document_id", table_name="automation_events")
    op.drop_index("ix_automation_events_due", table_name="automation_events")
    op.drop_table("automation_events")
