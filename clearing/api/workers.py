"""Several uvicorn worker processes, each accepting on its own ``SO_REUSEPORT`` socket.

``uvicorn --workers`` shares one listening socket, and whichever worker wins the accept race
takes the connection: with long-lived keep-alive clients one worker often ends up with three
times the other's share (seen here: 24 of 32 connections) and the machine idles while it is
saturated. Here every worker has its own listening socket in one ``SO_REUSEPORT`` group, so
the kernel spreads connections over the workers by a hash of the client's address and port.

The supervisor binds the sockets (so a taken port fails at once), starts one worker per
socket, replaces a worker that dies on the same socket, and on SIGINT/SIGTERM/SIGHUP stops
them all with SIGTERM (each drains its queued commits) and waits for them.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
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


def run_workers(config: Config, workers: int) -> int:
    """Serve ``config`` (an import string app) from ``workers`` processes until signalled.

    Returns the exit status: 0 after a signal, 3 if a worker failed to start.
    """
    if not isinstance(config.app, str):
        raise ValueError("worker processes need the app as an import string")
    sockets = reuseport_sockets(config.host, config.port, workers)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    processes = [Process(config, [sock]) for sock in sockets]
    status = 0
    try:
        for process in processes:
            process.start()
        log.info("serving on %s:%d with %d workers", config.host, config.port, workers)
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    log.error("worker %s failed to start; stopping", process.pid)
                    status = STARTUP_FAILURE
                    stop.set()
                    break
                log.warning("worker %s exited with %s; replacing it", process.pid, process.exitcode)
                processes[i] = Process(config, [sockets[i]])
                processes[i].start()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()
        for sock in sockets:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


__all__ = ["reuseport_sockets", "run_workers"]
