"""Shared by the load runner and tests/faults: dev service processes, pre-sealing, raw HTTP.

Everything talks to 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import orjson

from clearing.api.devserver import holder_key
from clearing.bidding import seal_bid, sign_cancel
from clearing.calendar import REDEMPTION_WINDOW
from clearing.eip712 import Eip712Domain
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.model import Bid
from clearing.signing import Signer

ROOT = Path(__file__).resolve().parents[1]
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
E18 = 10**18
DAY = 86_400


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stable_genesis(now: int | None = None) -> int:
    """A genesis (whole day) that puts ``now`` mid-window and stays the same all day.

    A stable genesis keeps the current auction id, hence pre-sealed data, valid across runs.
    """
    now = int(time.time()) if now is None else now
    return (now - REDEMPTION_WINDOW - REDEMPTION_WINDOW // 2) // DAY * DAY


def pg_url(schema: str, base: str = PG_URL) -> str:
    """A store URL for ``schema`` on the PostgreSQL server ``base``."""
    return f"{base}?schema={schema}"


def drop_pg_schema(schema: str, base: str = PG_URL) -> None:
    """Drop a throwaway schema (ignores an unreachable server)."""
    import psycopg

    with (
        contextlib.suppress(psycopg.OperationalError),
        psycopg.connect(base, autocommit=True, connect_timeout=5) as conn,
    ):
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class DevService:
    """``python -m clearing.api.devserver`` as a child process on a loopback port."""

    def __init__(
        self,
        store: str,
        data: Path,
        *,
        genesis: int,
        seed: str,
        holders: int,
        workers: int = 1,
        port: int | None = None,
        log: Path | None = None,
    ) -> None:
        self.store, self.data, self.genesis, self.seed = store, data, genesis, seed
        self.holders, self.workers = holders, workers
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> DevService:
        """Start the process and wait until ``/readyz`` answers 200."""
        return self.spawn().wait_ready(timeout)

    def spawn(self) -> DevService:
        """Start the process (not waiting for it)."""
        with open(self.log or os.devnull, "ab") as out:  # the child keeps its own descriptor
            self.proc = self._popen(out)
        return self

    def _popen(self, out: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clearing.api.devserver",
                "--store",
                self.store,
                "--data",
                str(self.data),
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--genesis",
                str(self.genesis),
                "--seed",
                self.seed,
                "--holders",
                str(self.holders),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,  # kill -9 reaches uvicorn's workers through the group
        )

    def wait_ready(self, timeout: float = 30.0) -> DevService:
        """Wait until ``/readyz`` answers 200 (RuntimeError if the process dies or times out)."""
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dev service exited with {self.proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"dev service not ready after {timeout} s")

    def auction(self, auction_id: int | None = None) -> dict[str, Any]:
        """The current (or a given) auction document."""
        path = "current" if auction_id is None else str(auction_id)
        doc: dict[str, Any] = httpx.get(f"{self.url}/v1/auctions/{path}", timeout=5).json()
        return doc

    def kill9(self) -> None:
        """SIGKILL the whole process group (uvicorn supervisor and workers)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful: queued commits finish), then SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def __enter__(self) -> DevService:
        return self.start() if self.proc is None else self

    def __exit__(self, *_: object) -> None:
        self.stop()


# --- pre-sealing ---------------------------------------------------------------------


def local_auction(data: Path, genesis: int, auction_id: int) -> dict[str, Any]:
    """The auction document a dev service on ``data`` will serve, computed without it.

    Creates the data dir's keys if missing, as the dev service would, so envelopes can be
    sealed before the service starts.
    """
    from clearing.api.devserver import dev_settings
    from clearing.api.keys import DerivedAuctionKeys
    from clearing.keyfiles import load_or_create_key

    data.mkdir(parents=True, exist_ok=True)
    load_or_create_key(data / "service.key")
    settings = dev_settings("sqlite:///unused", data, genesis)
    keys = DerivedAuctionKeys(load_or_create_key(data / "master.key"))
    public_key = keys.public_key(auction_id)
    assert public_key is not None and settings.settlement is not None
    return {
        "auction_id": auction_id,
        "public_key": to_hex(public_key),
        "chain_id": settings.chain_id,
        "settlement": to_checksum_address(parse_address(settings.settlement)),
        "eip712": {"name": settings.domain_name(), "version": settings.domain_version()},
    }


def domain_of(auction: dict[str, Any]) -> Eip712Domain:
    """The EIP-712 domain an auction document announces."""
    return Eip712Domain(
        auction["eip712"]["name"],
        auction["eip712"]["version"],
        int(auction["chain_id"]),
        parse_address(auction["settlement"]),
    )


@dataclass(frozen=True, slots=True)
class Sealed:
    """A ready-to-POST envelope body and the hash a cancel must name."""

    redemption_id: int
    body: bytes
    ciphertext_hash: bytes


def seal_one(
    auction: dict[str, Any], signer: Signer, redemption_id: int, basis_point: int
) -> Sealed:
    """Seal and sign one bid of ``10 * 1e18`` shares; the POST body as JSON bytes."""
    t = int(auction["auction_id"])
    env = seal_bid(
        signer,
        Bid(t, redemption_id, 10 * E18, basis_point, 0),
        domain_of(auction),
        from_hex(auction["public_key"], 32),
    )
    body = orjson.dumps(
        {
            "redemption_id": str(redemption_id),
            "controller": to_checksum_address(signer.address),
            "ciphertext": to_hex(env.ciphertext),
            "signature": to_hex(env.signature),
        }
    )
    return Sealed(redemption_id, body, env.ciphertext_hash)


def cancel_body(
    auction: dict[str, Any], signer: Signer, redemption_id: int, ciphertext_hash: bytes
) -> bytes:
    """A signed ``CancelBid`` body naming ``ciphertext_hash``."""
    sig = sign_cancel(
        signer, domain_of(auction), int(auction["auction_id"]), redemption_id, ciphertext_hash
    )
    return orjson.dumps(
        {
            "controller": to_checksum_address(signer.address),
            "ciphertext_hash": to_hex(ciphertext_hash),
            "signature": to_hex(sig),
        }
    )


def _seal_chunk(args: tuple[dict[str, Any], str, list[tuple[int, int, int]]]) -> list[Sealed]:
    auction, seed, specs = args
    return [seal_one(auction, Signer(holder_key(seed, h)), rid, bp) for h, rid, bp in specs]


def seal_many(
    auction: dict[str, Any],
    seed: str,
    specs: Sequence[tuple[int, int, int]],
    processes: int = 2,
) -> list[Sealed]:
    """Seal ``(holder, redemption_id, basis_point)`` specs in ``processes`` processes, in order."""
    if len(specs) < 200 or processes < 2:
        return _seal_chunk((auction, seed, list(specs)))
    step = -(-len(specs) // (processes * 4))
    chunks = [(auction, seed, list(specs[i : i + step])) for i in range(0, len(specs), step)]
    with ProcessPoolExecutor(processes) as pool:
        return [s for part in pool.map(_seal_chunk, chunks) for s in part]


# --- a minimal HTTP/1.1 keep-alive driver ---------------------------------------------


def http_request(method: str, path: str, body: bytes = b"") -> bytes:
    """A raw HTTP/1.1 request (JSON body if any)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


@dataclass(slots=True)
class Reply:
    """One response; ``status`` 0 means none, and ``error`` says why (refused, reset,
    timeout, not sent)."""

    status: int
    body: bytes
    latency: float
    error: str = ""

    def json(self) -> Any:
        """The body as JSON."""
        return orjson.loads(self.body)


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("connection closed")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(status_line.split()[1]), await reader.readexactly(length)


async def drive(
    port: int,
    requests: Sequence[bytes],
    connections: int = 32,
    *,
    timeout: float = 10.0,
    deadline: float | None = None,
    on_reply: Callable[[int, Reply], None] | None = None,
    stagger: float = 0.0,
) -> list[Reply]:
    """Send ``requests`` over ``connections`` keep-alive connections; replies in order.

    A request whose connection fails gets ``Reply(0, b"", ...)`` and the connection is
    re-opened for the next one; nothing is retried (a retry could hide a lost ack).
    ``deadline`` (monotonic) stops sending: unsent requests get status 0 too.
    ``on_reply(index, reply)`` is called as each reply arrives (on the event loop).
    ``stagger`` seconds between connection starts: a burst of connects is all accepted by
    one uvicorn worker (each worker's accept loop drains the shared backlog), a ramp spreads
    them over the workers as real clients arriving over time would.
    """
    replies: list[Reply | None] = [None] * len(requests)
    todo = iter(range(len(requests)))

    async def worker(k: int) -> None:
        await asyncio.sleep(k * stagger)
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for i in todo:
            if deadline is not None and time.monotonic() > deadline:
                replies[i] = Reply(0, b"", 0.0, "not sent")
                continue
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", port), timeout
                    )
                conn[1].write(requests[i])
                status, body = await asyncio.wait_for(_read_reply(conn[0]), timeout)
                replies[i] = Reply(status, body, time.perf_counter() - t0)
            except (
                OSError,
                asyncio.IncompleteReadError,
                TimeoutError,
                ValueError,
                IndexError,
            ) as e:
                why = (
                    "refused"
                    if isinstance(e, ConnectionRefusedError)
                    else "timeout"
                    if isinstance(e, TimeoutError)
                    else "reset"
                )
                replies[i] = Reply(0, b"", time.perf_counter() - t0, why)
                if conn is not None:
                    conn[1].close()
                conn = None
            if on_reply is not None:
                on_reply(i, replies[i])  # type: ignore[arg-type]
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return [r if r is not None else Reply(0, b"", 0.0, "not sent") for r in replies]


def run_drive(
    port: int, requests: Sequence[bytes], connections: int = 32, **kw: Any
) -> list[Reply]:
    """``drive`` from synchronous code."""
    return asyncio.run(drive(port, requests, connections, **kw))


def percentile(values: Iterable[float], p: float) -> float:
    """The ``p`` quantile (0..1) of ``values`` (nearest rank), 0 for none."""
    xs = sorted(values)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else 0.0


__all__ = [
    "E18",
    "PG_URL",
    "ROOT",
    "DevService",
    "Reply",
    "Sealed",
    "cancel_body",
    "domain_of",
    "drive",
    "drop_pg_schema",
    "free_port",
    "http_request",
    "local_auction",
    "percentile",
    "pg_url",
    "run_drive",
    "seal_many",
    "seal_one",
    "stable_genesis",
]
