"""SQLite bid store: WAL, ``synchronous=FULL``, one locked writer, pooled readers.

Every ``apply`` batch is one ``BEGIN IMMEDIATE ... COMMIT`` on the writer connection, so a
batch costs one WAL fsync however many operations it holds. ``BEGIN IMMEDIATE`` also takes
SQLite's database write lock, so several processes sharing one file stay correct (the
per-auction sequence counter lives in the database, not in memory).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from clearing.store._common import (
    cancel_refusal,
    cancelled,
    check_operation,
    load_migrations,
    new_live_bid,
    put_outcome,
    u256_from_bytes,
    u256_to_bytes,
)
from clearing.store.base import (
    BidStatus,
    CancelBid,
    CancelResult,
    Operation,
    PutBid,
    PutOutcome,
    PutResult,
    Result,
    StoredBid,
    StoreError,
    StoreUnavailableError,
)

# Every bid query selects these columns in this order (see ``_row_to_bid``).
_SELECT_LIVE = (
    "SELECT id, auction_id, redemption_id, controller, ciphertext, ciphertext_hash, signature,"
    " sequence, received_at, status, cancel_signature FROM bids"
    " WHERE auction_id = ? AND redemption_id = ? AND status = 'live'"
)
_SELECT_LIVE_OF_AUCTION = (
    "SELECT id, auction_id, redemption_id, controller, ciphertext, ciphertext_hash, signature,"
    " sequence, received_at, status, cancel_signature FROM bids"
    " WHERE auction_id = ? AND status = 'live' ORDER BY redemption_id"
)
_SELECT_HISTORY = (
    "SELECT id, auction_id, redemption_id, controller, ciphertext, ciphertext_hash, signature,"
    " sequence, received_at, status, cancel_signature FROM bids"
    " WHERE auction_id = ? AND redemption_id = ? ORDER BY sequence"
)
_BUSY_TIMEOUT_MS = 30_000
_MAX_IDLE_READERS = 8


def _row_to_bid(row: Sequence[Any]) -> StoredBid:
    return StoredBid(
        auction_id=row[1],
        redemption_id=u256_from_bytes(row[2]),
        controller=row[3],
        ciphertext=row[4],
        ciphertext_hash=row[5],
        signature=row[6],
        sequence=row[7],
        received_at=row[8],
        status=BidStatus(row[9]),
        cancel_signature=row[10],
    )


def split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (one per ``execute``)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    rest = "".join(ln for ln in buffer.splitlines() if not ln.strip().startswith("--"))
    if rest.strip():
        raise ValueError(f"incomplete SQL statement at end of script: {rest.strip()[:80]!r}")
    return statements


class SqliteBidStore:
    """A ``BidStore`` in one SQLite file (the embedded default)."""

    def __init__(self, path: str | Path) -> None:
        """Open (creating if needed) the database at ``path``; call ``migrate()`` before use."""
        self._path = str(path)
        self._write_lock = threading.Lock()
        self._readers_lock = threading.Lock()
        self._idle_readers: list[sqlite3.Connection] = []
        self._closed = False
        try:
            self._writer = self._connect()
            mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreUnavailableError(f"cannot enable WAL on {self._path} (got {mode})")
            self._writer.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot open SQLite store {self._path}: {exc}") from exc

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        return conn

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        with self._readers_lock:
            conn = self._idle_readers.pop() if self._idle_readers else None
        try:
            if conn is None:
                conn = self._connect()
                conn.execute("PRAGMA query_only=ON")
            yield conn
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
                conn = None
            raise StoreUnavailableError(f"SQLite read failed: {exc}") from exc
        finally:
            if conn is not None:
                with self._readers_lock:
                    keep = not self._closed and len(self._idle_readers) < _MAX_IDLE_READERS
                    if keep:
                        self._idle_readers.append(conn)
                if not keep:
                    conn.close()

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the writer lock and run one ``BEGIN IMMEDIATE ... COMMIT`` transaction."""
        with self._write_lock:
            if self._closed:
                raise StoreUnavailableError("the store is closed")
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailableError(f"SQLite write failed: {exc}") from exc
                raise

    # -- BidStore ----------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply the missing versioned migrations, in order, in one transaction."""
        migrations = load_migrations("sqlite")
        with self._write_transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_version")}
            for migration in migrations:
                if migration.version in done:
                    continue
                for statement in split_statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, int(time.time())),
                )

    def apply(self, ops: Sequence[Operation]) -> list[Result | StoreError]:
        """Apply ``ops`` in order in one transaction; see ``BidStore.apply``."""
        for op in ops:
            check_operation(op)
        if not ops:
            return []
        with self._write_transaction() as conn:
            counters: dict[int, int] = {}
            results: list[Result | StoreError] = []
            for op in ops:
                if isinstance(op, PutBid):
                    results.append(self._put(conn, op, counters))
                else:
                    results.append(self._cancel(conn, op))
            conn.executemany(
                "INSERT INTO auction_sequences (auction_id, last_sequence) VALUES (?, ?) "
                "ON CONFLICT (auction_id) DO UPDATE SET last_sequence = excluded.last_sequence",
                list(counters.items()),
            )
        return results

    @staticmethod
    def _next_sequence(conn: sqlite3.Connection, auction_id: int, counters: dict[int, int]) -> int:
        last = counters.get(auction_id)
        if last is None:
            row = conn.execute(
                "SELECT last_sequence FROM auction_sequences WHERE auction_id = ?", (auction_id,)
            ).fetchone()
            last = row[0] if row else 0
        counters[auction_id] = last + 1
        return last + 1

    def _put(self, conn: sqlite3.Connection, op: PutBid, counters: dict[int, int]) -> PutResult:
        rid = u256_to_bytes(op.redemption_id)
        row = conn.execute(_SELECT_LIVE, (op.auction_id, rid)).fetchone()
        live = None if row is None else _row_to_bid(row)
        outcome = put_outcome(live, op)
        if outcome is PutOutcome.IDENTICAL:
            assert live is not None  # only a live bid can be identical
            return PutResult(outcome, live)
        if row is not None:
            conn.execute("UPDATE bids SET status = 'superseded' WHERE id = ?", (row[0],))
        sequence = self._next_sequence(conn, op.auction_id, counters)
        conn.execute(
            "INSERT INTO bids (auction_id, redemption_id, controller, ciphertext, "
            "ciphertext_hash, signature, sequence, received_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'live')",
            (
                op.auction_id,
                rid,
                op.controller,
                op.ciphertext,
                op.ciphertext_hash,
                op.signature,
                sequence,
                op.received_at,
            ),
        )
        return PutResult(outcome, new_live_bid(op, sequence))

    @staticmethod
    def _cancel(conn: sqlite3.Connection, op: CancelBid) -> CancelResult | StoreError:
        row = conn.execute(
            _SELECT_LIVE, (op.auction_id, u256_to_bytes(op.redemption_id))
        ).fetchone()
        live = None if row is None else _row_to_bid(row)
        refusal = cancel_refusal(live, op)
        if refusal is not None:
            return refusal
        assert live is not None and row is not None  # cancel_refusal refuses a missing bid
        conn.execute(
            "UPDATE bids SET status = 'cancelled', cancel_signature = ?, cancelled_at = ? "
            "WHERE id = ?",
            (op.signature, op.received_at, row[0]),
        )
        return cancelled(live, op)

    def live_bid(self, auction_id: int, redemption_id: int) -> StoredBid | None:
        """The live bid of a pair, if any."""
        with self._reader() as conn:
            row = conn.execute(_SELECT_LIVE, (auction_id, u256_to_bytes(redemption_id))).fetchone()
        return None if row is None else _row_to_bid(row)

    def live_bids(self, auction_id: int) -> list[StoredBid]:
        """Every live bid of an auction, ordered by redemption id."""
        with self._reader() as conn:
            rows = conn.execute(_SELECT_LIVE_OF_AUCTION, (auction_id,)).fetchall()
        return [_row_to_bid(row) for row in rows]

    def history(self, auction_id: int, redemption_id: int) -> list[StoredBid]:
        """Every stored envelope of a pair, by sequence."""
        with self._reader() as conn:
            rows = conn.execute(
                _SELECT_HISTORY, (auction_id, u256_to_bytes(redemption_id))
            ).fetchall()
        return [_row_to_bid(row) for row in rows]

    def put_artifact(self, auction_id: int, name: str, body: bytes) -> None:
        """Durably store an artifact, replacing any previous one of that name."""
        with self._write_transaction() as conn:
            conn.execute(
                "INSERT INTO artifacts (auction_id, name, body, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (auction_id, name) DO UPDATE "
                "SET body = excluded.body, updated_at = excluded.updated_at",
                (auction_id, name, body, int(time.time())),
            )

    def get_artifact(self, auction_id: int, name: str) -> bytes | None:
        """A stored artifact, if any."""
        with self._reader() as conn:
            row = conn.execute(
                "SELECT body FROM artifacts WHERE auction_id = ? AND name = ?", (auction_id, name)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the database answers and is migrated."""
        with self._reader() as conn:
            conn.execute("SELECT count(*) FROM schema_version").fetchone()

    def close(self) -> None:
        """Close the writer and every idle reader; later calls raise ``StoreUnavailableError``."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._writer.close()
        with self._readers_lock:
            idle, self._idle_readers = self._idle_readers, []
        for conn in idle:
            conn.close()
