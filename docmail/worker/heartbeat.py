"""A worker's heartbeat: a thread that says it is alive, keeps its leases and frees the dead's.

Every ``interval`` seconds (``HEARTBEAT_SECONDS``, shorter with a short lease):

1. ``worker_heartbeats.last_seen`` is written (health and metrics read it);
2. the leases of the messages the worker holds are renewed, so a message that
   stays on the wire longer than the lease (a slow server) is not taken over by
   another worker and sent twice; only while the worker's loop is making
   progress (within a lease plus the SMTP deadline), so a hung worker still
   loses its claims when the lease runs out;
3. the claims of workers whose heartbeat is older than ``STALE_AFTER`` (three
   missed beats) are released, so a killed worker's messages go out again
   within seconds of a restart (or at once through another worker).

It runs in its own thread because the loop can spend minutes in one pass over
an account; a beat written only between passes would make a busy worker look dead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from docmail.adapters.db import leases
from docmail.services.operations import beat
from docmail.services.runtime import Runtime

log = logging.getLogger("docmail.worker")
HEARTBEAT_SECONDS = 2.0
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)  # three missed beats


class Heartbeat:
    """Beats for one worker while started; ``held()`` gives the message ids it holds."""

    def __init__(
        self,
        runtime: Runtime,
        worker: str,
        held: Callable[[], set[int]],
        progressing: Callable[[float], bool],
    ) -> None:
        self.runtime = runtime
        self.worker = worker
        self._held = held
        self._progressing = progressing  # (seconds) -> did the loop move within them?
        self.lease = timedelta(seconds=runtime.settings.worker_lease_seconds)
        self.interval = min(HEARTBEAT_SECONDS, self.lease.total_seconds() / 4)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent = 0
        self._lock = threading.Lock()
        self._failing: str | None = None

    def count_sent(self, sent: int) -> None:
        with self._lock:
            self._sent += sent

    def start(self) -> None:
        self.beat_once()  # alive before the first claim
        self._thread = threading.Thread(
            target=self._run, name=f"docmail-heartbeat-{self.worker}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat_once()

    def beat_once(self) -> None:
        """One beat; a failure (the database is away) is logged once, not every beat."""
        try:
            self._beat()
        except Exception as exc:  # the next beat tries again
            reason = f"{type(exc).__name__}: {exc}"
            if reason != self._failing:
                log.error("worker %s: heartbeat failed: %s", self.worker, reason[:500])
            self._failing = reason
        else:
            self._failing = None

    def _beat(self) -> None:
        with self._lock:
            sent, self._sent = self._sent, 0
        try:
            beat(self.runtime, self.worker, sent)
        except BaseException:
            self.count_sent(sent)  # counted with the next beat
            raise
        now = self.runtime.clock()
        # One message may stay on the wire up to the SMTP deadline; a loop stuck
        # for longer than that plus a lease is hung, and lets its leases run out.
        if self._progressing(self.lease.total_seconds() + self.runtime.settings.smtp_deadline):
            leases.renew(self.runtime.engine, self.worker, self._held(), self.lease, now)
        freed = leases.release_stale(self.runtime.engine, now - STALE_AFTER)
        if freed.get("messages") or freed.get("batches"):
            log.warning(
                "worker %s: released the claims of %s stopped worker(s): %s message(s), "
                "%s batch(es)",
                self.worker,
                freed["workers"],
                freed["messages"],
                freed["batches"],
            )
