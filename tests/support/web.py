"""Browser sessions through the real login form, for tests that drive the pages with
the FastAPI TestClient (no browser)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from docmail.http.app import create_app
from docmail.services.runtime import Runtime

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(runtime: Runtime, email: str, password: str) -> TestClient:
    """A client signed in as ``email`` (the login must succeed)."""
    client = TestClient(create_app(runtime), raise_server_exceptions=False)
    found = CSRF.search(client.get("/login").text)
    assert found is not None
    form = {"email": email, "password": password, "csrf_token": found.group(1)}
    answer = client.post("/login", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(client: TestClient, page: str = "/documents") -> str:
    """The session's CSRF token, read from a page's form."""
    found = CSRF.search(client.get(page).text)
    assert found is not None
    return found.group(1)
