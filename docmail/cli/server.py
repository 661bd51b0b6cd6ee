"""``docmail serve`` and ``docmail worker``: the long-running processes."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click
from sqlalchemy import select

from docmail import __version__
from docmail.adapters.db import tables as t
from docmail.adapters.db.checkpoint import background_checkpoints
from docmail.adapters.secrets import RedactQuerySecrets
from docmail.bootstrap import settle_after_startup
from docmail.cli.common import cli, echo_flush, open_runtime
from docmail.config import LOOPBACK
from docmail.demo import (
    DEMO_PASSWORD,
    DEMO_TOKEN_FILE,
    DEMO_USER,
    DemoInfo,
    load_demo,
)
from docmail.errors import (
    ConfigurationError,
)
from docmail.services.runtime import Runtime

log = logging.getLogger("docmail.cli")

MIGRATE_OPTION = click.option(
    "--migrate",
    is_flag=True,
    help="Upgrade the database schema first (under the lock `docmail migrate` takes) "
    "instead of refusing to start on an older one.",
)


# ---------------------------------------------------------------- serve and worker


class Shutdown:
    """Records SIGINT/SIGTERM and asks a running uvicorn server to exit."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.server: Any = None
        self._previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested.set()
        if self.server is not None:
            self.server.should_exit = True

    @contextmanager
    def installed(self) -> Iterator[Shutdown]:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.handle)
        try:
            yield self
        finally:
            for number, handler in self._previous.items():
                signal.signal(number, handler)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line


def _start_workers(runtime: Runtime, count: int) -> Any:
    from docmail.worker.pool import WorkerPool

    return WorkerPool(runtime, count).start()


def _stop_workers(pool: Any, timeout: float = 15.0) -> None:
    pool.stop(timeout)


def _store_caught(runtime: Runtime) -> Callable[[Any], None]:
    def on_message(envelope: Any) -> None:
        with runtime.session() as session:
            # Whose message it is, by its Message-ID: a company sees only its own caught
            # mail; one no outbox sent (a stranger on the port) belongs to nobody.
            company_id = (
                session.scalar(
                    select(t.Message.company_id).where(
                        t.Message.message_id_header == envelope.message_id
                    )
                )
                if envelope.message_id
                else None
            )
            session.add(
                t.CaughtMessage(
                    mail_from=envelope.mail_from,
                    rcpt_to=list(envelope.rcpt_to),
                    subject=envelope.subject,
                    raw=envelope.raw,
                    company_id=company_id,
                )
            )
        log.info("caught a message for %s: %s", ", ".join(envelope.rcpt_to), envelope.subject)

    return on_message


def _allow_loopback(runtime: Runtime) -> None:
    """The demo's accounts send to its catcher on 127.0.0.1, which the outbound policy
    otherwise refuses (docmail/adapters/outbound.py)."""
    allowed = runtime.settings.outbound_allow
    runtime.settings = runtime.settings.with_overrides(
        outbound_allow=allowed + tuple(n for n in LOOPBACK if n not in allowed)
    )


def _start_catcher(runtime: Runtime, port: int) -> Any:
    from docmail.adapters.smtp.catcher import MailCatcher

    catcher = MailCatcher(_store_caught(runtime), host="127.0.0.1", port=port)
    try:
        catcher.start()
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot start the mail catcher on 127.0.0.1:{port}: {exc}", field="catcher-port"
        ) from exc
    return catcher


def _print_banner(
    runtime: Runtime, host: str, port: int, demo: DemoInfo | None, catcher_port: int | None
) -> None:
    base = f"http://{host}:{port}"
    echo_flush(f"docmail {__version__} on {base}")
    echo_flush(f"  web app:       {base}/")
    echo_flush(f"  API docs:      {base}/docs")
    if demo is not None:
        echo_flush(f"  sign in:       {DEMO_USER} / {DEMO_PASSWORD}")
        token_file = runtime.settings.data_dir / DEMO_TOKEN_FILE
        echo_flush(f"  API token:     {demo.token}")
        echo_flush(f"                 (saved in {token_file})")
        echo_flush(f"  mail catcher:  smtp://127.0.0.1:{catcher_port} (accepts everything)")
        echo_flush(f"  caught mail:   GET {base}/api/v1/catcher/messages")
        echo_flush(
            f'  try:           curl -H "Authorization: Bearer {demo.token}" {base}/api/v1/documents'
        )


def uvicorn_config(app: Any, host: str, port: int, forwarded_allow_ips: tuple[str, ...]) -> Any:
    """uvicorn's settings for docmail: X-Forwarded-For/-Proto believed from the listed
    proxies only, and from nobody when none is listed (uvicorn's own default would
    believe 127.0.0.1, so a local proxy-less client could forge its address)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=list(forwarded_allow_ips),
    )


def _run_uvicorn(
    runtime: Runtime, host: str, port: int, shutdown: Shutdown, proxies: tuple[str, ...]
) -> None:
    import uvicorn

    from docmail.http.app import create_app

    config = uvicorn_config(create_app(runtime), host, port, proxies)
    # uvicorn's access log has its own handler: keep OAuth codes out of it.
    logging.getLogger("uvicorn.access").addFilter(RedactQuerySecrets())
    server = uvicorn.Server(config)
    shutdown.server = server
    if not shutdown.requested.is_set():
        server.run()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load demo data and start a local mail catcher.")
@click.option("--no-worker", is_flag=True, help="Do not deliver mail in this process.")
@MIGRATE_OPTION
@click.option(
    "--catcher-port",
    default=2525,
    show_default=True,
    type=int,
    help="Port of the demo mail catcher (127.0.0.1 only).",
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    help="Comma-separated addresses of the reverse proxies whose X-Forwarded-For and "
    "X-Forwarded-Proto to believe (default DOCMAIL_FORWARDED_ALLOW_IPS, else none).",
)
def serve(
    host: str,
    port: int,
    demo: bool,
    no_worker: bool,
    catcher_port: int,
    forwarded_allow_ips: str | None,
    migrate: bool,
) -> None:
    """Run the HTTP API (and, unless --no-worker, a delivery worker) in this process.

    With --demo, a mail catcher listens on 127.0.0.1:CATCHER-PORT and stores every
    message it receives (see GET /api/v1/catcher/messages); demo data is loaded
    once and its API token is kept in DATA_DIR/demo-token.txt. Ctrl-C or SIGTERM
    stops the server, the worker and the catcher gracefully.

    The database schema must be up to date (`docmail migrate`) unless --migrate or
    --demo is given: then this process upgrades it under the migration lock.
    """
    _configure_logging()
    catcher: Any = None
    workers: Any = None
    with (
        Shutdown().installed() as shutdown,
        open_runtime(migrate=migrate or demo) as runtime,
        background_checkpoints(runtime.engine),
    ):
        try:
            info = None
            if demo:
                _allow_loopback(runtime)
                catcher = _start_catcher(runtime, catcher_port)
                info = load_demo(runtime, catcher_port=catcher.port)
            if not no_worker:
                workers = _start_workers(runtime, 1)
            _print_banner(runtime, host, port, info, catcher.port if catcher else None)
            settle_after_startup()
            proxies = runtime.settings.forwarded_allow_ips
            if forwarded_allow_ips is not None:
                proxies = tuple(p.strip() for p in forwarded_allow_ips.split(",") if p.strip())
            _run_uvicorn(runtime, host, port, shutdown, proxies)
        finally:
            if workers is not None:
                _stop_workers(workers)
            if catcher is not None:
                catcher.stop()
    echo_flush("docmail stopped")


@cli.command()
@click.option(
    "--concurrency",
    "-c",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Number of delivery threads.",
)
@MIGRATE_OPTION
def worker(concurrency: int, migrate: bool) -> None:
    """Deliver queued messages until SIGTERM or Ctrl-C (then finish the current one).

    Run as many worker processes as you like, on any machine, against the same
    DOCMAIL_DATABASE_URL: each message is claimed by one worker at a time. The
    database schema must be up to date (`docmail migrate`) unless --migrate is given.
    """
    _configure_logging()
    with (
        Shutdown().installed() as shutdown,
        open_runtime(migrate=migrate) as runtime,
        background_checkpoints(runtime.engine),
    ):
        started = _start_workers(runtime, concurrency)
        settle_after_startup()
        echo_flush(f"docmail worker: {concurrency} thread(s) delivering; Ctrl-C to stop")
        try:
            shutdown.requested.wait()
        finally:
            echo_flush("stopping workers...")
            _stop_workers(started)
    echo_flush("docmail worker stopped")
