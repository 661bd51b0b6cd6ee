"""The database schema's revision: upgrading it under a lock, and checking it at start-up.

Several processes may start on a new docmail version at once (a few workers and
the server after a deploy). Alembic itself takes no lock, so two upgrades racing
on the same database both try to create the same tables. ``migrate`` therefore
holds a lock for the whole upgrade that every other ``migrate`` waits for:

* PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) on a fixed key,
  held on a connection of its own until the upgrade is committed;
* SQLite: an exclusive ``flock`` on a lock file beside the database file
  (``docmail.sqlite3.migrate-lock``), which works across processes on one machine
  — the only place a SQLite file can be shared safely anyway.

The one who waited then finds the schema at head and does nothing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from docmail.errors import ConfigurationError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# "docmail" in ASCII: one fixed key every docmail process agrees on.
ADVISORY_LOCK_KEY = 0x646F636D61696C
LOCK_FILE_SUFFIX = ".migrate-lock"
_PRIVATE_FILE = 0o600


@dataclass(frozen=True)
class SchemaRevisions:
    """The revisions a database is at before and after ``migrate``; empty = no schema yet."""

    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revisions() -> tuple[str, ...]:
    """The newest revisions this docmail knows (one, unless a feature branch is unmerged)."""
    return tuple(sorted(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()))


def current_revisions(engine: Engine) -> tuple[str, ...]:
    """The revisions recorded in the database's ``alembic_version`` (empty when unmigrated)."""
    with engine.connect() as conn:
        return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))


def describe(revisions: tuple[str, ...]) -> str:
    return ", ".join(revisions) if revisions else "none (empty database)"


def sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite database, or None for PostgreSQL and in-memory databases."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Hold the installation-wide migration lock (waiting for it) while the block runs."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        return
    path = sqlite_file(engine)
    if path is None:  # in memory: only this process sees it
        yield
        return
    lock_path = path.with_name(path.name + LOCK_FILE_SUFFIX)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, _PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor is closed
        yield
    finally:
        os.close(fd)


def migrate(engine: Engine) -> SchemaRevisions:
    """Bring the schema to the newest revisions under the migration lock (idempotent).

    "heads": features may add migrations on branches of their own from one base.
    """
    with schema_lock(engine):
        before = current_revisions(engine)
        if before != head_revisions():
            command.upgrade(alembic_config(engine), "heads")
        return SchemaRevisions(before, current_revisions(engine))


def require_current(engine: Engine) -> None:
    """Refuse to run on a schema that is not this docmail's newest (unmigrated, older, newer)."""
    current, heads = current_revisions(engine), head_revisions()
    if current == heads:
        return
    known = {rev.revision for rev in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}
    if current and not set(current) <= known:
        raise ConfigurationError(
            f"the database schema is at revision {describe(current)}, newer than this docmail "
            f"knows ({describe(heads)}); run the docmail version that migrated it",
            field="DOCMAIL_DATABASE_URL",
        )
    raise ConfigurationError(
        f"the database schema is at revision {describe(current)}, this docmail needs "
        f"{describe(heads)}; run `docmail migrate` first (or start with --migrate)",
        field="DOCMAIL_DATABASE_URL",
    )
