"""Helpers of the edge tests: settings, a served app, raw sockets, a slow chain, a launcher.

``python -m tests.faults.edge_support --data DIR --port N [--nofile N] [--set k=v ...]``
serves the service (in-memory redemptions) with ``uvicorn_config``, optionally under an
``RLIMIT_NOFILE`` of its own (the fd exhaustion test needs a process of its own for that).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from clearing.api.edge_limits import uvicorn_config
from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.eip712 import Eip712Domain
from clearing.hexcodec import parse_address
from clearing.keyfiles import create_key
from clearing.model import Envelope
from clearing.redemptions import InMemoryRedemptions, RedemptionInfo
from clearing.signing import Signer
from tests.integration.conftest import AUCTION, GENESIS, SETTLEMENT, Clock, envelope_body

E18 = 10**18
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_data(data: Path) -> None:
    """The master secret and receipt key files the service reads (created once)."""
    data.mkdir(parents=True, exist_ok=True)
    for name, what in (("master.key", "master secret"), ("service.key", "receipt signing key")):
        if not (data / name).exists():
            create_key(data / name, what)


def edge_settings(data: Path, **overrides: Any) -> ServiceSettings:
    """Service settings for ``data`` with short edge timeouts and generous rate limits."""
    prepare_data(data)
    values: dict[str, Any] = {
        "store_url": f"sqlite:///{data / 'qev.db'}",
        "chain_id": 31337,
        "settlement": SETTLEMENT,
        "genesis": GENESIS,
        "service_key_file": data / "service.key",
        "master_secret_file": data / "master.key",
        "client_rate": 10_000.0,
        "client_burst": 10_000,
        "controller_rate": 10_000.0,
        "controller_burst": 10_000,
        "header_timeout": 1.0,
        "body_timeout": 1.0,
        "keep_alive_timeout": 1.0,
        "log_level": "warning",
    }
    values.update(overrides)
    return ServiceSettings(**values)


def domain_of(settings: ServiceSettings) -> Eip712Domain:
    assert settings.chain_id is not None and settings.settlement is not None
    return Eip712Domain(
        settings.domain_name(),
        settings.domain_version(),
        settings.chain_id,
        parse_address(settings.settlement),
    )


def bid_body(signer: Signer, domain: Eip712Domain, redemption_id: int, tag: int = 0) -> dict:
    """A validly signed (not decryptable: intake does not open it) POST body."""
    ciphertext = tag.to_bytes(8, "big") * 50  # 400 bytes
    unsigned = Envelope(AUCTION, redemption_id, signer.address, ciphertext, b"")
    signature = signer.sign_digest(unsigned.digest(domain))
    return envelope_body(Envelope(AUCTION, redemption_id, signer.address, ciphertext, signature))


class SlowChain:
    """A blocking ``RedemptionReader``: known requests at once, unknown ones after ``delay``."""

    blocking = True

    def __init__(self, known: dict[int, RedemptionInfo], delay: float) -> None:
        self.known, self.delay = known, delay
        self.calls: Counter[int] = Counter()
        self._lock = threading.Lock()

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        with self._lock:
            self.calls[redemption_id] += 1
        info = self.known.get(redemption_id)
        if info is None:
            time.sleep(self.delay)
        return info

    def unknown_reads(self) -> int:
        with self._lock:
            return sum(n for rid, n in self.calls.items() if rid not in self.known)


@contextlib.contextmanager
def serving(app: Any, settings: ServiceSettings) -> Iterator[str]:
    """Serve ``app`` with ``uvicorn_config(app, settings)`` in a thread; yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, settings, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def served_app(settings: ServiceSettings, redemptions: Any = None, **kwargs: Any) -> Any:
    """``build_app`` with the test clock (an hour before the current auction closes)."""
    return build_app(
        settings,
        redemptions if redemptions is not None else InMemoryRedemptions(),
        clock=Clock(AUCTION - 3600),
        **kwargs,
    )


# --- raw sockets ------------------------------------------------------------------------


def connect(port: int, source: str | None = None) -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", port), timeout=5, source_address=(source, 0) if source else None
    )
    sock.setblocking(False)
    return sock


def wait_closed(
    socks: list[socket.socket], deadline: float
) -> tuple[dict[socket.socket, float], dict[socket.socket, bytes]]:
    """Read every socket until the server closes it or ``deadline`` (monotonic) passes.

    Returns when each closed (monotonic) and what each received.
    """
    import selectors

    closed: dict[socket.socket, float] = {}
    received: dict[socket.socket, bytes] = {s: b"" for s in socks}
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        while len(closed) < len(socks) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, min(0.2, deadline - time.monotonic()))):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[s] += chunk
                else:
                    closed[s] = time.monotonic()
                    sel.unregister(s)
    return closed, received


def http_get(url: str, path: str, timeout: float = 2.0, **kwargs: Any) -> httpx.Response:
    return httpx.get(url + path, timeout=timeout, **kwargs)


# --- a server process of its own ---------------------------------------------------------


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of ``pid`` in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextlib.contextmanager
def server_process(
    data: Path, nofile: int | None = None, **overrides: Any
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The service in a process of its own (this module's ``main``); yields URL and process."""
    prepare_data(data)
    port = free_port()
    cmd = [sys.executable, "-m", "tests.faults.edge_support", "--data", str(data)]
    cmd += ["--port", str(port), "--settings", json.dumps(overrides)]
    if nofile is not None:
        cmd += ["--nofile", str(nofile)]
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (data / "server.log").read_text()
            assert time.monotonic() < deadline, "server process did not start"
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--nofile", type=int, default=None)
    parser.add_argument("--settings", default="{}")
    args = parser.parse_args()
    if args.nofile is not None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
    settings = edge_settings(Path(args.data), **json.loads(args.settings))
    app = served_app(settings)
    uvicorn.Server(uvicorn_config(app, settings, host="127.0.0.1", port=args.port)).run()


if __name__ == "__main__":
    main()
