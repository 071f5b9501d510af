"""Upgrading a database written by schema v1 to v2 (DESIGN revision 2), both backends."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from clearing.store import postgres as pg_module
from clearing.store import sqlite as sqlite_module
from clearing.store._common import load_migrations, u256_to_bytes
from clearing.store.base import (
    BidStatus,
    BidStore,
    CancelResult,
    PutOutcome,
    PutResult,
    StaleEnvelopeError,
)
from clearing.store.postgres import PostgresBidStore
from clearing.store.sqlite import SqliteBidStore
from tests.store.conftest import cancel_op, make_pg_store, put_op

A = 1_767_225_600
V1_COLUMNS = (
    "auction_id, redemption_id, controller, ciphertext, ciphertext_hash, signature,"
    " sequence, received_at, status, cancel_signature, cancelled_at"
)


def _v1_rows() -> list[tuple[object, ...]]:
    """What v1 could write: pair 1 re-posted envelope a after b (duplicate hash), pair 2
    was cancelled (cancelled_at, no cancel sequence). Columns as ``V1_COLUMNS``."""
    a, b, c = put_op(A, 1, "a"), put_op(A, 1, "b"), put_op(A, 2, "c")
    rows: list[tuple[object, ...]] = []
    for seq, op, status, cancel_sig, cancelled_at in (
        (1, a, "superseded", None, None),
        (2, b, "superseded", None, None),
        (3, a, "live", None, None),
        (4, c, "cancelled", b"\x02" * 65, 2_000),
    ):
        envelope = (op.auction_id, op.redemption_id, op.controller, op.ciphertext)
        stored = (op.ciphertext_hash, op.signature, seq, 1_000 + seq, status)
        rows.append((*envelope, *stored, cancel_sig, cancelled_at))
    return rows


@pytest.fixture(params=["sqlite", "postgres"])
def v1_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BidStore]:
    """A store whose database holds v1 rows, migrated only to v1."""
    store: BidStore
    only_v1 = [m for m in load_migrations(request.param) if m.version == 1]
    if request.param == "sqlite":
        path = tmp_path / "v1.db"
        store = SqliteBidStore(path)
        monkeypatch.setattr(sqlite_module, "load_migrations", lambda _: only_v1)
        store.migrate()
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.executemany(
                f"INSERT INTO bids ({V1_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r[0], u256_to_bytes(r[1]), *r[2:]) for r in _v1_rows()],  # type: ignore[arg-type]
            )
            db.execute("INSERT INTO auction_sequences VALUES (?, 4)", (A,))
    else:
        schema = request.getfixturevalue("pg_schema")
        dsn = request.getfixturevalue("pg_dsn")
        store = make_pg_store(dsn, schema)
        monkeypatch.setattr(pg_module, "load_migrations", lambda _: only_v1)
        store.migrate()
        with psycopg.connect(dsn) as pg:
            pg.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            with pg.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO bids ({V1_COLUMNS}) VALUES"
                    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    _v1_rows(),
                )
            pg.execute("INSERT INTO auction_sequences VALUES (%s, 4)", (A,))
    monkeypatch.undo()
    yield store
    store.close()


def _versions(store: BidStore) -> list[int]:
    if isinstance(store, SqliteBidStore):
        return [v for (v,) in store._writer.execute("SELECT version FROM schema_version")]
    assert isinstance(store, PostgresBidStore)
    rows = store._read(lambda conn: conn.execute("SELECT version FROM schema_version").fetchall())
    return sorted(v for (v,) in rows)


def test_v1_database_upgrades_and_keeps_its_rows(v1_store: BidStore) -> None:
    store = v1_store
    assert _versions(store) == [1]
    store.migrate()
    assert _versions(store) == [1, 2, 3]
    pair1 = store.history(A, 1)
    assert [(b.sequence, b.status) for b in pair1] == [
        (1, BidStatus.SUPERSEDED),
        (2, BidStatus.SUPERSEDED),
        (3, BidStatus.LIVE),
    ]
    assert pair1[0].ciphertext_hash == pair1[2].ciphertext_hash  # the non-unique index held it
    [old_cancel] = store.history(A, 2)
    assert old_cancel.status is BidStatus.CANCELLED
    assert (old_cancel.cancel_sequence, old_cancel.cancelled_at) == (None, 2_000)
    assert store.latest(A, 2) == old_cancel
    assert [b.sequence for b in store.retired_bids(A)] == [1, 2, 4]

    # v2 rules on v1 data: the live envelope resubmitted is identical, retired ones stale
    a = put_op(A, 1, "a", received_at=9_000)
    results = store.apply(
        [
            a,
            dataclasses.replace(a, signature=b"\x05" * 65),
            put_op(A, 1, "b"),
            put_op(A, 2, "c"),
            cancel_op(A, 1, a.ciphertext_hash),
        ]
    )
    assert isinstance(results[0], PutResult) and results[0].outcome is PutOutcome.IDENTICAL
    assert [type(r) for r in results[1:4]] == [StaleEnvelopeError] * 3
    cancel = results[4]
    assert isinstance(cancel, CancelResult) and cancel.bid.cancel_sequence == 5
    [later] = store.apply([put_op(A, 3, "d")])
    assert isinstance(later, PutResult) and later.bid.sequence == 6
