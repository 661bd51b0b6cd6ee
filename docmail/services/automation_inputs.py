"""Validated input for automation: rules, runs, reminder rules, jobs, statements."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from docmail.automation.cron import parse_cron, parse_zone
from docmail.automation.policy import TRIGGERS
from docmail.errors import DocmailError
from docmail.services.inputs import DbId, Strict, not_null

Trigger = Literal["created", "issued", "stamped", "cancelled"]
PolicyName = Literal["all", "only_multiple"]
JobKind = Literal["send", "statements", "reminders"]
RUN_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
assert set(TRIGGERS) == {"created", "issued", "stamped", "cancelled"}


def _value_error(check: Any, value: Any) -> Any:
    try:
        check(value)
    except DocmailError as exc:  # pydantic reports ValueErrors with the field's path
        raise ValueError(exc.message) from None
    return value


class RuleIn(Strict):
    """An auto-send rule. ``subject``/``body_html``/``body_text``: optional template overrides."""

    doc_type: str = Field(min_length=1, max_length=40)
    trigger: Trigger = "created"
    enabled: bool = True
    policy: PolicyName = "all"
    delay_seconds: int = Field(default=0, ge=0, le=30 * 86_400)
    subject: str | None = Field(default=None, min_length=1, max_length=2000)
    body_html: str | None = Field(default=None, max_length=200_000)
    body_text: str | None = Field(default=None, max_length=200_000)


class RulePatch(Strict):
    enabled: bool | None = None
    policy: PolicyName | None = None
    delay_seconds: int | None = Field(default=None, ge=0, le=30 * 86_400)
    subject: str | None = Field(default=None, min_length=1, max_length=2000)
    body_html: str | None = Field(default=None, max_length=200_000)
    body_text: str | None = Field(default=None, max_length=200_000)

    _set = field_validator("enabled", "policy", "delay_seconds")(not_null)


class RunIn(Strict):
    """Open (or configure) a run; it closes by itself ``quiet_seconds`` after its last document."""

    name: str = Field(min_length=1, max_length=100, pattern=RUN_NAME)
    quiet_seconds: int | None = Field(default=None, ge=1, le=30 * 86_400)


class CloseIn(Strict):
    dry_run: bool = False


class DryRunIn(Strict):
    document_ids: list[DbId] = Field(min_length=1, max_length=10_000)


class ReminderRuleIn(Strict):
    doc_type: str = Field(default="invoice", min_length=1, max_length=40)
    offset_days: int = Field(ge=-365, le=365)
    enabled: bool = True


class RemindersRunIn(Strict):
    now: datetime | None = None  # default: the server's clock
    timezone: str = "UTC"
    dry_run: bool = False

    _zone = field_validator("timezone")(lambda v: _value_error(parse_zone, v))

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("now must carry a time zone offset, e.g. 2026-11-03T08:00:00Z")
        return value


class StatementsIn(Strict):
    as_of: date
    party_codes: list[str] | None = Field(default=None, max_length=10_000)
    dry_run: bool = False


class JobIn(Strict):
    """A scheduled job: ``run_at`` once, or ``cron`` (five fields) in ``timezone``.

    ``params``: for ``send`` ``{"document_ids": [...], "mode": "per_document"}``; for
    ``statements`` ``{"party_codes": [...]}`` (optional); ``reminders`` takes none.
    """

    name: str = Field(min_length=1, max_length=200)
    kind: JobKind
    cron: str | None = Field(default=None, max_length=100)
    timezone: str = "UTC"
    run_at: datetime | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    _cron = field_validator("cron")(lambda v: v if v is None else _value_error(parse_cron, v))
    _zone = field_validator("timezone")(lambda v: _value_error(parse_zone, v))

    @model_validator(mode="after")
    def _when(self) -> JobIn:
        if (self.cron is None) == (self.run_at is None):
            raise ValueError("give either cron (recurring) or run_at (once)")
        if self.run_at is not None and self.run_at.tzinfo is None:
            raise ValueError("run_at must carry a time zone offset")
        if self.kind == "send" and not self.params.get("document_ids"):
            raise ValueError("a send job needs params.document_ids")
        return self


class JobPatch(Strict):
    enabled: bool | None = None
    cron: str | None = Field(default=None, max_length=100)
    timezone: str | None = None
    params: dict[str, Any] | None = None

    _cron = field_validator("cron")(lambda v: v if v is None else _value_error(parse_cron, v))
    _zone = field_validator("timezone")(lambda v: v if v is None else _value_error(parse_zone, v))
    _set = field_validator("enabled", "timezone", "params")(not_null)
