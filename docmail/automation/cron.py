"""Five-field cron expressions (minute hour day-of-month month day-of-week) in a time zone.

Supported: ``*``, numbers, ranges ``a-b``, lists ``a,b``, steps ``*/n`` and
``a-b/n``, month and weekday names (``jan``, ``mon``), and 7 for Sunday.
As in Vixie cron, when both day-of-month and day-of-week are restricted a day
matching either is taken.

Times are wall-clock times in the schedule's zone. Daylight saving: a time that
does not exist (spring forward) runs at the instant ``zoneinfo`` maps it to (one
hour later); a time that happens twice (fall back) runs once, at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from docmail.errors import ValidationError

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FIELDS = (  # name, low, high, names (index 0 = low)
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
SEARCH_YEARS = 5


@dataclass(frozen=True)
class CronSpec:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week


def _bad(expression: str, why: str) -> ValidationError:
    return ValidationError(
        f"cron {expression!r}: {why}; use five fields like '0 8 1 * *'",
        field="cron",
        value=expression,
    )


def _number(text: str, low: int, names: list[str] | None, expression: str) -> int:
    if names and text.lower() in names:
        return low + names.index(text.lower())
    if not text.isdigit():
        raise _bad(expression, f"{text!r} is not a number")
    return int(text)


def _field(text: str, index: int, expression: str) -> frozenset[int]:
    name, low, high, names = _FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = _number(step_text, 0, None, expression) if step_text else 1
        if step < 1:
            raise _bad(expression, f"step {step_text!r} in {name} must be at least 1")
        if body == "*":
            start, end = low, high
        else:
            first, _, last = body.partition("-")
            start = _number(first, low, names, expression)
            end = _number(last, low, names, expression) if last else start
            if step_text and not last:
                end = high
        if not low <= start <= end <= high:
            raise _bad(expression, f"{name} {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_cron(expression: str) -> CronSpec:
    """Parse a five-field cron expression; raise :class:`ValidationError` naming the problem."""
    parts = expression.split()
    if len(parts) != 5:
        raise _bad(expression, f"it has {len(parts)} fields")
    minutes, hours, days, months, weekdays = (
        _field(text, i, expression) for i, text in enumerate(parts)
    )
    return CronSpec(
        minutes,
        hours,
        days,
        months,
        frozenset(d % 7 for d in weekdays),
        days_restricted=parts[2] != "*",
        weekdays_restricted=parts[4] != "*",
    )


def parse_zone(name: str, field_name: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{field_name} {name!r} is not a known time zone such as America/Mexico_City",
            field=field_name,
            value=name,
        ) from None


def next_after(spec: CronSpec, zone: ZoneInfo, after: datetime) -> datetime:
    """The first run strictly after ``after`` (aware), in UTC.

    Raises :class:`ValidationError` when the expression never matches (e.g. 30 February).
    """
    local = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    start = local + timedelta(minutes=1)
    day = start.date()
    for _ in range(366 * SEARCH_YEARS):
        if spec.day_matches(day):
            found = _first_in_day(spec, zone, day, start, after)
            if found is not None:
                return found
        day += timedelta(days=1)
    raise ValidationError("cron expression never matches a real date", field="cron")


def _first_in_day(
    spec: CronSpec, zone: ZoneInfo, day: date, start: datetime, after: datetime
) -> datetime | None:
    for hour in sorted(spec.hours):
        for minute in sorted(spec.minutes):
            wall = datetime(day.year, day.month, day.day, hour, minute)
            if wall < start - timedelta(hours=3):  # margin: wall clocks repeat at fall back
                continue
            instant = wall.replace(tzinfo=zone).astimezone(UTC)
            if instant > after:
                return instant
    return None
