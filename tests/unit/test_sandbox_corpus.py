"""A corpus of known Jinja2 sandbox escapes and resource bombs (tests/data/sandbox_corpus.txt).

Each entry must be refused when a template is saved (``TemplateEngine.check``, which
the save service and ``PUT /api/v1/templates/...`` call), or be stopped while rendering
by the sandbox's own limits with docmail's ``TemplateError``: never another exception,
never a hang, never Python internals or files in an answer. The engine here has a short
time limit of its own (0.25 s) so the loop bombs stop quickly; the test does not time
anything itself.

The last tests run the real HTTP API: saving an escape is a 422 that names the field
and stores nothing, and while one request renders a bomb under uvicorn on 127.0.0.1,
another request is still answered.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

import docmail
from docmail.bootstrap import build_runtime
from docmail.config import Settings
from docmail.errors import TemplateError
from docmail.http.app import create_app
from docmail.services.companies import create_api_token, create_company
from docmail.services.documents import create_document
from docmail.services.inputs import DocumentIn, PartyIn, TemplateIn
from docmail.services.parties import create_party
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.templates import save_template
from docmail.templates import TemplateEngine, TemplateSource
from docmail.templates.engine import FIELDS, RenderedEmail
from tests.support.app import CREATED
from tests.support.smtp_server import free_port
from tests.unit.test_templates import make_context

CORPUS_FILE = Path(__file__).parent.parent / "data" / "sandbox_corpus.txt"
TIME_LIMIT = 0.25  # seconds: the engine's own render limit in these tests
API = "/api/v1"
#: Text that would show Python internals, files or the environment if it got out.
LEAK_MARKERS = (
    "<module",
    "<built-in function",
    "<function",
    "site-packages",
    "__builtins__': {",
    "root:x:0:0",
    str(Path(docmail.__file__).parent),
    os.environ.get("PATH", "/usr/bin:/bin"),
)


def load_corpus() -> list[str]:
    """Entries separated by '----' lines; '# ' lines before an entry describe it."""
    entries = []
    for chunk in CORPUS_FILE.read_text(encoding="utf-8").split("\n----\n"):
        lines = [line for line in chunk.strip("\n").split("\n") if not line.startswith("# ")]
        entry = "\n".join(lines).strip()
        if entry:
            entries.append(entry)
    return entries


CORPUS = load_corpus()


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine(timeout_seconds=TIME_LIMIT)


def as_part(field: str, template: str) -> TemplateSource:
    parts = {"subject": "Factura", "body_html": "<p>Hola</p>", "body_text": "Hola"}
    parts[field] = template
    return TemplateSource(**parts)


def assert_no_leak(text: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in text, f"{marker!r} leaked: {text[:300]!r}"


def refused_at_save(engine: TemplateEngine, source: TemplateSource) -> TemplateError | None:
    try:
        engine.check(source)
    except TemplateError as error:
        return error
    return None


def render_outcome(engine: TemplateEngine, source: TemplateSource) -> RenderedEmail | TemplateError:
    """Render; anything but docmail's TemplateError fails the test."""
    try:
        return engine.render(source, make_context(), "es_MX")
    except TemplateError as error:
        return error


def test_the_corpus_has_the_known_escapes_and_bombs() -> None:
    assert len(CORPUS) >= 100
    assert len(set(CORPUS)) == len(CORPUS)
    for expected in (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ self._TemplateReference__context }}",
        "{{ '%999999999d'|format(1) }}",
        "{% include 'base.html' %}",
    ):
        assert expected in CORPUS


@pytest.mark.parametrize("template", CORPUS)
def test_an_escape_or_bomb_is_refused_at_save_or_stopped_with_a_template_error(
    engine: TemplateEngine, template: str
) -> None:
    source = as_part("body_text", template)
    refusal = refused_at_save(engine, source)
    outcome = render_outcome(engine, source)
    if refusal is not None:
        assert refusal.field == "body_text"
        assert refusal.problems and all(p["line"] for p in refusal.problems)
        assert_no_leak(refusal.message)
    else:
        assert isinstance(outcome, TemplateError), f"rendered: {outcome!r:.300}"
    if isinstance(outcome, TemplateError):
        assert outcome.field == "body_text"
        assert outcome.message.startswith("body_text")
        assert_no_leak(outcome.message)
    else:  # only templates refused at save get here (kept for templates stored long ago)
        assert_no_leak(outcome.body_text)


@pytest.mark.parametrize("field", FIELDS)
def test_escapes_are_stopped_in_every_part_of_the_template(
    engine: TemplateEngine, field: str
) -> None:
    for template in (
        "{{ cycler.__init__.__globals__.os }}",
        "{{ ''|attr('__class__') }}",
        "{{ '{0.__class__}'.format(document) }}",
        "{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}",
    ):
        outcome = render_outcome(engine, as_part(field, template))
        assert isinstance(outcome, TemplateError)
        assert outcome.field == field


# --------------------------------------------------------------------------- the HTTP API


@dataclass
class Live:
    runtime: Runtime
    base_url: str
    document_id: int
    actor: Actor
    client: httpx.Client


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test thread owns no signals
        pass


class ObservedEngine(TemplateEngine):
    """The real engine; it only lets the test know that a render has begun."""

    def __init__(self, **limits: Any) -> None:
        super().__init__(**limits)
        self.rendering = threading.Event()

    def render(self, source: TemplateSource, context: dict[str, Any], locale: str) -> RenderedEmail:
        self.rendering.set()
        return super().render(source, context, locale)


def _runtime(database_url: str, data_dir: Path) -> Runtime:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_keys=(Fernet.generate_key().decode(),),
    )  # the default render limits (2 seconds)
    runtime = build_runtime(settings, run_migrations=False)
    CREATED.append(runtime)  # disposed by tests/conftest.py after the test
    runtime.templates = ObservedEngine(timeout_seconds=settings.render_timeout_seconds)
    return runtime


@contextmanager
def serving(database_url: str, data_dir: Path) -> Iterator[Live]:
    """A company with one invoice, and the app under uvicorn on 127.0.0.1."""
    runtime = _runtime(database_url, data_dir)
    company = create_company(runtime, "Bombas SA de CV", country="MX")
    actor = Actor(company.id, Role.ADMIN)
    create_party(runtime, actor, PartyIn(code="P1", name="Cliente", email="cliente@p1.mx"))
    document = create_document(
        runtime, actor, DocumentIn(type="invoice", number="A-1", party_code="P1")
    ).document
    token = create_api_token(runtime, company.id, "corpus", Role.ADMIN)
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, name="corpus-api", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    base_url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            yield Live(runtime, base_url, document.id, actor, client)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_sqlite(sqlite_template: Path, tmp_path: Path) -> Iterator[Live]:
    target = tmp_path / "corpus.sqlite3"
    shutil.copyfile(sqlite_template, target)
    with serving(f"sqlite:///{target}", tmp_path / "data") as live:
        yield live


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[Live]:
    with serving(database_url, tmp_path / "data") as live:
        yield live


def test_saving_an_escape_through_the_api_is_a_422_naming_the_field_and_stores_nothing(
    live_sqlite: Live, engine: TemplateEngine
) -> None:
    live = live_sqlite
    refused = [t for t in CORPUS if refused_at_save(engine, as_part("body_html", t))]
    assert len(refused) >= 40
    for template in refused:
        body = {"subject": "Factura {{ document.number }}", "body_html": template, "body_text": "x"}
        answer = live.client.put(f"{API}/templates/invoice/es", json=body)
        assert answer.status_code == 422, (template, answer.text)
        error = answer.json()
        assert error["field"] == "body_html"
        assert error["problems"] and error["problems"][0]["line"] == 1
        assert_no_leak(answer.text)
    stored = live.client.get(f"{API}/templates/invoice/es")
    assert stored.status_code == 200
    assert stored.json()["custom"] is False


def test_the_server_answers_other_requests_while_one_renders_a_bomb(live: Live) -> None:
    # Compose renders in a read-only session (no SQLite write lock), so health answers.
    bomb = "{% for i in range(10**5) %}{% for j in range(10**5) %}{% endfor %}{% endfor %}"
    save_template(
        live.runtime,
        live.actor,
        "invoice",
        "es",
        TemplateIn(subject="Factura", body_html="<p>x</p>", body_text=bomb),
    )
    engine = live.runtime.templates
    assert isinstance(engine, ObservedEngine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        composing: Future[httpx.Response] = pool.submit(
            live.client.get, f"{API}/documents/{live.document_id}/compose"
        )
        assert engine.rendering.wait(timeout=30)
        with httpx.Client(base_url=live.base_url, timeout=30) as other:
            health = other.get(f"{API}/health")
            answered_during_render = not composing.done()
        stopped = composing.result(timeout=60)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert answered_during_render, "the health check waited for the bomb to finish"
    assert stopped.status_code == 422
    assert stopped.json()["field"] == "body_text"
    limit = live.runtime.settings.render_timeout_seconds
    assert f"longer than {limit:g} seconds" in stopped.json()["error"]
