"""SQLite WAL checkpoints in a background thread, not inside whichever commit crosses the line.

In WAL mode every commit appends pages to the ``-wal`` file, and those pages are
copied back into the database file by a checkpoint. By default SQLite runs one
inside the commit that makes the WAL pass 1,000 pages: with each document
carrying ~70 KB of attachments that is every ~200 documents, and that commit
(an API request, or the worker's record of a sent message while the SMTP server
waits) then also copies 16 MB and syncs the file. The long-running processes
(``docmail serve`` and ``docmail worker``) instead checkpoint from a thread of
their own; SQLite releases the GIL while it copies, so this runs beside the
requests. Connections keep an automatic checkpoint at a higher mark
(:data:`FALLBACK_PAGES`), so a process without this thread (a CLI import, a
test) still bounds the WAL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

log = logging.getLogger("docmail.db")

# The commit-time checkpoint of every connection: 4,096 pages of 16 KB (64 MB).
FALLBACK_PAGES = 4096
# How often the thread looks; a checkpoint with nothing to copy costs microseconds.
INTERVAL_SECONDS = 0.1


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection every ``interval``.

    PASSIVE never waits for readers or writers: it copies what it can and lets
    the next writer start the WAL over once everything was copied.
    """

    def __init__(self, path: str, interval: float = INTERVAL_SECONDS) -> None:
        self.path = path
        self.interval = interval
        # (pages in the WAL, pages of it copied) after the last checkpoint; equal when done
        self.last: tuple[int, int] = (0, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """One PASSIVE checkpoint: (pages in the WAL, pages of it now in the database)."""
        busy, logged, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and logged >= 0:  # else another process checkpoints, or not in WAL mode
            self.last = (int(logged), int(copied))
        return self.last

    def start(self) -> WalCheckpointer:
        self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        try:
            failing = ""  # said once, not ten times a second (e.g. while the disk is full)
            while not self._stop.wait(self.interval):
                try:
                    self.run_once(conn)
                except sqlite3.Error as exc:  # commits report it to callers; retry later
                    if str(exc) != failing:
                        log.warning("WAL checkpoint failed (will retry): %s", exc)
                    failing = str(exc)
                else:
                    if failing:
                        log.info("WAL checkpoints work again")
                    failing = ""
        finally:
            conn.close()


def sqlite_path(engine: Engine) -> str | None:
    """The file behind a SQLite engine (None for PostgreSQL or an in-memory database)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    return database if database and database != ":memory:" else None


@contextmanager
def background_checkpoints(engine: Engine) -> Iterator[WalCheckpointer | None]:
    """Checkpoint ``engine``'s SQLite file from a thread while the block runs."""
    path = sqlite_path(engine)
    if path is None:
        yield None
        return
    checkpointer = WalCheckpointer(path).start()
    try:
        yield checkpointer
    finally:
        checkpointer.stop()
