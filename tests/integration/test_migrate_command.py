"""``docmail migrate`` under its lock, and ``serve``/``worker`` refusing an older schema.

Every command here runs as a real ``docmail`` process, as a deploy would start them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from docmail.adapters.db.engine import make_engine
from docmail.adapters.db.schema import current_revisions, head_revisions
from docmail.adapters.db.tables import Base
from tests.support.postgres import PostgresServer

RACERS = 3


def _env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCMAIL_")}
    return {**env, "DOCMAIL_DATA_DIR": str(data_dir), "DOCMAIL_DATABASE_URL": database_url}


def _docmail(*args: str) -> list[str]:
    return [sys.executable, "-m", "docmail", *args]


def _race_migrations(env: dict[str, str]) -> list[subprocess.CompletedProcess[str]]:
    """Start RACERS ``docmail migrate`` at the same moment and wait for all of them."""
    procs = [
        subprocess.Popen(
            _docmail("migrate"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(RACERS)
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _assert_schema_at_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revisions(engine) == head_revisions()
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def _assert_one_upgraded_the_others_waited(results: list[subprocess.CompletedProcess[str]]) -> None:
    for result in results:
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert f"revision after:  {', '.join(head_revisions())}" in result.stdout
    upgraded = [r for r in results if "revision before: none (empty database)" in r.stdout]
    assert len(upgraded) == 1, [r.stdout for r in results]
    assert sum("schema already up to date" in r.stdout for r in results) == RACERS - 1


@pytest.mark.postgres
def test_three_migrate_processes_at_once_on_a_fresh_postgres_database_all_succeed(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    results = _race_migrations(_env(tmp_path / "data", url))
    _assert_one_upgraded_the_others_waited(results)
    _assert_schema_at_head(url)


def test_three_migrate_processes_at_once_on_a_fresh_sqlite_file_all_succeed(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'docmail.sqlite3'}"
    results = _race_migrations(_env(tmp_path / "data", url))
    _assert_one_upgraded_the_others_waited(results)
    _assert_schema_at_head(url)


def test_migrate_again_prints_the_same_revision_before_and_after(tmp_path: Path) -> None:
    env = _env(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'docmail.sqlite3'}")
    subprocess.run(_docmail("migrate"), env=env, check=True, capture_output=True)
    again = subprocess.run(_docmail("migrate"), env=env, capture_output=True, text=True)
    head = ", ".join(head_revisions())
    assert again.returncode == 0, again.stderr
    assert f"revision before: {head}\nrevision after:  {head}\n" in again.stdout
    assert "schema already up to date" in again.stdout


@pytest.mark.parametrize("command", [("worker",), ("serve", "--no-worker", "--port", "0")])
def test_worker_and_serve_refuse_an_unmigrated_database_naming_docmail_migrate(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'docmail.sqlite3'}"
    result = subprocess.run(
        _docmail(*command), env=_env(tmp_path / "data", url), capture_output=True, text=True
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "none (empty database)" in result.stderr
    assert "run `docmail migrate` first (or start with --migrate)" in result.stderr
    assert "Traceback" not in result.stderr
    engine = make_engine(url)
    assert inspect(engine).get_table_names() == []  # it changed nothing
    engine.dispose()


def test_worker_refuses_a_database_at_an_older_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'docmail.sqlite3'}"
    env = _env(tmp_path / "data", url)
    subprocess.run(_docmail("migrate"), env=env, check=True, capture_output=True)
    engine = make_engine(url)
    with engine.begin() as conn:  # as if migrated by the previous docmail version
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0008'")
    engine.dispose()
    result = subprocess.run(_docmail("worker"), env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "at revision 0008, this docmail needs" in result.stderr
    assert "`docmail migrate`" in result.stderr


def test_worker_with_migrate_upgrades_an_empty_database_and_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'docmail.sqlite3'}"
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _docmail("worker", "--migrate"),
            env={**_env(tmp_path / "data", url), "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "delivering" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert "delivering" in log.read_text(), log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    _assert_schema_at_head(url)
