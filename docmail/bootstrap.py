"""The composition root: the one place where adapters are chosen and wired together."""

from __future__ import annotations

import gc

from docmail.adapters.db.engine import make_engine, make_private, make_session_factory
from docmail.adapters.db.schema import migrate, require_current
from docmail.adapters.secrets import SecretBox, load_or_create_keys
from docmail.config import Settings
from docmail.services.accounts import ses_transport_for, smtp_transport_for
from docmail.services.oauth import oauth_transport_for
from docmail.services.runtime import AccountTransportFactory, Runtime
from docmail.templates.engine import TemplateEngine


def build_runtime(
    settings: Settings,
    *,
    transports: dict[str, AccountTransportFactory] | None = None,
    run_migrations: bool = True,
    require_schema: bool = False,
) -> Runtime:
    """Wire the runtime. ``run_migrations`` upgrades the schema (under the migration lock);
    ``require_schema`` instead refuses a schema that is not at this docmail's head."""
    make_private(settings.data_dir)  # the database and the key file live here
    engine = make_engine(settings.resolved_database_url)
    try:
        if run_migrations:
            migrate(engine)
        elif require_schema:
            require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    keys = load_or_create_keys(settings.secret_keys, settings.key_file)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        secrets=SecretBox(keys),
        templates=TemplateEngine(
            timeout_seconds=settings.render_timeout_seconds,
            max_output_bytes=settings.render_max_output_bytes,
        ),
        transports=transports or default_transports(),
    )


def default_transports() -> dict[str, AccountTransportFactory]:
    """Every account kind this installation can send with."""
    return {
        "smtp": smtp_transport_for,
        "gmail": oauth_transport_for,  # SMTP + XOAUTH2
        "microsoft": oauth_transport_for,  # SMTP + XOAUTH2
        "ses": ses_transport_for,  # Amazon SES v2 API
    }


def settle_after_startup() -> None:
    """Keep what a long-running process loaded at start-up out of the collector's way.

    Modules, the database metadata, the template sandbox and Babel's locale data
    (~150,000 objects) live as long as the process; each full garbage collection
    walked them all again, ~50 ms a time and a few times per thousand documents
    stored. Frozen, a collection only walks what requests and deliveries made.
    ``docmail serve`` and ``docmail worker`` call this once they are set up.
    """
    gc.collect()
    gc.freeze()
