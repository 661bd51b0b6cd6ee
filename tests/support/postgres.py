"""A real PostgreSQL for tests: the running server, or a throwaway cluster from installed binaries.

Order of preference:
1. ``DOCMAIL_TEST_POSTGRES_URL`` if set;
2. a server answering on 127.0.0.1:5432 (trust auth, as on the CI machine);
3. a throwaway cluster made with ``initdb`` from /usr/lib/postgresql/*/bin, on a free port.
If none is possible, PostgreSQL tests are skipped with a loud notice, unless
``DOCMAIL_REQUIRE_POSTGRES=1`` (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class PostgresServer:
    admin_url: str  # a URL to a maintenance database, for CREATE/DROP DATABASE
    _cleanup: list[str] = field(default_factory=list)
    _datadir: str | None = None
    _bindir: str | None = None

    def url_for(self, database: str) -> str:
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def create_database(self) -> str:
        name = f"docmail_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._cleanup.append(name)
        return self.url_for(name)

    def stop(self) -> None:
        try:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                for name in self._cleanup:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass
        if self._datadir and self._bindir:
            run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
            subprocess.run(
                [*run_as, f"{self._bindir}/pg_ctl", "-D", self._datadir, "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
            )
            shutil.rmtree(self._datadir, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _throwaway_cluster() -> PostgresServer | None:
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs or not os.path.exists(f"{bindirs[-1]}/initdb"):
        return None
    bindir = bindirs[-1]
    datadir = tempfile.mkdtemp(prefix="docmail-pg-")
    port = _free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres system user
        shutil.chown(datadir, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, f"{bindir}/initdb", "-D", datadir, "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            f"{bindir}/pg_ctl",
            "-D",
            datadir,
            "-w",
            "-l",
            f"{datadir}/server.log",
            "-o",
            f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        # The server must not inherit our pipes, or run() waits for them to close.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    for _ in range(50):
        if _answers(url):
            return PostgresServer(url, _datadir=datadir, _bindir=bindir)
        time.sleep(0.1)
    return None


def find_postgres() -> tuple[PostgresServer | None, str]:
    """Return a server and how it was found, or None and why not."""
    configured = os.environ.get("DOCMAIL_TEST_POSTGRES_URL")
    if configured:
        if _answers(configured):
            return PostgresServer(configured), f"DOCMAIL_TEST_POSTGRES_URL={configured}"
        return None, f"DOCMAIL_TEST_POSTGRES_URL={configured} does not answer"
    if _answers(DEFAULT_URL):
        return PostgresServer(DEFAULT_URL), "running server on 127.0.0.1:5432"
    server = _throwaway_cluster()
    if server is not None:
        return server, f"throwaway cluster at {server.admin_url}"
    return None, "PostgreSQL is not installed (no server on 127.0.0.1:5432, no initdb)"
