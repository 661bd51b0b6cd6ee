"""Automation: auto-send rules, runs, outcomes, reminder rules, scheduled jobs

Revision ID: 0005
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _company() -> list[sa.Column | sa.ForeignKeyConstraint]:
    return [
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], ondelete="CASCADE"),
    ]


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _rules() -> None:
    op.create_table(
        "automation_rules",
        _id(),
        *_company(),
        sa.Column("doc_type", sa.String(length=40), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("policy", sa.String(length=20), nullable=False),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "doc_type", "trigger"),
    )
    op.create_table(
        "automation_reminder_rules",
        _id(),
        *_company(),
        sa.Column("doc_type", sa.String(length=40), nullable=False),
        sa.Column("offset_days", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "doc_type", "offset_days"),
    )


def _runs() -> None:
    op.create_table(
        "automation_runs",
        _id(),
        *_company(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("quiet_seconds", sa.Integer(), nullable=True),
        _when("closes_at", True),
        _when("locked_until", True),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        _when("created_at"),
        _when("closed_at", True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "name"),
    )
    op.create_index("ix_automation_runs_closing", "automation_runs", ["state", "closes_at"])
    op.create_table(
        "automation_run_documents",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["automation_runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "document_id"),
    )
    op.create_index(
        "ix_automation_run_documents_document_id", "automation_run_documents", ["document_id"]
    )


def _outcomes() -> None:
    op.create_table(
        "automation_outcomes",
        _id(),
        *_company(),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("party_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        _when("created_at"),
        sa.ForeignKeyConstraint(["run_id"], ["automation_runs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "key"),
    )
    op.create_index("ix_automation_outcomes_run", "automation_outcomes", ["run_id"])


def _jobs() -> None:
    op.create_table(
        "automation_jobs",
        _id(),
        *_company(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("cron", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        _when("run_at", True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _when("next_run_at", True),
        _when("locked_until", True),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        _when("last_run_at", True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "name"),
    )
    op.create_index("ix_automation_jobs_due", "automation_jobs", ["enabled", "next_run_at"])
    op.create_table(
        "automation_job_executions",
        _id(),
        sa.Column("job_id", sa.Integer(), nullable=False),
        _when("scheduled_for"),
        sa.Column("worker", sa.String(length=200), nullable=False),
        _when("started_at"),
        _when("finished_at", True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["automation_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "scheduled_for"),
    )


def upgrade() -> None:
    _rules()
    _runs()
    _outcomes()
    _jobs()


def downgrade() -> None:
    for index, table in (
        ("ix_automation_jobs_due", "automation_jobs"),
        ("ix_automation_outcomes_run", "automation_outcomes"),
        ("ix_automation_run_documents_document_id", "automation_run_documents"),
        ("ix_automation_runs_closing", "automation_runs"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "automation_job_executions",
        "automation_jobs",
        "automation_outcomes",
        "automation_run_documents",
        "automation_runs",
        "automation_reminder_rules",
        "automation_rules",
    ):
        op.drop_table(table)
