"""Several uvicorn worker processes, each accepting on its own ``SO_REUSEPORT`` socket.

``uvicorn --workers`` shares one listening socket, and whichever worker wins the accept race
takes the connection: with long-lived keep-alive clients one worker often ends up with three
times the other's share (seen here: 24 of 32 connections) and the machine idles while it is
saturated. Here every worker has its own listening socket in one ``SO_REUSEPORT`` group, so
the kernel spreads connections over the workers by a hash of the client's address and port.

The supervisor binds the sockets (so a taken port fails at once), starts one worker per
socket, replaces a worker that dies on the same socket (backing off, and giving up if
replacements keep dying at start), and on SIGINT/SIGTERM/SIGHUP stops them all with SIGTERM
(each drains its queued commits), killing any that has not stopped after a grace period.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from types import FrameType

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Process

log = logging.getLogger("qev.workers")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def reuseport_sockets(host: str, port: int, count: int, backlog: int = 2048) -> list[socket.socket]:
    """``count`` listening TCP sockets on ``host:port`` in one ``SO_REUSEPORT`` group.

    With ``port=0`` the first socket picks a free port and the others join it. Raises
    ``OSError`` if anything already listens on the port, including such a group.
    """
    if count < 1:
        raise ValueError("count must be >= 1")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if port:
        # SO_REUSEPORT would let this group join another service's (same user) listeners on
        # the port and silently split its traffic: a plain bind first fails if one exists
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Slot:
    """One socket and the worker process currently serving it."""

    def __init__(self, config: Config, sock: socket.socket) -> None:
        self.config, self.sock = config, sock
        self.process: Process | None = None
        self.started_at = 0.0
        self.quick_exits = 0  # consecutive exits soon after a start
        self.restart_at = 0.0

    def start(self) -> None:
        self.process = Process(self.config, [self.sock])
        self.started_at = time.monotonic()
        self.process.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.process.is_alive()

    def terminate(self) -> None:
        """Send the worker SIGTERM (it drains its queued commits and exits); never raises."""
        process = self.process
        if process is None or process.pid is None:
            return
        try:
            process.terminate()
        except Exception:  # the other workers must still be stopped
            log.exception("stopping worker %s failed", process.pid)

    def reap(self, deadline: float) -> None:
        """Wait for the worker until ``deadline`` (monotonic), then SIGKILL; never raises."""
        process, self.process = self.process, None
        if process is None or process.pid is None:
            return
        try:
            process.process.join(max(0.0, deadline - time.monotonic()))
            if process.process.is_alive():
                log.error("worker %s did not stop in time; killing it", process.pid)
                process.kill()
                process.process.join(5)
        except Exception:
            log.exception("stopping worker %s failed", process.pid)


def run_workers(
    config: Config,
    workers: int,
    *,
    grace: float = 30.0,
    max_quick_exits: int = 5,
    quick: float = 10.0,
) -> int:
    """Serve ``config`` (an import string app) from ``workers`` processes until signalled.

    A worker that exits is replaced on its socket, after a back-off that doubles (up to 5 s)
    while replacements keep exiting within ``quick`` seconds of their start; after
    ``max_quick_exits`` such exits in a row (a store that cannot be opened, a bad setting)
    the supervisor gives up. On SIGINT/SIGTERM/SIGHUP every worker gets SIGTERM and
    ``grace`` seconds to drain before SIGKILL. Returns 0 after a signal, 3 on giving up.
    """
    if not isinstance(config.app, str):
        raise ValueError("worker processes need the app as an import string")
    sockets = reuseport_sockets(config.host, config.port, workers)
    signals: list[int] = []  # a handler may only append: it runs between any two bytecodes

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signals.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    slots = [_Slot(config, sock) for sock in sockets]
    status = 0
    try:
        for slot in slots:
            slot.start()
        log.info("serving on %s:%d with %d workers", config.host, config.port, workers)
        while not signals and status == 0:
            time.sleep(0.2)
            for slot in slots:
                status = status or _tend(slot, max_quick_exits, quick)
    finally:
        for slot in slots:  # all at once: the workers drain side by side
            slot.terminate()
        deadline = time.monotonic() + grace
        for slot in slots:
            slot.reap(deadline)
        for sock in sockets:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _tend(slot: _Slot, max_quick_exits: int, quick: float) -> int:
    """Replace ``slot``'s worker if it exited (with back-off); STARTUP_FAILURE to give up."""
    now = time.monotonic()
    if slot.alive() or now < slot.restart_at:
        return 0
    process = slot.process
    if process is not None:  # it just exited: decide when to replace it
        failed_start = process.exitcode == STARTUP_FAILURE or now - slot.started_at < quick
        slot.quick_exits = slot.quick_exits + 1 if failed_start else 0
        log.warning("worker %s exited with %s", process.pid, process.exitcode)
        slot.process = None
        if slot.quick_exits >= max_quick_exits:
            log.error("workers keep exiting right after they start; giving up")
            return STARTUP_FAILURE
        slot.restart_at = now + (min(0.5 * 2 ** (slot.quick_exits - 1), 5.0) if failed_start else 0)
        if slot.restart_at > now:
            return 0
    slot.start()
    return 0


__all__ = ["reuseport_sockets", "run_workers"]
