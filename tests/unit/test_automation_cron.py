"""Cron expressions: parsing, next runs in a time zone, daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from docmail.automation.cron import next_after, parse_cron, parse_zone
from docmail.errors import ValidationError

MX = ZoneInfo("America/Mexico_City")


def test_monthly_at_eight_in_mexico_city_is_fourteen_utc() -> None:
    spec = parse_cron("0 8 1 * *")
    after = datetime(2026, 11, 15, tzinfo=UTC)
    assert next_after(spec, MX, after) == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_the_next_run_is_strictly_after_the_given_time() -> None:
    spec = parse_cron("*/15 * * * *")
    after = datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert next_after(spec, ZoneInfo("UTC"), after) == datetime(2026, 1, 1, 10, 30, tzinfo=UTC)


def test_day_of_month_or_day_of_week_when_both_are_given() -> None:
    spec = parse_cron("0 9 13 * fri")  # the 13th, or any Friday
    after = datetime(2026, 2, 1, tzinfo=UTC)  # a Sunday
    assert next_after(spec, ZoneInfo("UTC"), after) == datetime(2026, 2, 6, 9, tzinfo=UTC)


def test_weekday_ranges_and_sunday_as_seven() -> None:
    spec = parse_cron("30 6 * * 1-5")
    assert next_after(spec, ZoneInfo("UTC"), datetime(2026, 2, 7, tzinfo=UTC)).day == 9
    assert parse_cron("0 0 * * 7").weekdays == frozenset({0})


def test_a_time_skipped_by_daylight_saving_runs_an_hour_later_and_a_repeated_one_once() -> None:
    ny = ZoneInfo("America/New_York")
    spring = next_after(parse_cron("30 2 * * *"), ny, datetime(2026, 3, 8, 5, tzinfo=UTC))
    assert spring == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
    spec = parse_cron("30 1 * * *")
    first = next_after(spec, ny, datetime(2026, 11, 1, 4, tzinfo=UTC))
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert next_after(spec, ny, first) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["0 8 1 *", "61 * * * *", "* * 0 * *", "a * * * *", "*/0 * * * *"])
def test_bad_expressions_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_cron(bad)
    assert caught.value.field == "cron"


def test_an_expression_that_never_matches_is_refused() -> None:
    with pytest.raises(ValidationError):
        next_after(parse_cron("0 0 30 2 *"), ZoneInfo("UTC"), datetime(2026, 1, 1, tzinfo=UTC))


def test_unknown_time_zones_are_refused() -> None:
    with pytest.raises(ValidationError):
        parse_zone("Mars/Olympus")
