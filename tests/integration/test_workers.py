"""Worker processes on SO_REUSEPORT sockets: spread, replacement, port checks, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest
import uvicorn

from clearing.api.workers import reuseport_sockets, run_workers
from loadtests.harness import DevService, free_port, http_request, run_drive, stable_genesis


def _workers(supervisor: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = []
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:  # exited meanwhile
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            workers.append(int(pid))
    return workers


def broken_app() -> None:
    """An app factory that fails, as one whose store cannot be opened would."""
    raise RuntimeError("store unreachable")


def _established(port: int) -> set[int]:
    """Socket inodes of the established TCP connections whose local port is ``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == "01":  # 01 = ESTABLISHED
            inodes.add(int(fields[9]))
    return inodes


def _connections_of(pid: int, inodes: set[int]) -> int:
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and int(target[8:-1]) in inodes:
            count += 1
    return count


def _wait_for(predicate, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_reuseport_group_shares_a_port_and_refuses_a_taken_one() -> None:
    group = reuseport_sockets("127.0.0.1", 0, 3)
    try:
        port = group[0].getsockname()[1]
        assert {s.getsockname()[1] for s in group} == {port}
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(60)]
        accepted = []
        for s in group:
            s.setblocking(False)
            n = 0
            while True:
                try:
                    conn, _ = s.accept()
                except BlockingIOError:
                    break
                conn.close()
                n += 1
            accepted.append(n)
        assert sum(accepted) == 60
        assert all(n > 0 for n in accepted), accepted  # (2/3)^60 per socket to see none
        for c in clients:
            c.close()
        with pytest.raises(OSError):  # a second group would split this one's traffic
            reuseport_sockets("127.0.0.1", port, 2)
    finally:
        for s in group:
            s.close()
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        with pytest.raises(OSError):
            reuseport_sockets("127.0.0.1", plain.getsockname()[1], 2)
    with pytest.raises(ValueError):
        reuseport_sockets("127.0.0.1", 0, 0)


def test_workers_share_connections_are_replaced_and_stop_on_sigterm(tmp_path: Path) -> None:
    service = DevService(
        f"sqlite:///{tmp_path / 'qev.db'}",
        tmp_path / "data",
        genesis=stable_genesis(),
        seed="workers",
        holders=10,
        workers=2,
        log=tmp_path / "service.log",
    ).start()
    assert service.proc is not None
    supervisor = service.proc.pid
    try:
        # ready means one worker answered; the other may still be starting (seen in CI)
        assert _wait_for(lambda: len(_workers(supervisor)) == 2)
        workers = _workers(supervisor)
        # 64 keep-alive connections, all held open: each worker must serve a fair share
        clients = []
        for _ in range(64):
            c = socket.create_connection(("127.0.0.1", service.port), timeout=10)
            c.sendall(http_request("GET", "/healthz"))
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
            clients.append(c)
        inodes = _established(service.port)
        shares = [_connections_of(pid, inodes) for pid in workers]
        for c in clients:
            c.close()
        assert sum(shares) == 64
        assert min(shares) >= 12, shares  # a hash spread; uvicorn's accept race gave 8 of 32

        # a worker that dies is replaced on its socket: no connection is left unanswered
        os.kill(workers[0], signal.SIGKILL)
        assert _wait_for(
            lambda: len(_workers(supervisor)) == 2 and workers[0] not in _workers(supervisor)
        )
        ready = [http_request("GET", "/readyz")] * 64
        assert _wait_for(
            lambda: all(r.status == 200 for r in run_drive(service.port, ready, 16, timeout=5.0))
        )

        # SIGTERM to the supervisor alone stops every worker and exits 0
        workers = _workers(supervisor)
        os.kill(supervisor, signal.SIGTERM)
        assert service.proc.wait(timeout=30) == 0
        assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        service.stop()


def test_supervisor_gives_up_when_workers_keep_failing_at_start() -> None:
    config = uvicorn.Config(
        "tests.integration.test_workers:broken_app",
        factory=True,
        host="127.0.0.1",
        port=free_port(),
        log_level="critical",
    )
    started = time.monotonic()
    assert run_workers(config, 2, max_quick_exits=2, grace=5) == 3  # STARTUP_FAILURE
    assert time.monotonic() - started < 60
    with socket.socket() as again:  # every socket was closed: the port is free again
        again.bind(("127.0.0.1", config.port))
