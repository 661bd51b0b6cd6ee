"""The parts of a load test: a real docmail server and worker, an SMTP sink, seeded data.

Everything listens on 127.0.0.1. The server (``docmail serve --no-worker``) and
the worker (``docmail worker``) are their own processes, started exactly as an
installation starts them (settings in ``DOCMAIL_*`` variables), so neither
shares a GIL with the load generator, which is a third process
(bench/load_driver.py or locust). The SMTP sink (tests/support/smtp_server.py,
aiosmtpd) runs in this process and counts what it receives by Message-ID.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import select

from bench.load_driver import DriverConfig, Sample
from docmail.adapters.db import tables as t
from docmail.bootstrap import build_runtime
from docmail.config import Settings
from docmail.services.accounts import create_account
from docmail.services.blobs import AttachmentData
from docmail.services.companies import create_api_token, create_company
from docmail.services.documents import create_document
from docmail.services.inputs import AccountIn, DocumentIn, PartyIn
from docmail.services.parties import create_party
from docmail.services.runtime import Actor, Role
from tests.support.smtp_server import SmtpTestServer, free_port

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# What the server's log says when it breaks, by the cause a reader needs to know.
LOG_PATTERNS = {
    "sqlite 'database is locked'": re.compile(r"database is locked"),
    "connection pool exhausted": re.compile(
        r"QueuePool limit|too many clients|remaining connection"
    ),
    "tracebacks": re.compile(r"^Traceback \(most recent call last\)", re.M),
    "HTTP 5xx answers": re.compile(r'" 5\d\d\b'),
}


@dataclass(frozen=True)
class OutboxRow:
    key: str | None
    message_id: str
    state: str


@dataclass(frozen=True)
class Seeded:
    company_id: int
    token: str
    document_ids: list[int]


def pdf_bytes(number: str) -> bytes:
    """A small stand-in for an invoice PDF (~20 kB), different for every document."""
    filler = (f"invoice {number} " * 1200).encode()[:20_000]
    return b"%PDF-1.4\n% load test\n" + filler + b"\n%%EOF\n"


def seed(settings: Settings, sink_port: int, documents: int, parties: int = 20) -> Seeded:
    """A company, an SMTP account pointing at the sink, parties with contacts, invoices."""
    runtime = build_runtime(settings)
    try:
        company = create_company(runtime, "Carga SA de CV", country="MX")
        admin = Actor(company.id, Role.ADMIN)
        create_account(
            runtime,
            admin,
            AccountIn(
                name="sink",
                host=HOST,
                port=sink_port,
                security="none",
                from_email="facturas@carga.mx",
                is_default=True,
            ),
        )
        for p in range(parties):
            contact = {
                "name": f"Finanzas {p}",
                "email": f"fin{p}@cliente{p}.mx",
                "roles": ["finance"],
            }
            create_party(
                runtime,
                admin,
                PartyIn(
                    code=f"C{p:03d}",
                    name=f"Cliente {p}",
                    email=f"info@cliente{p}.mx",
                    contacts=[contact],  # type: ignore[list-item]
                ),
            )
        ids = []
        for d in range(documents):
            number = f"L-{d:05d}"
            party = f"C{d % parties:03d}"
            total = Decimal("1234.50")
            data = DocumentIn(
                type="invoice", number=number, party_code=party, total=total, currency="MXN"
            )
            pdf = AttachmentData(f"{number}.pdf", "application/pdf", pdf_bytes(number))
            ids.append(create_document(runtime, admin, data, [pdf]).document.id)
        token = create_api_token(runtime, company.id, "load", Role.SENDER)
        return Seeded(company.id, token, ids)
    finally:
        runtime.engine.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class LogWatch:
    """Reads what a log file gained since the last look."""

    path: Path
    offset: int = 0

    def new_text(self) -> str:
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        self.offset += len(data)
        return data.decode(errors="replace")

    def problems(self) -> dict[str, int]:
        text = self.new_text()
        found = {name: len(rx.findall(text)) for name, rx in LOG_PATTERNS.items()}
        return {name: n for name, n in found.items() if n}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: LogWatch
    log_handle: IO[bytes]

    def cpu(self) -> float:
        return cpu_seconds(self.popen.pid)

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log_handle.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Harness:
    """Sink, seeded database, server and worker for one backend; a context manager."""

    database_url: str
    workdir: Path
    documents: int = 200
    worker_threads: int = 2
    sink: SmtpTestServer = field(init=False)
    seeded: Seeded = field(init=False)
    server: Process = field(init=False)
    worker: Process = field(init=False)
    port: int = field(init=False, default=0)
    _key: str = field(init=False, default="")  # DOCMAIL_SECRET_KEY of the server and worker
    _started: list[Process] = field(init=False, default_factory=list)

    @property
    def backend(self) -> str:
        return "sqlite" if self.database_url.startswith("sqlite") else "postgresql"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DOCMAIL_DATA_DIR": str(self.workdir / "data"),
            "DOCMAIL_DATABASE_URL": self.database_url,
            "DOCMAIL_SECRET_KEY": self._key,
            "DOCMAIL_WORKER_POLL_SECONDS": "0.2",
            "DOCMAIL_OUTBOUND_ALLOW": "127.0.0.0/8,::1",  # the mail sink is on 127.0.0.1
            "PYTHONUNBUFFERED": "1",
        }

    def __enter__(self) -> Harness:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._key = Fernet.generate_key().decode()
        self.sink = SmtpTestServer("none").start()
        try:
            settings = Settings.from_env(self.env())
            self.seeded = seed(settings, self.sink.port, self.documents)
            self.port = free_port()
            self.server = self._spawn(
                "server", ["serve", "--no-worker", "--host", HOST, "--port", str(self.port)]
            )
            self._wait_healthy()
            self.worker = self._spawn(
                "worker", ["worker", "--concurrency", str(self.worker_threads)]
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for process in reversed(self._started):
            process.stop()
        self._started.clear()
        self.sink.stop()

    def _spawn(self, name: str, args: list[str]) -> Process:
        path = self.workdir / f"{name}.log"
        handle = path.open("ab")
        popen = subprocess.Popen(
            [sys.executable, "-m", "docmail", *args],
            env=self.env(),
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        process = Process(name, popen, LogWatch(path), handle)
        self._started.append(process)
        return process

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.popen.poll() is not None:
                raise RuntimeError(f"docmail serve exited:\n{self.server.tail()}")
            try:
                if httpx.get(f"{self.base_url}/api/v1/health", timeout=2).status_code == 200:
                    self.server.log.new_text()  # start-up lines are not load problems
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"docmail serve did not answer within {timeout} s:\n{self.server.tail()}"
        )

    def driver_config(
        self, rate: float, seconds: float, key_prefix: str, **kw: float
    ) -> DriverConfig:
        return DriverConfig(
            base_url=self.base_url,
            token=self.seeded.token,
            document_ids=self.seeded.document_ids,
            rate=rate,
            seconds=seconds,
            key_prefix=key_prefix,
            **kw,  # type: ignore[arg-type]
        )

    def outbox(self) -> list[OutboxRow]:
        """Every message in the outbox: its Idempotency-Key, Message-ID and state."""
        runtime = build_runtime(Settings.from_env(self.env()), run_migrations=False)
        try:
            with runtime.session() as session:
                query = select(
                    t.Message.idempotency_key, t.Message.message_id_header, t.Message.state
                )
                return [OutboxRow(*row) for row in session.execute(query)]
        finally:
            runtime.engine.dispose()

    def wait_outbox_idle(self, timeout: float) -> Counter[str]:
        """Wait until no message is queued, sending or retrying; the states then (or at timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            states = Counter(row.state for row in self.outbox())
            if not {"queued", "sending", "retrying"} & set(states) or time.monotonic() > deadline:
                return states
            time.sleep(0.5)


def run_driver(config: DriverConfig, workdir: Path, driver: str = "httpx") -> list[Sample]:
    """Run one load step in its own process; return its samples."""
    config_path, out_path = workdir / "driver-config.json", workdir / "driver-samples.json"
    config.dump(config_path)
    out_path.unlink(missing_ok=True)
    if driver == "locust":
        command = locust_command(config, config_path, out_path)
    else:
        command = [sys.executable, "-m", "bench.load_driver", str(config_path), str(out_path)]
    limit = config.seconds + config.grace + 60
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=limit, check=False)
    if not out_path.exists():  # (locust exits with 1 when any request failed: not a crash)
        output = (done.stdout + done.stderr).decode(errors="replace")[-3000:]
        raise RuntimeError(f"{driver} driver failed ({done.returncode}):\n{output}")
    return [Sample(**s) for s in json.loads(out_path.read_text())]


def locust_command(config: DriverConfig, config_path: Path, out_path: Path) -> list[str]:
    run_time = int(config.seconds + config.grace + 5)
    return [
        sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"),
        "--headless", "--host", config.base_url, "--users", "1", "--spawn-rate", "1",
        "--run-time", f"{run_time}s", "--stop-timeout", "5", "--only-summary",
        "--loglevel", "WARNING", "--skip-log-setup",
        f"--load-config={config_path}", f"--load-samples={out_path}",
    ]  # fmt: skip
