"""Creating engines and sessions, and bringing the schema up to date with Alembic."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from docmail.adapters.db.checkpoint import FALLBACK_PAGES
from docmail.errors import ConfigurationError
from docmail.extras import require

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_PAGE_SIZE = 16_384
SQLITE_FULL = 13
POSTGRES_DISK_FULL = "53100"


def _configure_sqlite(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # WAL lets the API read while the worker writes; busy_timeout makes writers wait
    # for each other instead of failing with "database is locked".
    cursor = dbapi_conn.cursor()
    # A new database gets 16 KB pages: each document keeps its PDF and XML (tens of
    # KB) as blobs, and fewer, larger overflow pages make storing them ~17% cheaper
    # (bench/throughput.py; 32 and 64 KB were slower). No effect on an existing file.
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Serve and worker checkpoint from a thread (checkpoint.py); this is the fallback.
    cursor.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's own transaction handling is off (see isolation_level=None below);
    # we emit BEGIN ourselves. IMMEDIATE takes the write lock at the start, waiting
    # for it under busy_timeout: a DEFERRED transaction that reads and then writes
    # while another connection wrote meanwhile fails at once with "database is
    # locked" (WAL snapshots cannot be upgraded), whatever the timeout.
    mode = conn.info.pop("sqlite_begin_mode", "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_private(directory: Path) -> None:
    """Create ``directory`` (and missing parents) readable by this user only.

    An existing directory keeps its mode: it may be shared on purpose (``/var/lib``).
    """
    if not directory.exists():
        directory.mkdir(parents=True, mode=PRIVATE_DIR, exist_ok=True)
        directory.chmod(PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def private_sqlite_file(path: Path) -> None:
    """Make the database file, and any -wal/-shm beside it, readable by this user only.

    SQLite creates -wal and -shm with the main file's mode, so creating the main
    file 0600 before SQLite opens it covers them; files left by an older docmail
    (0644) are narrowed here too.
    """
    make_private(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.chmod(PRIVATE_FILE)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL, a busy timeout and explicit BEGINs.

    A SQLite file (and its -wal/-shm) is made readable by this user only.
    """
    if url.startswith("sqlite"):
        # "sqlite://" and "sqlite:///:memory:" are in memory: no file to make private.
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            private_sqlite_file(Path(path))
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "isolation_level": None},
            **kwargs,
        )
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+psycopg"):
        require("postgres", "a PostgreSQL database", field="DOCMAIL_DATABASE_URL")
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:  # bad URL or missing driver: say which setting to fix
        raise ConfigurationError(
            f"cannot use DOCMAIL_DATABASE_URL: {exc}", field="DOCMAIL_DATABASE_URL"
        ) from exc
    event.listen(engine, "checkout", _pinger(engine))
    return engine


# Set by without_ping() for checkouts whose statement is retried on a dead connection.
_SKIP_PING: ContextVar[bool] = ContextVar("docmail_skip_ping", default=False)


def _pinger(engine: Engine) -> Callable[[Any, Any, Any], None]:
    """Ping each pooled connection as it is checked out (SQLAlchemy's pre-ping, but skippable).

    After a database restart the pool holds dead connections; the ping finds one
    and the pool replaces it before the caller's statement runs.
    """
    driver_error = engine.dialect.loaded_dbapi.Error

    def ping(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if _SKIP_PING.get():
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except driver_error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise DisconnectionError(f"pooled connection is dead: {exc}") from exc
            raise

    return ping


@contextmanager
def without_ping() -> Iterator[None]:
    """Check out pooled connections without the ping in this block (this thread only).

    A ping is a round trip per checkout: the worker's record of each sent message
    skips it and, if the connection turns out dead, runs its statement again on a
    fresh one (see ``outbox_store.mark_sent``). Only for statements safe to repeat.
    """
    token = _SKIP_PING.set(True)
    try:
        yield
    finally:
        _SKIP_PING.reset(token)


def is_storage_full(exc: BaseException) -> bool:
    """True when the database could not write because its disk is full (SQLite or PostgreSQL)."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.Error):
        return getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL or "disk is full" in str(orig)
    if getattr(orig, "sqlstate", None) == POSTGRES_DISK_FULL:
        return True
    return isinstance(orig, OSError) and orig.errno == errno.ENOSPC


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A Core transaction that holds the write lock from its first statement.

    On SQLite this is ``BEGIN IMMEDIATE``: two workers claiming messages are
    serialised instead of both reading the same rows. On PostgreSQL it is an
    ordinary transaction; claims there rely on ``FOR UPDATE SKIP LOCKED``.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.info["sqlite_begin_mode"] = "IMMEDIATE"
        with conn.begin():
            yield conn
