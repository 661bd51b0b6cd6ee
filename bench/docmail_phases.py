"""docmail's side of the throughput benchmark: set up, enqueue, deliver (run in child processes).

Each phase builds its own runtime from a plain dict of settings so it can run in
a fresh process: peak memory (``ru_maxrss``) is then the phase's own, and the
worker processes do not share a GIL with the code that enqueues.
"""

from __future__ import annotations

import base64
import multiprocessing as mp
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import material
from bench.procmem import peak_rss_mb
from docmail.adapters.db import tables as t
from docmail.adapters.db.checkpoint import background_checkpoints
from docmail.bootstrap import build_runtime, settle_after_startup
from docmail.config import LOOPBACK, Settings
from docmail.services.accounts import create_account
from docmail.services.batches import send_batch, start_batch
from docmail.services.blobs import AttachmentData
from docmail.services.companies import create_api_token, create_company
from docmail.services.documents_bulk import create_documents
from docmail.services.inputs import AccountIn, BatchIn, DocumentIn, PartyIn, TemplateIn
from docmail.services.parties import create_party
from docmail.services.runtime import Actor, Role, Runtime
from docmail.services.templates import save_template
from docmail.worker.worker import Worker

PARTIES = 50
CHUNK = 500  # documents per service call / API request


def runtime_for(config: dict[str, Any]) -> Runtime:
    settings = Settings(
        data_dir=Path(config["data_dir"]),
        database_url=config["database_url"],
        secret_keys=(config["secret_key"],),
        worker_poll_seconds=0.01,
        worker_batch_size=config.get("worker_batch_size", 50),
        outbound_allow=LOOPBACK,  # the benchmark's mail sink is on 127.0.0.1
    )
    return build_runtime(settings, run_migrations=config.get("migrate", False))


def set_up(config: dict[str, Any], port: int) -> dict[str, Any]:
    """A company, its SMTP account (the sink), parties with a finance contact, the template."""
    runtime = runtime_for({**config, "migrate": True})
    company = create_company(runtime, "Bench SA de CV", country="MX")
    actor = Actor(company.id, Role.ADMIN)
    create_account(
        runtime,
        actor,
        AccountIn(
            name="sink",
            host="127.0.0.1",
            port=port,
            security="none",
            from_email=material.SENDER,
            is_default=True,
        ),
    )
    for index in range(PARTIES):
        create_party(
            runtime,
            actor,
            PartyIn(
                code=f"C{index:03d}",
                name="Cliente Uno SA",
                email=f"general{index}@cliente.mx",
                contacts=[{"name": "CxP", "email": f"cxp{index}@cliente.mx", "roles": ["finance"]}],  # type: ignore[list-item]
            ),
        )
    save_template(
        runtime,
        actor,
        "invoice",
        "es",
        TemplateIn(
            subject=material.docmail_template(material.SUBJECT),
            body_html=material.docmail_template(material.BODY_HTML),
            body_text=material.docmail_template(material.BODY_TEXT),
        ),
    )
    token = create_api_token(runtime, company.id, "bench", Role.ADMIN)
    runtime.engine.dispose()
    return {"company_id": company.id, "token": token}


def document_json(index: int) -> dict[str, Any]:
    """One invoice with its own PDF and XML, base64 in JSON as the HTTP API receives it."""
    return {
        **document_fields(index),
        "attachments": [
            {
                "filename": f.filename,
                "content_type": f.content_type,
                "content_base64": base64.b64encode(f.data).decode(),
            }
            for f in document_files(index)
        ],
    }


def document_fields(index: int) -> dict[str, Any]:
    return {
        "type": "invoice",
        "number": material.number(index),
        "party_code": f"C{index % PARTIES:03d}",
        "total": "1160.00",
        "currency": "MXN",
    }


def document_files(index: int) -> list[AttachmentData]:
    """The same attachments as raw bytes, as a Python caller of the service layer holds them."""
    number = material.number(index)
    return [
        AttachmentData(f"{number}.pdf", "application/pdf", material.pdf_for(index)),
        AttachmentData(f"{number}.xml", "application/xml", material.xml_for(index)),
    ]


def _chunks(start: int, count: int) -> Iterator[range]:
    for first in range(start, start + count, CHUNK):
        yield range(first, min(first + CHUNK, start + count))


def _inputs(chunk: range) -> tuple[list[DocumentIn], list[list[AttachmentData]]]:
    """What an ERP hands over for documents ``chunk``: the fields and the files."""
    return (
        [DocumentIn.model_validate(document_fields(i)) for i in chunk],
        [document_files(i) for i in chunk],
    )


def _hand_over(
    runtime: Runtime, actor: Actor, items: list[DocumentIn], files: list[list[AttachmentData]]
) -> None:
    """Store the documents and queue one email each (what the service layer is timed on)."""
    created = create_documents(runtime, actor, items, files)
    send_batch(runtime, actor, BatchIn(document_ids=[c.id for c in created]))


def enqueue_service(
    config: dict[str, Any], company_id: int, start: int, count: int
) -> dict[str, Any]:
    """Create documents and queue one email each, through the service layer, CHUNK at a time."""
    runtime = runtime_for(config)
    actor = Actor(company_id, Role.ADMIN)
    seconds = 0.0
    settle_after_startup()  # as `docmail serve` does
    with background_checkpoints(runtime.engine):  # and runs
        for chunk in _chunks(start, count):
            items, files = _inputs(chunk)
            began = time.perf_counter()  # making up the input is the ERP's work, not docmail's
            _hand_over(runtime, actor, items, files)
            seconds += time.perf_counter() - began
        began = time.perf_counter()
    # Stopping the checkpoint thread and closing the database (which copies what is
    # left in the WAL) is work of this phase too.
    runtime.engine.dispose()
    seconds += time.perf_counter() - began
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def create_only(config: dict[str, Any], company_id: int, start: int, count: int) -> list[int]:
    """Documents without sending (for the big batch): ids in order."""
    runtime = runtime_for(config)
    actor = Actor(company_id, Role.ADMIN)
    ids: list[int] = []
    for chunk in _chunks(start, count):
        created = create_documents(runtime, actor, *_inputs(chunk))
        ids.extend(c.id for c in created)
    runtime.engine.dispose()
    return ids


def start_big_batch(config: dict[str, Any], company_id: int, ids: list[int]) -> dict[str, Any]:
    """Store a batch of all ``ids`` for the workers to expand and send; this process's peak."""
    runtime = runtime_for(config)
    batch_id, _ = start_batch(runtime, Actor(company_id, Role.ADMIN), BatchIn(document_ids=ids))
    runtime.engine.dispose()
    return {"batch_id": batch_id, "peak_rss_mb": peak_rss_mb()}


def _worker_process(
    config: dict[str, Any], name: str, ready: Any, go: Any, done: Any, expected: int
) -> None:
    runtime = runtime_for(config)
    worker = Worker(runtime, name)
    settle_after_startup()  # as `docmail worker` does
    ready.put(name)
    go.wait()
    cpu_before = time.process_time()
    rounds = 0
    with background_checkpoints(runtime.engine):  # like `docmail worker`...
        while True:  # ...but ends once all ``expected`` are out
            rounds += 1
            if not worker.run_once():
                if _all_out(runtime, expected):
                    break
                time.sleep(0.002)  # another worker holds the rest, or more are on their way
        finished_at = time.time()
    worker.close_transports()
    runtime.engine.dispose()
    cpu = time.process_time() - cpu_before
    done.put((name, rounds, peak_rss_mb(), finished_at, cpu))


def _all_out(runtime: Runtime, expected: int) -> bool:
    """Nothing left to send or expand, and ``expected`` messages sent."""
    states = _message_states(runtime)
    with runtime.session() as session:
        expanding = session.scalar(
            select(func.count()).where(t.Batch.state.in_(["receiving", "ready", "expanding"]))
        )
    unfinished = sum(states.get(state, 0) for state in ("queued", "retrying", "sending"))
    return unfinished == 0 and not expanding and states.get("sent", 0) >= expected


def _enqueue_process(
    config: dict[str, Any], company_id: int, count: int, ready: Any, go: Any, done: Any
) -> None:
    """The ERP's side for a pipelined run: inputs made up first, then handed over on ``go``."""
    runtime = runtime_for(config)
    actor = Actor(company_id, Role.ADMIN)
    settle_after_startup()  # before the inputs, which are the ERP's, not docmail's
    chunks = [_inputs(chunk) for chunk in _chunks(0, count)]
    ready.put("enqueue")
    go.wait()
    started_at = time.time()
    with background_checkpoints(runtime.engine):
        for items, files in chunks:
            _hand_over(runtime, actor, items, files)
    runtime.engine.dispose()
    done.put(("enqueue", started_at, time.time() - started_at))


def deliver(
    config: dict[str, Any], workers: int, expected: int, *, arriving_for: int | None = None
) -> dict[str, Any]:
    """Run ``workers`` worker processes until ``expected`` messages are sent.

    Without ``arriving_for`` the outbox is already full: time from go to all sent.
    With it (a company id), the documents are created while the workers already
    poll, as under ``docmail serve``: time from the first document handed to
    docmail to the last message accepted by the server.
    """
    ctx = mp.get_context("spawn")
    ready, go, done, enqueued = ctx.Queue(), ctx.Event(), ctx.Queue(), ctx.Queue()
    processes = [
        ctx.Process(target=_worker_process, args=(config, f"bench-{i}", ready, go, done, expected))
        for i in range(workers)
    ]
    if arriving_for is not None:
        processes.append(
            ctx.Process(
                target=_enqueue_process,
                args=(config, arriving_for, expected, ready, go, enqueued),
            )
        )
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)  # imports, runtime and inputs ready before the clock starts
    started_at = time.time()
    go.set()
    if arriving_for is not None:
        _, started_at, enqueue_seconds = enqueued.get(timeout=3600)
    reports = [done.get(timeout=3600) for _ in range(workers)]
    seconds = max(report[3] for report in reports) - started_at
    for process in processes:
        process.join(30)
    states = _states(config)
    if states.get("sent", 0) < expected:
        raise RuntimeError(f"expected {expected} sent messages, the outbox says {states}")
    result = {
        "seconds": seconds,
        "states": states,
        "peak_rss_mb": max(report[2] for report in reports),
        "worker_cpu_ms_per_message": 1000 * sum(report[4] for report in reports) / expected,
    }
    if arriving_for is not None:
        result["enqueue_seconds"] = enqueue_seconds
    return result


def _message_states(runtime: Runtime) -> dict[str, int]:
    """How many messages are in each state."""
    with runtime.session() as session:
        rows = session.execute(select(t.Message.state, func.count()).group_by(t.Message.state))
        return {state: int(count) for state, count in rows}


def _states(config: dict[str, Any]) -> dict[str, int]:
    runtime = runtime_for(config)
    states = _message_states(runtime)
    runtime.engine.dispose()
    return states


def _serve(config: dict[str, Any], port: int) -> None:
    import uvicorn

    from docmail.http.app import create_app

    runtime = runtime_for(config)
    settle_after_startup()
    with background_checkpoints(runtime.engine):
        uvicorn.run(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")


def enqueue_api(
    config: dict[str, Any], token: str, start: int, count: int, chunk: int = 100
) -> dict[str, Any]:
    """The same documents through the HTTP API (uvicorn in its own process, on 127.0.0.1):
    ``POST /documents/bulk`` with base64 attachments, then ``POST /documents/send-batch``."""
    import httpx

    from bench.sink import free_port

    port = free_port()
    ctx = mp.get_context("spawn")
    server = ctx.Process(target=_serve, args=(config, port), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            _wait_for(client)
            seconds = 0.0
            for first in range(start, start + count, chunk):
                body = {"documents": [document_json(i) for i in range(first, first + chunk)]}
                began = time.perf_counter()  # the client's JSON building is not docmail's
                answer = client.post("/documents/bulk", json=body)
                answer.raise_for_status()
                ids = [item["id"] for item in answer.json()["items"]]
                client.post("/documents/send-batch", json={"document_ids": ids}).raise_for_status()
                seconds += time.perf_counter() - began
    finally:
        server.terminate()
        server.join(10)
    return {"seconds": seconds}


def _wait_for(client: Any) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.get("/health").status_code < 500:
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)
