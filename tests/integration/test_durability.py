"""kill -9 the service mid-stream: every bid that got a receipt is there after restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from clearing.api.devserver import current_genesis, holder_key
from clearing.model import Bid
from clearing.signing import Signer
from clearing.store import open_store
from qev.sdk import BidderClient

ROOT = Path(__file__).resolve().parents[2]
E18 = 10**18


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(db: Path, data: Path, port: int, genesis: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clearing.api.devserver",
            "--store",
            f"sqlite:///{db}",
            "--data",
            str(data),
            "--port",
            str(port),
            "--genesis",
            str(genesis),
            "--seed",
            "durable",
            "--holders",
            "1000",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"service did not start: {proc.stderr.read() if proc.stderr else ''}")


def test_acknowledged_bids_survive_kill_9(tmp_path):
    db, data, port = tmp_path / "qev.db", tmp_path / "data", _free_port()
    genesis = current_genesis()
    proc = _start(db, data, port, genesis)
    url = f"http://127.0.0.1:{port}"
    holders = [Signer(holder_key("durable", i)) for i in range(400)]
    auction = httpx.get(f"{url}/v1/auctions/current").json()
    clients = [BidderClient(url, h, timeout=5) for h in holders]
    envelopes = [
        c.seal(auction, Bid(auction["auction_id"], i, 10 * E18, 10 + i, 0))
        for i, c in enumerate(clients)
    ]
    acked: dict[int, tuple[int, bytes]] = {}
    failed: list[int] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        try:
            done = clients[i].submit_envelope(envelopes[i])
        except Exception:
            with lock:
                failed.append(i)
            return
        with lock:
            acked[i] = (done.receipt.sequence, done.envelope.ciphertext_hash)
            if len(acked) == 150:
                os.kill(proc.pid, signal.SIGKILL)  # mid-stream: requests are in flight

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, range(len(envelopes))))
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 150 and failed, (len(acked), len(failed))

    proc = _start(db, data, port, genesis)
    try:
        for i, (sequence, ciphertext_hash) in acked.items():
            status = clients[i].status(auction["auction_id"], i)
            receipt = clients[i].verify_receipt(status["receipt"], auction["auction_id"], i)
            assert (receipt.sequence, receipt.ciphertext_hash) == (sequence, ciphertext_hash)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        for c in clients:
            c.close()
    store = open_store(f"sqlite:///{db}")
    try:
        live = store.live_bids(auction["auction_id"])
        sequences = [b.sequence for b in live]
        assert len(set(sequences)) == len(sequences)  # none half-written or duplicated
        assert {b.redemption_id for b in live} >= set(acked)
        for b in live:  # whatever was written is whole: it matches what the holder sealed
            assert b.ciphertext == envelopes[b.redemption_id].ciphertext
    finally:
        store.close()
    print(f"durability: acked {len(acked)}, refused/in-flight {len(failed)}, lost 0")
