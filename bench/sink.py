"""The SMTP server every benchmark sends to: aiosmtpd on 127.0.0.1, in its own process.

Its own process, so the server's CPU (about 3 ms per 100 KB message) runs on
the other core instead of competing with the measured client for the GIL. It
counts messages and distinct Message-IDs, so a duplicate delivery shows.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import socket
import time
from typing import Any

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(port: int, count: Any, distinct: Any, ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    seen: set[bytes] = set()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            found = _MESSAGE_ID.search(envelope.content, 0, 4096)
            key = found.group(1) if found else b""
            if key not in seen:
                seen.add(key)
                distinct.value += 1
            count.value += 1
            return "250 OK queued"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, data_size_limit=50_000_000)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class Sink:
    """Start with ``with Sink() as sink:``; ``sink.port``, ``sink.count``, ``sink.wait_for(n)``."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.port = free_port()
        self._count = ctx.Value("q", 0, lock=False)
        self._distinct = ctx.Value("q", 0, lock=False)
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._process = ctx.Process(
            target=_serve,
            args=(self.port, self._count, self._distinct, self._ready, self._stop),
            daemon=True,
        )

    def __enter__(self) -> Sink:
        self._process.start()
        if not self._ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(10)

    @property
    def count(self) -> int:
        return int(self._count.value)

    @property
    def distinct(self) -> int:
        return int(self._distinct.value)

    def wait_for(self, total: int, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink got {self.count} of {total} messages")
            time.sleep(0.002)
