"""Building a real runtime (real database, real SMTP transport) and an API client for tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from docmail.bootstrap import build_runtime
from docmail.config import LOOPBACK, Settings
from docmail.http.app import create_app
from docmail.services.companies import create_api_token, create_company
from docmail.services.runtime import Role, Runtime
from docmail.worker.worker import Worker

# Every runtime a test builds; tests/conftest.py disposes their engines after each test
# so no database connection outlives its test (ResourceWarnings are errors here).
CREATED: list[Runtime] = []


def dispose_all() -> None:
    while CREATED:
        CREATED.pop().engine.dispose()


def make_runtime(database_url: str, data_dir: Path, ca_file: str | None = None) -> Runtime:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_keys=(Fernet.generate_key().decode(),),
        smtp_timeout=5.0,
        worker_poll_seconds=0.05,
        outbound_allow=LOOPBACK,  # the test mail servers listen on 127.0.0.1
        extra={"smtp_ca_file": ca_file} if ca_file else {},
    )
    runtime = build_runtime(settings, run_migrations=False)
    CREATED.append(runtime)
    return runtime


@dataclass
class Tenant:
    """One company with an API client authenticated by its token."""

    company_id: int
    token: str
    client: TestClient

    def worker(self, runtime: Runtime, name: str = "test-worker") -> Worker:
        return Worker(runtime, name)


def make_tenant(
    runtime: Runtime, name: str = "ACME SA de CV", country: str = "MX", role: Role = Role.ADMIN
) -> Tenant:
    company = create_company(runtime, name, country=country)
    token = create_api_token(runtime, company.id, "tests", role)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {token}"
    return Tenant(company.id, token, client)


def client_for(runtime: Runtime, company_id: int, role: Role) -> TestClient:
    token = create_api_token(runtime, company_id, f"{role.value}-token", role)
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {token}"
    return client
