"""merge the feature branches (web, oauth, automation) into one head

Revision ID: 0006
Revises: 0002_web, 0003, 0005
Create Date: 2026-11-24 14:05:00
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | Sequence[str] | None = ("0002_web", "0003", "0005")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: this revision only joins the branches, so new ones have one parent."""


def downgrade() -> None:
    """Nothing to undo."""
