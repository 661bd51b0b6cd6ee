"""Wake-ups over PostgreSQL LISTEN/NOTIFY, so idle workers start within milliseconds.

Queueing a message runs ``NOTIFY docmail_outbox`` in the same transaction;
this thread LISTENs on its own connection and wakes the process's workers.
SQLite has no such channel: workers there poll every few hundred milliseconds.
Losing the connection is harmless (workers keep polling); it reconnects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from docmail.adapters.db.outbox_store import NOTIFY_CHANNEL
from docmail.extras import require

log = logging.getLogger("docmail.worker.listener")


def _conninfo(engine: Engine) -> str:
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class NotifyListener:
    """A daemon thread calling ``on_notify`` for every NOTIFY on the outbox channel."""

    def __init__(self, engine: Engine, on_notify: Callable[[], None]) -> None:
        # Only a PostgreSQL engine gets here, and it already needed the [postgres] extra.
        self._psycopg = require("postgres", "PostgreSQL")
        self._conninfo = _conninfo(engine)
        self._on_notify = on_notify
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="docmail-listen", daemon=True)

    def start(self) -> NotifyListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except self._psycopg.Error as exc:
                log.warning("LISTEN connection lost (%s); workers keep polling", exc)
                self._stop.wait(2.0)

    def _listen(self) -> None:
        with self._psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    self._on_notify()


def listen_if_postgres(engine: Engine, on_notify: Callable[[], None]) -> NotifyListener | None:
    if engine.dialect.name != "postgresql":
        return None
    return NotifyListener(engine, on_notify).start()
