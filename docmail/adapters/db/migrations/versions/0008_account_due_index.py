"""index messages by account, state and next attempt, for claiming

The worker's claim looked for due messages with one OR over states and grouped
every due row by account: each claim scanned the whole queue, so a 100,000-email
batch was delivered ~30% slower than a small one. Per account and state, the due
messages are now a range of this index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 18:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_account_due", "messages", ["account_id", "state", "next_attempt_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_messages_account_due", table_name="messages")
