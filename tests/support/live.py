"""The real app under a real uvicorn on 127.0.0.1, in a thread of the test process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from docmail.cli.server import uvicorn_config
from docmail.http.app import create_app
from docmail.services.runtime import Runtime
from tests.support.smtp_server import free_port


class ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test thread owns no signals
        pass


def start(config: uvicorn.Config, name: str) -> tuple[ThreadServer, threading.Thread]:
    """Run ``config`` in a daemon thread and return once uvicorn listens."""
    server = ThreadServer(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return server, thread


@contextmanager
def served(runtime: Runtime, forwarded_allow_ips: tuple[str, ...] = ()) -> Iterator[str]:
    """The app with ``docmail serve``'s uvicorn settings; yields the base URL."""
    port = free_port()
    config = uvicorn_config(create_app(runtime), "127.0.0.1", port, forwarded_allow_ips)
    config.log_level, config.lifespan = "warning", "off"
    server, thread = start(config, "live-test-server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
