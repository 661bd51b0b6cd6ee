"""Claims held by workers: renewed while their worker lives, released when it is gone.

A claim (a message in ``sending``, a batch being expanded) carries a lease and
its worker's name. The lease is the safety net; the heartbeat is the fast path:

* a live worker renews the leases of the messages it holds (one may be on the
  wire for minutes with a slow server): no other worker takes them over;
* a worker whose heartbeat is stale (``worker_heartbeats.last_seen``) is gone:
  its messages' leases are expired and its batches released at once, so any
  worker takes them over within seconds instead of when the lease runs out.
  Its heartbeat row is deleted then, so it is looked at once.

Workers that never write heartbeats (``send --wait``, tests driving a worker by
hand) are not released this way; their leases still expire.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from docmail.adapters.db import tables as t
from docmail.adapters.db.engine import write_transaction
from docmail.domain.outbox import MessageState


def renew(
    engine: Engine, worker: str, message_ids: Collection[int], lease: timedelta, now: datetime
) -> int:
    """Extend the leases of ``worker``'s messages that are past half their lease; how many."""
    if not message_ids:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            update(t.Message)
            .where(
                t.Message.id.in_(list(message_ids)),
                t.Message.locked_by == worker,
                t.Message.state == MessageState.SENDING.value,
                t.Message.locked_until < now + lease / 2,
            )
            .values(locked_until=now + lease)
        )
        return int(result.rowcount)


def stale_workers(engine: Engine, stale_before: datetime) -> list[str]:
    """Workers whose last heartbeat is older than ``stale_before`` (a read, no write lock)."""
    with engine.connect() as conn:
        conn.info["sqlite_begin_mode"] = "DEFERRED"
        names = conn.scalars(
            select(t.WorkerHeartbeat.name).where(t.WorkerHeartbeat.last_seen < stale_before)
        ).all()
        conn.rollback()
    return list(names)


def release_stale(engine: Engine, stale_before: datetime) -> dict[str, int]:
    """Release the claims of every worker whose heartbeat is stale; counts of what was freed.

    Messages keep ``sending`` with an expired lease, so the next claim records
    their attempt as abandoned (the outcome is unknown) and sends them again.
    """
    names = stale_workers(engine, stale_before)
    if not names:
        return {}
    with write_transaction(engine) as conn:
        # Re-checked under the write lock: a worker that beat meanwhile keeps its claims.
        names = list(
            conn.scalars(
                select(t.WorkerHeartbeat.name).where(
                    t.WorkerHeartbeat.name.in_(names), t.WorkerHeartbeat.last_seen < stale_before
                )
            )
        )
        messages = conn.execute(
            update(t.Message)
            .where(
                t.Message.state == MessageState.SENDING.value,
                t.Message.locked_by.in_(names),
                t.Message.locked_until >= stale_before,
            )
            .values(locked_until=stale_before)
        )
        batches = conn.execute(
            update(t.Batch)
            .where(t.Batch.locked_by.in_(names))
            .values(locked_until=None, locked_by=None)
        )
        conn.execute(delete(t.WorkerHeartbeat).where(t.WorkerHeartbeat.name.in_(names)))
    return {
        "workers": len(names),
        "messages": int(messages.rowcount),
        "batches": int(batches.rowcount),
    }
