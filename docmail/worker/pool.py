"""Several workers in one process, plus the PostgreSQL wake-up listener they share."""

from __future__ import annotations

import threading
import time

from docmail.services.runtime import Runtime
from docmail.worker.listener import NotifyListener, listen_if_postgres
from docmail.worker.worker import Worker, default_worker_name, start_in_thread


class WorkerPool:
    def __init__(self, runtime: Runtime, count: int) -> None:
        self.runtime = runtime
        self.workers = [
            Worker(runtime, name=f"{default_worker_name()}-{index + 1}") for index in range(count)
        ]
        self._threads: list[threading.Thread] = []
        self._listener: NotifyListener | None = None

    def start(self) -> WorkerPool:
        self._threads = [start_in_thread(worker) for worker in self.workers]
        self._listener = listen_if_postgres(self.runtime.engine, self.runtime.wakeup)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful: each worker finishes its message in flight and releases the rest."""
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.stop()
