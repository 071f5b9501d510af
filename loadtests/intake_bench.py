"""Durable intake throughput: acknowledged sealed bids/s and latency, beside /healthz.

Starts the dev service (uvicorn, real HTTP, SQLite WAL synchronous=FULL or PostgreSQL),
seals N bids ahead of time (so the generator measures the server, not itself), then drives
them over C keep-alive connections with a minimal HTTP/1.1 client, and finally measures
``/healthz`` the same way in the same run.

    .venv/bin/python loadtests/intake_bench.py [--store sqlite|postgres] [--bids 12000]
        [--connections 64] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clearing.api.devserver import current_genesis, holder_key  # noqa: E402
from clearing.bidding import seal_bid  # noqa: E402
from clearing.eip712 import Eip712Domain  # noqa: E402
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex  # noqa: E402
from clearing.model import Bid  # noqa: E402
from clearing.signing import Signer  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seal_range(args: tuple[dict, int, int, str]) -> list[bytes]:
    auction, start, end, seed = args
    domain = Eip712Domain(
        auction["eip712"]["name"],
        auction["eip712"]["version"],
        auction["chain_id"],
        parse_address(auction["settlement"]),
    )
    pk = from_hex(auction["public_key"], 32)
    t = auction["auction_id"]
    out = []
    for i in range(start, end):
        signer = Signer(holder_key(seed, i))
        env = seal_bid(signer, Bid(t, i, 10**18 * 10, 10 + i % 9990, 0), domain, pk)
        body = orjson.dumps(
            {
                "redemption_id": str(i),
                "controller": to_checksum_address(signer.address),
                "ciphertext": to_hex(env.ciphertext),
                "signature": to_hex(env.signature),
            }
        )
        out.append(
            f"POST /v1/auctions/{t}/bids HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return out


async def _drive(
    port: int, requests: list[bytes], connections: int
) -> tuple[float, list[float], dict[int, int]]:
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                req = queue.pop()
                t0 = time.perf_counter()
                writer.write(req)
                status_line = await reader.readline()
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                code = int(status_line.split()[1])
                statuses[code] = statuses.get(code, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(conn() for _ in range(connections)))
    return time.perf_counter() - t0, latencies, statuses


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--bids", type=int, default=12_000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qev-intake-"))
    seed = uuid.uuid4().hex[:8]
    schema = f"qev_bench_{seed}"
    store = f"sqlite:///{tmp / 'qev.db'}" if args.store == "sqlite" else f"{PG}?schema={schema}"
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clearing.api.devserver",
            "--store",
            store,
            "--data",
            str(tmp),
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--seed",
            seed,
            "--holders",
            str(args.bids),
            "--genesis",
            str(current_genesis()),
        ],
        cwd=ROOT,
    )
    try:
        for _ in range(200):
            try:
                auction = httpx.get(
                    f"http://127.0.0.1:{port}/v1/auctions/current", timeout=1
                ).json()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        t = time.perf_counter()
        step = -(-args.bids // 8)
        with ProcessPoolExecutor(2) as pool:
            parts = pool.map(
                _seal_range,
                [(auction, s, min(s + step, args.bids), seed) for s in range(0, args.bids, step)],
            )
            requests = [r for part in parts for r in part]
        print(f"sealed {len(requests)} bids in {time.perf_counter() - t:.1f} s (not timed below)")
        elapsed, lat, statuses = asyncio.run(_drive(port, requests, args.connections))
        acked = statuses.get(201, 0) + statuses.get(200, 0)
        rate = acked / elapsed
        health = [b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"] * args.bids
        h_elapsed, h_lat, h_status = asyncio.run(_drive(port, health, args.connections))
        h_rate = h_status.get(200, 0) / h_elapsed
        print(f"store={args.store} workers={args.workers} connections={args.connections}")
        print(
            f"intake : {rate:8.0f} acked bids/s  p50 {_pct(lat, 0.5):6.1f} ms  "
            f"p99 {_pct(lat, 0.99):6.1f} ms  statuses {statuses}"
        )
        print(
            f"healthz: {h_rate:8.0f} req/s        p50 {_pct(h_lat, 0.5):6.1f} ms  "
            f"p99 {_pct(h_lat, 0.99):6.1f} ms"
        )
        print(
            f"ratio intake/healthz: {rate / h_rate:.2f}  "
            "(targets: >= 1500 bids/s, p99 <= 100 ms, ratio >= 0.5)"
        )
        return 0 if acked == args.bids else 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        if args.store == "postgres":
            import psycopg

            with psycopg.connect(PG, autocommit=True) as c:
                c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
