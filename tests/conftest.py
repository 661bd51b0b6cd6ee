"""Shared fixtures: real databases (SQLite file and PostgreSQL), a runtime, an API client."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import text

from docmail.adapters.db.engine import make_engine
from docmail.adapters.db.schema import migrate
from docmail.adapters.db.tables import Base
from tests.support.postgres import PostgresServer, find_postgres

# Property tests: reproducible (derandomize), bounded, and no .hypothesis directory in the
# checkout (Hypothesis caches Unicode tables and constants even without an example database).
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir(), "hypothesis"))
)
settings.register_profile(
    "ci",
    database=None,
    derandomize=True,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_PG_STATE: dict[str, object] = {}


def pytest_report_header(config: pytest.Config) -> str:
    return "docmail: PostgreSQL tests run against a real server (see tests/support/postgres.py)"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server, how = find_postgres()
    _PG_STATE["how"] = how
    if server is None:
        if os.environ.get("DOCMAIL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required (DOCMAIL_REQUIRE_POSTGRES=1) but: {how}")
        _PG_STATE["skipped"] = True
        pytest.skip(f"!!! PostgreSQL tests SKIPPED: {how} !!!")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    url = postgres_server.create_database()
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    raw = engine.raw_connection()  # outside any transaction: checkpoints need that
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    engine.dispose()
    return path


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the PostgreSQL test database."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "docmail.sqlite3"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_all(url)
    return url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _PG_STATE.get("skipped"):
        terminalreporter.section("POSTGRESQL TESTS SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.line(f"PostgreSQL tests did not run: {_PG_STATE.get('how')}", red=True)
    elif "how" in _PG_STATE:
        terminalreporter.line(f"docmail: PostgreSQL tests ran against {_PG_STATE['how']}")


@pytest.fixture(autouse=True)
def _dispose_runtimes() -> Iterator[None]:
    yield
    from tests.support.app import dispose_all
    from tests.support.outbox import kill_leftover_workers

    kill_leftover_workers()
    dispose_all()


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[object]:
    """A runtime on a real, migrated database (SQLite file or PostgreSQL)."""
    from tests.support.app import make_runtime

    rt = make_runtime(database_url, tmp_path / "data")
    yield rt
    rt.engine.dispose()


# Real SMTP servers on 127.0.0.1 (aiosmtpd): tls_ca, smtp_server, smtp_server_ssl, smtp_server_plain
from tests.support.smtp_server import (  # noqa: E402, F401
    smtp_server,
    smtp_server_plain,
    smtp_server_ssl,
    tls_ca,
)
