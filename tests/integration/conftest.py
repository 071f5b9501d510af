"""A real service on a free loopback port (uvicorn in a thread), on SQLite or PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.calendar import REDEMPTION_WINDOW
from clearing.hexcodec import to_checksum_address, to_hex
from clearing.keyfiles import create_key
from clearing.model import Envelope
from clearing.redemptions import InMemoryRedemptions, RedemptionInfo
from clearing.signing import Signer
from clearing.store import open_store
from tests.conftest import make_key

GENESIS = 1_735_689_600
AUCTION = GENESIS + 24 * REDEMPTION_WINDOW
SETTLEMENT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
E18 = 10**18


class Clock:
    """The service clock, moved by the tests."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass
class Service:
    url: str
    clock: Clock
    redemptions: InMemoryRedemptions
    store: object
    service_address: bytes
    holders: list[Signer]
    master_secret: bytes
    app: object


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store_url(kind: str, tmp_path: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'qev.db'}", None
    schema = "qev_it_" + uuid.uuid4().hex[:12]
    return f"{PG_URL}?schema={schema}", schema


def _drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def start_server(app: object) -> tuple[str, uvicorn.Server, threading.Thread]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; wait until it listens."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("service did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(params=["sqlite", "postgres"])
def service(request, tmp_path) -> Iterator[Service]:
    url, schema = _store_url(request.param, tmp_path)
    holders = [Signer(make_key(f"it-holder-{i}")) for i in range(4)]
    redemptions = InMemoryRedemptions()
    for i, h in enumerate(holders):
        redemptions.add(RedemptionInfo(100 + i, h.address, (i + 1) * 10 * E18, AUCTION - 86_400))
    settings = ServiceSettings(
        store_url=url,
        chain_id=31337,
        settlement=SETTLEMENT,
        genesis=GENESIS,
        service_key_file=tmp_path / "service.key",
        master_secret_file=tmp_path / "master.key",
        controller_rate=1000.0,
        controller_burst=1000,
        client_rate=1000.0,
        client_burst=1000,
        commit_max_wait=0.001,
        publish_interval=0.05,
    )
    create_key(tmp_path / "master.key", "master secret")  # never created implicitly
    create_key(tmp_path / "service.key", "receipt signing key")
    clock = Clock(AUCTION - 3600)
    store = open_store(url)
    app = build_app(settings, redemptions, store=store, clock=clock)
    url, server, thread = start_server(app)
    address = Signer(bytes.fromhex((tmp_path / "service.key").read_text().strip())).address
    try:
        master = bytes.fromhex((tmp_path / "master.key").read_text().strip())
        yield Service(url, clock, redemptions, store, address, holders, master, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if schema:
            _drop_schema(schema)


def envelope_body(env: Envelope) -> dict[str, str]:
    """The DESIGN 4 POST body of a sealed envelope."""
    return {
        "redemption_id": str(env.redemption_id),
        "controller": to_checksum_address(env.controller),
        "ciphertext": to_hex(env.ciphertext),
        "signature": to_hex(env.signature),
    }


def problem_code(response: httpx.Response) -> str:
    """The ``code`` of a problem+json response (which must be one, with status and detail)."""
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == response.status_code and body["detail"]
    return str(body["code"])
