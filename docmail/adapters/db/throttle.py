"""Sign-in attempts counted in the database (table ``login_throttle``), atomically.

Every server process shares the counts, a restart keeps them, and concurrent
attempts cannot all read the same old count: each one is an
``INSERT ... ON CONFLICT (key) DO UPDATE SET failures = failures + 1`` that returns
the new count, in a short transaction of its own, *before* any password is checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, case, delete, update
from sqlalchemy.dialects import postgresql, sqlite

from docmail.adapters.db.base import table_of
from docmail.adapters.db.engine import write_transaction
from docmail.adapters.db.identity import LoginThrottle

_TABLE = table_of(LoginThrottle)


def count_attempt(
    engine: Engine, keys: Iterable[str], now: datetime, window_start: datetime
) -> dict[str, int]:
    """Add one attempt to each key and return each key's count in its current window.

    A key whose window began before ``window_start`` starts a new window at ``now``
    with this attempt as its first. Keys are taken in sorted order, so two
    transactions never wait for each other's rows in opposite orders (PostgreSQL).
    When a window starts, rows whose window is over are deleted on the way.
    """
    insert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
    counts: dict[str, int] = {}
    with write_transaction(engine) as conn:
        for key in sorted(set(keys)):
            stmt = insert(_TABLE).values(key=key, failures=1, window_started_at=now)
            expired = _TABLE.c.window_started_at < window_start
            stmt = stmt.on_conflict_do_update(
                index_elements=[_TABLE.c.key],
                set_={
                    "failures": case((expired, 1), else_=_TABLE.c.failures + 1),
                    "window_started_at": case(
                        (expired, stmt.excluded.window_started_at),
                        else_=_TABLE.c.window_started_at,
                    ),
                },
            )
            counts[key] = conn.execute(stmt.returning(_TABLE.c.failures)).scalar_one()
        if 1 in counts.values():  # a new window: a cheap moment to forget old ones
            conn.execute(delete(_TABLE).where(_TABLE.c.window_started_at < window_start))
    return counts


def forget(engine: Engine, key: str) -> None:
    """Drop a key's count (after a successful sign-in for that address)."""
    with write_transaction(engine) as conn:
        conn.execute(delete(_TABLE).where(_TABLE.c.key == key))


def take_back(engine: Engine, key: str) -> None:
    """Remove one attempt from a key: a successful sign-in does not count as a failure."""
    with write_transaction(engine) as conn:
        conn.execute(
            update(_TABLE)
            .where(_TABLE.c.key == key, _TABLE.c.failures > 0)
            .values(failures=_TABLE.c.failures - 1)
        )


def prune(engine: Engine, window_start: datetime) -> int:
    """Delete the rows whose window began before ``window_start``; return how many."""
    with write_transaction(engine) as conn:
        return conn.execute(
            delete(_TABLE).where(_TABLE.c.window_started_at < window_start)
        ).rowcount
