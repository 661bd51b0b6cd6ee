"""batch back-off: a batch that keeps failing as a whole waits, then is quarantined

``attempts`` counts the chunks of a batch that failed as a whole (not one
document: those are recorded on their item); ``next_attempt_at`` is when a
worker may take the batch again (also set after every chunk, so the workers
take turns between batches and companies); ``last_error`` says why it failed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "batches", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("batches", sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
    op.add_column("batches", sa.Column("last_error", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite drops columns by copying the table: batch mode does that.
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("last_error")
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
