"""SQLite WAL checkpoints: copied by a background thread, not inside the commits that write."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from docmail.adapters.db.checkpoint import (
    FALLBACK_PAGES,
    WalCheckpointer,
    background_checkpoints,
    sqlite_path,
)
from docmail.adapters.db.engine import make_engine

BLOB = 70_000  # about one document's attachments


def write_documents(engine: Engine, count: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS kept (id INTEGER PRIMARY KEY, data BLOB)"))
    for _ in range(count):
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO kept (data) VALUES (:d)"), {"d": os.urandom(BLOB)})


def test_connections_leave_checkpoints_to_the_thread_up_to_the_fallback_mark(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == FALLBACK_PAGES
    write_documents(engine, 300)  # ~21 MB: past SQLite's default mark of 1,000 pages (16 MB)...

    wal = Path(f"{sqlite_path(engine)}-wal")
    assert wal.stat().st_size > 20_000_000  # ...yet no commit copied it back and started over
    engine.dispose()


def test_the_thread_copies_the_wal_back_while_documents_are_written(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with background_checkpoints(engine) as checkpointer:
        assert checkpointer is not None
        write_documents(engine, 60)  # ~300 pages of 16 KB
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            logged, copied = checkpointer.last
            if logged > 250 and copied == logged:
                break  # the thread copied everything the commits wrote
            time.sleep(0.05)
    assert logged > 250 and copied == logged, checkpointer.last
    size_after_copy = Path(f"{sqlite_path(engine)}-wal").stat().st_size
    write_documents(engine, 1)  # the next writer starts the WAL over: it does not grow
    assert Path(f"{sqlite_path(engine)}-wal").stat().st_size <= size_after_copy
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(length(data)) FROM kept")).one() == (
            61,
            BLOB,
        )
    engine.dispose()


def test_postgresql_and_in_memory_databases_get_no_thread(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    with background_checkpoints(engine) as checkpointer:
        assert checkpointer is None
    engine.dispose()
    memory = make_engine("sqlite://")
    with background_checkpoints(memory) as checkpointer:
        assert checkpointer is None
    memory.dispose()


def test_a_failing_checkpoint_is_logged_once_and_retried_not_once_per_tick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "not-a-database.sqlite3"
    broken.write_bytes(b"this is no SQLite file" * 100)
    checkpointer = WalCheckpointer(str(broken), interval=0.01).start()
    time.sleep(0.3)  # some thirty attempts
    checkpointer.stop()

    failures = [r for r in caplog.records if "WAL checkpoint failed" in r.getMessage()]
    assert len(failures) == 1
    assert "not a database" in failures[0].getMessage()
