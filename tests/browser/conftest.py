"""Browser tests: the real app under uvicorn on 127.0.0.1, a real SMTP server, a real worker,
and Debian's Chromium driven by Playwright (one browser per session)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from docmail.http.app import create_app
from docmail.services.runtime import Runtime
from docmail.worker.worker import Worker, start_in_thread
from tests.browser.world import PASSWORD, WebWorld, build_world
from tests.support.app import make_runtime
from tests.support.live import ThreadServer, start
from tests.support.smtp_server import SmtpTestServer, free_port

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("DOCMAIL_REQUIRE_CHROMIUM") == "1":  # set by .ci/run
            pytest.fail("Chromium is required (DOCMAIL_REQUIRE_CHROMIUM=1) but not installed")
        pytest.skip(
            "!!! browser tests SKIPPED: Chromium is not installed (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        yield browser
        browser.close()


@dataclass
class Live:
    """The running application, its data and the mail server it delivers to."""

    base_url: str
    runtime: Runtime
    world: WebWorld
    smtp: SmtpTestServer
    browser: Browser

    def context(self, locale: str = "es-MX", width: int = 1280) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.base_url, locale=locale, viewport={"width": width, "height": 900}
        )
        context.set_default_timeout(8000)
        return context

    def sign_in(self, email: str, locale: str = "es-MX", width: int = 1280) -> Page:
        page = self.context(locale, width).new_page()
        page.goto("/login")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/documents")
        return page

    def shot(self, page: Page, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _serve(runtime: Runtime) -> tuple[ThreadServer, threading.Thread, str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server, thread = start(config, "web-test-server")
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def live(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path: Path,
    smtp_server_plain: SmtpTestServer,
    chromium: Browser,
) -> Iterator[Live]:
    target = tmp_path / "web.sqlite3"
    shutil.copyfile(sqlite_template, target)
    runtime = make_runtime(f"sqlite:///{target}", tmp_path / "data")
    marker = request.node.get_closest_marker("invoices")
    world = build_world(runtime, smtp_server_plain.port, marker.args[0] if marker else 3)
    worker = Worker(runtime, "web-test-worker")
    worker_thread = start_in_thread(worker)
    server, thread, base = _serve(runtime)
    yield Live(base, runtime, world, smtp_server_plain, chromium)
    server.should_exit = True
    thread.join(5)
    worker.stop()
    worker_thread.join(5)
    runtime.engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "invoices(n): how many invoices the web world has")
