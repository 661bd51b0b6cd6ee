"""index the foreign keys that hot paths look up by

Reading a message's attachments, a document's attachments or a party's contacts
scanned the whole table on PostgreSQL (it does not index foreign keys by itself):
the worker's load per message grew with the outbox.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 15:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = [
    ("contacts", "party_id"),
    ("document_attachments", "document_id"),
    ("message_attachments", "message_id"),
    ("batch_items", "message_id"),
    ("automation_outcomes", "message_id"),
    ("messages", "resend_of_id"),
]


def upgrade() -> None:
    for table, column in INDEXES:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in reversed(INDEXES):
        op.drop_index(f"ix_{table}_{column}", table_name=table)
