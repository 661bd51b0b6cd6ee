"""The Alembic migrations and the table mappings describe the same schema, on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from docmail.adapters.db.engine import make_engine
from docmail.adapters.db.schema import migrate
from docmail.adapters.db.tables import Base


def test_migrated_schema_matches_the_table_mappings(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_migrating_twice_is_harmless(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)
    assert "messages" in inspect(engine).get_table_names()
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'wal.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_a_new_sqlite_database_gets_16_kb_pages_and_an_existing_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    new = make_engine(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    migrate(new)
    with new.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 16384
    new.dispose()

    old_path = tmp_path / "old.sqlite3"
    with sqlite3.connect(old_path) as raw:  # made by an earlier docmail: 4 KB pages
        raw.execute("PRAGMA page_size=4096")
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("CREATE TABLE kept (id INTEGER PRIMARY KEY, data BLOB)")
        raw.execute("INSERT INTO kept (data) VALUES (?)", (b"x" * 70_000,))
    raw.close()
    old = make_engine(f"sqlite:///{old_path}")
    with old.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        assert conn.exec_driver_sql("SELECT length(data) FROM kept").scalar() == 70_000
    old.dispose()
