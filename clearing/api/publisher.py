"""The service's publisher: a thread that builds each settled auction's ``/book`` ahead of
its first request (``ClearingService.publish_settled``)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Protocol

log = logging.getLogger("qev.publisher")


class _Publishes(Protocol):
    def publish_settled(self, worker: str) -> list[int]: ...


class Publisher:
    """Checks every ``interval`` seconds (0: never; ``/book`` is then built on its first
    request), at a lower CPU priority than the worker's request handling."""

    def __init__(self, service: _Publishes, interval: float) -> None:
        self._service, self._interval = service, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once; nothing with interval 0)."""
        if self._interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="qev-publisher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a build under way finishes first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: a thread has its own nice
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        worker = f"{os.uname().nodename}:{os.getpid()}"
        while not self._stop.wait(self._interval):
            try:
                for auction_id in self._service.publish_settled(worker):
                    log.info(
                        "published book built ahead of requests",
                        extra={"auction_id": auction_id},
                    )
            except Exception as e:  # never kill the worker: /book still builds on request
                log.warning("publishing failed: %s", type(e).__name__, extra={"error": str(e)})


__all__ = ["Publisher"]
