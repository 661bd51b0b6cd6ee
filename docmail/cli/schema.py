"""``docmail migrate``: upgrade the database schema, once, whoever else runs it at the same time."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from docmail.adapters.db.engine import make_engine, make_private
from docmail.adapters.db.schema import describe, migrate
from docmail.cli.common import cli, echo_flush
from docmail.config import Settings


@cli.command("migrate")
def migrate_command() -> None:
    """Upgrade the database schema to this docmail's newest revision, then exit.

    Run it once per deploy, before starting `docmail serve` and `docmail worker`
    (which refuse an older schema unless given --migrate). Safe to run from
    several places at once: each waits for the migration lock (a PostgreSQL
    advisory lock, or a lock file beside the SQLite file), and whoever comes
    second finds the schema up to date. Prints the revision before and after.
    """
    settings = Settings.from_env()
    make_private(settings.data_dir)  # where a SQLite file is created
    url = settings.resolved_database_url
    echo_flush(f"database: {make_url(url).render_as_string(hide_password=True)}")
    engine = make_engine(url)
    try:
        revisions = migrate(engine)
    finally:
        engine.dispose()
    echo_flush(f"revision before: {describe(revisions.before)}")
    echo_flush(f"revision after:  {describe(revisions.after)}")
    echo_flush("schema upgraded" if revisions.changed else "schema already up to date")
