"""Store fixtures: every shared test runs against a fresh SQLite file and a fresh PG schema.

The PostgreSQL tests use a real server (``QEV_TEST_PG_DSN``, default
``postgresql://postgres@127.0.0.1:5432/test``); if it cannot be reached they FAIL, on purpose.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from clearing.store.base import BidStore, CancelBid, PutBid
from clearing.store.postgres import PostgresBidStore
from clearing.store.sqlite import SqliteBidStore

PG_DSN = os.environ.get("QEV_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
CONTROLLER = bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8")


def put_op(auction_id: int, redemption_id: int, tag: str, received_at: int = 1_000) -> PutBid:
    """A PutBid whose ciphertext and signature are derived from ``tag``."""
    ciphertext = b"ciphertext:" + tag.encode()
    signature = hashlib.sha256(b"sig:" + tag.encode()).digest() * 2 + b"\x1b"
    return PutBid(
        auction_id=auction_id,
        redemption_id=redemption_id,
        controller=CONTROLLER,
        ciphertext=ciphertext,
        ciphertext_hash=hashlib.sha256(ciphertext).digest(),
        signature=signature,
        received_at=received_at,
    )


def cancel_op(auction_id: int, redemption_id: int, ciphertext_hash: bytes) -> CancelBid:
    """A CancelBid naming ``ciphertext_hash``."""
    return CancelBid(
        auction_id=auction_id,
        redemption_id=redemption_id,
        controller=CONTROLLER,
        ciphertext_hash=ciphertext_hash,
        signature=b"\x02" * 64 + b"\x1c",
        received_at=2_000,
    )


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The test server's DSN; fails (never skips) if the server does not answer."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL test server unreachable at {PG_DSN} ({exc}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or point QEV_TEST_PG_DSN at one.",
            pytrace=False,
        )
    return PG_DSN


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A throwaway schema name, dropped (with everything in it) after the test."""
    name = f"qev_test_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def make_pg_store(dsn: str, schema: str, max_size: int = 4) -> PostgresBidStore:
    """A PostgreSQL store in ``schema`` (one pool: one "replica")."""
    return PostgresBidStore(dsn, min_size=1, max_size=max_size, schema=schema)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BidStore]:
    """A migrated, empty store of each backend."""
    backend: BidStore
    if request.param == "sqlite":
        backend = SqliteBidStore(tmp_path / "bids.db")
    else:
        schema = request.getfixturevalue("pg_schema")
        backend = make_pg_store(request.getfixturevalue("pg_dsn"), schema)
    backend.migrate()
    yield backend
    backend.close()


def run_threads(
    targets: list[Callable[[], None]], *, together: bool = True, timeout: float = 60
) -> None:
    """Run each target on its own thread (started at one barrier if ``together``), join them
    within ``timeout`` and re-raise nothing silently: any exception fails the test."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets)) if together else None

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                if barrier is not None:
                    barrier.wait()
                fn()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not errors, errors
