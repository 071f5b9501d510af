"""SQLite bid store: WAL, ``synchronous=FULL``, one locked writer, pooled readers.

Every ``apply`` batch is one ``BEGIN IMMEDIATE ... COMMIT`` on the writer connection, so a
batch costs one WAL fsync however many operations it holds. ``BEGIN IMMEDIATE`` also takes
SQLite's database write lock, so several processes sharing one file stay correct (the
per-auction sequence counter lives in the database, not in memory).

The freeze fence rides on the same lock: ``freeze`` sets ``auction_sequences.frozen_at`` in
its own writer transaction, and each batch reads the counter row with ``frozen_at`` first
thing inside its transaction, so a batch either committed before the freeze (its sequences
are within ``Freeze.last_sequence``) or sees the record and refuses the auction's
operations.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from clearing.store._common import (
    EnvelopeKey,
    Pair,
    check_freeze,
    check_operation,
    load_migrations,
    pick_latest,
    plan_batch,
    redemptions_by_auction,
    stale_lookups,
    u256_from_bytes,
    u256_to_bytes,
)
from clearing.store.base import (
    BidStatus,
    Freeze,
    Operation,
    Result,
    StoredBid,
    StoreError,
    StoreUnavailableError,
)
from clearing.store.board import BoardOutcome, BoardRecord, check_record

T = TypeVar("T")

# Every bid query selects these columns in this order (see ``_row_to_bid``).
_BID_COLUMNS = (
    "id, auction_id, redemption_id, controller, ciphertext, ciphertext_hash, signature,"
    " sequence, received_at, status, cancel_signature, cancelled_at, cancel_sequence"
)
_SELECT_LIVE = (
    f"SELECT {_BID_COLUMNS} FROM bids"  # noqa: S608 (a constant)
    " WHERE auction_id = ? AND redemption_id = ? AND status = 'live'"
)
_SELECT_LIVE_OF_AUCTION = (
    f"SELECT {_BID_COLUMNS} FROM bids"  # noqa: S608 (a constant)
    " WHERE auction_id = ? AND status = 'live' ORDER BY redemption_id"
)
_SELECT_HISTORY = (
    f"SELECT {_BID_COLUMNS} FROM bids"  # noqa: S608 (a constant)
    " WHERE auction_id = ? AND redemption_id = ? ORDER BY sequence"
)
# The live row, then the pair's last row by sequence: at most two rows, each one index probe
# (bids_one_live, then bids_pair_history backwards).
_SELECT_LATEST = (
    f"SELECT * FROM (SELECT {_BID_COLUMNS} FROM bids"  # noqa: S608 (a constant)
    " WHERE auction_id = ? AND redemption_id = ? AND status = 'live')"
    f" UNION ALL SELECT * FROM (SELECT {_BID_COLUMNS} FROM bids"
    " WHERE auction_id = ? AND redemption_id = ? ORDER BY sequence DESC LIMIT 1)"
)
_SELECT_RETIRED = (
    f"SELECT {_BID_COLUMNS} FROM bids"  # noqa: S608 (a constant)
    " WHERE auction_id = ? AND status != 'live' ORDER BY sequence"
)
# Multi-row statements are cut into chunks of these sizes, so only a few distinct SQL
# texts exist (each stays in the connection's statement cache) and the bound
# parameters stay far below SQLite's limit (12 per row). Only placeholders vary.
_CHUNK_SIZES = (256, 64, 16, 4, 1)
_SELECT_LIVE_OF_PAIRS = {
    n: f"SELECT {_BID_COLUMNS} FROM bids"  # noqa: S608
    " WHERE auction_id = ? AND status = 'live' AND redemption_id IN"
    " (" + ", ".join(["?"] * n) + ")"
    for n in _CHUNK_SIZES
}
# Which of the batch's (pair, ciphertext hash) envelopes were superseded or cancelled:
# one bids_pair_hash probe per envelope, never a pair's whole history.
_SELECT_RETIRED_OF_ENVELOPES = {
    n: "SELECT v.column1, v.column2, v.column3 FROM (VALUES "  # noqa: S608
    + ", ".join(["(?, ?, ?)"] * n)
    + ") AS v WHERE EXISTS (SELECT 1 FROM bids WHERE auction_id = v.column1"
    " AND redemption_id = v.column2 AND ciphertext_hash = v.column3 AND status != 'live')"
    for n in _CHUNK_SIZES
}
_SUPERSEDE = {
    n: "UPDATE bids SET status = 'superseded' WHERE id IN (" + ", ".join(["?"] * n) + ")"  # noqa: S608
    for n in _CHUNK_SIZES
}
_INSERT = {
    n: "INSERT INTO bids (auction_id, redemption_id, controller, ciphertext, ciphertext_hash,"  # noqa: S608
    " signature, sequence, received_at, status, cancel_signature, cancelled_at,"
    " cancel_sequence) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * n)
    for n in _CHUNK_SIZES
}
_SELECT_COUNTER = "SELECT last_sequence, frozen_at FROM auction_sequences WHERE auction_id = ?"
_BUSY_TIMEOUT = 30.0  # seconds a write waits for another writer process
_MAX_IDLE_READERS = 8

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy handler alone
    fcntl = None  # type: ignore[assignment]


class _ProcessWriteLock:
    """An advisory ``flock`` beside the database that writer processes queue on.

    SQLite's own lock is correct across processes, but a writer that finds it taken sleeps
    in the busy handler (1, 2, 5, 10 ... ms) instead of waking when it is free: with several
    uvicorn workers on one file that idles the CPU between group commits. Polling this lock
    in sub-millisecond steps hands the database over soon after the other writer commits;
    a writer that cannot get it within ``timeout`` (a stuck or stopped peer) gets
    ``StoreUnavailableError``, as SQLite's busy timeout would give. SQLite's lock still
    decides correctness (writers that do not use this file stay safe), and where the lock
    file cannot be opened (read-only directory, another user) SQLite's handler alone is used.
    """

    def __init__(self, db_path: str, timeout: float) -> None:
        self._fd: int | None = None
        self._timeout = timeout
        self._depth = 0  # re-entrant for the thread holding the store's writer RLock
        if fcntl is not None and db_path != ":memory:" and not db_path.startswith("file:"):
            with contextlib.suppress(OSError):
                self._fd = os.open(db_path + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o660)

    def __enter__(self) -> None:
        if self._depth == 0 and self._fd is not None:
            self._acquire(self._fd)
        self._depth += 1

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + self._timeout
        pause = 0.00005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"another writer process held the database for {self._timeout:.0f} s"
                    ) from None
            except OSError as exc:
                raise StoreUnavailableError(f"cannot lock the database: {exc}") from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.0005)

    def __exit__(self, *_: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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
        cancelled_at=row[11],
        cancel_sequence=row[12],
    )


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """``items`` in consecutive chunks whose sizes are all in ``_CHUNK_SIZES``."""
    start = 0
    for size in _CHUNK_SIZES:
        while len(items) - start >= size:
            yield items[start : start + size]
            start += size


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

    def __init__(self, path: str | Path, busy_timeout: float = _BUSY_TIMEOUT) -> None:
        """Open (creating if needed) the database at ``path``; call ``migrate()`` before use.

        A write waits at most ``busy_timeout`` seconds for another writer process.
        """
        self._path = str(path)
        self._busy_timeout = busy_timeout
        self._write_lock = threading.RLock()
        self._readers_lock = threading.Lock()
        self._idle_readers: list[sqlite3.Connection] = []
        self._closed = False
        self._process_lock = _ProcessWriteLock(self._path, busy_timeout)
        try:
            self._writer = self._connect()
            mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreUnavailableError(f"cannot enable WAL on {self._path} (got {mode})")
            self._writer.execute("PRAGMA synchronous=FULL")
        except (sqlite3.Error, OSError, StoreUnavailableError) as exc:
            self._process_lock.close()
            if isinstance(exc, StoreUnavailableError):
                raise
            raise StoreUnavailableError(f"cannot open SQLite store {self._path}: {exc}") from exc

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout
        )
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
    def writer_turn(self) -> Iterator[None]:
        """Hold the writer role: this store's writer lock and the other processes' flock."""
        with self._write_lock, self._process_lock:
            yield

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the writer lock and run one ``BEGIN IMMEDIATE ... COMMIT`` transaction."""
        with self._write_lock, self._process_lock:
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
        """Apply ``ops`` in order in one transaction; see ``BidStore.apply``.

        The batch is planned in memory (``plan_batch``) from one read of the touched pairs'
        live rows and one of the posted envelopes' retired rows (per chunk), and written
        with a handful of multi-row statements: few calls into SQLite while the database
        write lock is held, whatever the batch size.
        """
        for op in ops:
            check_operation(op)
        if not ops:
            return []
        with self._write_transaction() as conn:
            auctions = sorted({op.auction_id for op in ops})
            last: dict[int, int] = {}
            frozen: set[int] = set()
            for auction_id in auctions:  # almost always one
                row = conn.execute(_SELECT_COUNTER, (auction_id,)).fetchone()
                if row is not None:
                    last[auction_id] = row[0]
                    if row[1] is not None:
                        frozen.add(auction_id)
            if frozen:  # a frozen auction's operations are all refused: nothing to read
                open_ops: Sequence[Operation] = [op for op in ops if op.auction_id not in frozen]
            else:
                open_ops = ops
            live = self._live_rows(conn, open_ops)
            retired = self._retired_envelopes(conn, open_ops)
            plan = plan_batch(ops, live, last, retired, frozen)
            if plan.superseded:
                for chunk in _chunks(plan.superseded):
                    conn.execute(_SUPERSEDE[len(chunk)], chunk)
            if plan.cancelled:
                conn.executemany(
                    "UPDATE bids SET status = 'cancelled', cancel_signature = ?, cancelled_at = ?,"
                    " cancel_sequence = ? WHERE id = ?",
                    [(c.signature, c.cancelled_at, c.sequence, c.row_id) for c in plan.cancelled],
                )
            for chunk in _chunks(plan.inserts):
                conn.execute(
                    _INSERT[len(chunk)],
                    [value for row in chunk for value in row.values(u256_to_bytes)],
                )
            if plan.last_sequence:
                conn.executemany(
                    "INSERT INTO auction_sequences (auction_id, last_sequence) VALUES (?, ?) "
                    "ON CONFLICT (auction_id) DO UPDATE SET last_sequence = excluded.last_sequence",
                    list(plan.last_sequence.items()),
                )
        return plan.results

    def freeze(self, auction_id: int, frozen_at: int) -> Freeze:
        """Record the auction's freeze in one writer transaction; see ``BidStore.freeze``.

        Under the same writer lock, flock and ``BEGIN IMMEDIATE`` as ``apply``: a batch in
        progress commits first and is counted; any later batch reads the record and refuses.
        """
        check_freeze(auction_id, frozen_at)
        with self._write_transaction() as conn:
            row = conn.execute(_SELECT_COUNTER, (auction_id,)).fetchone()
            last = 0 if row is None else int(row[0])
            if row is not None and row[1] is not None:
                record = Freeze(auction_id, int(row[1]), last)  # already frozen: unchanged
            else:
                conn.execute(
                    "INSERT INTO auction_sequences (auction_id, last_sequence, frozen_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (auction_id) DO UPDATE"
                    " SET frozen_at = excluded.frozen_at",
                    (auction_id, last, frozen_at),
                )
                record = Freeze(auction_id, frozen_at, last)
        return record

    def frozen(self, auction_id: int) -> Freeze | None:
        """The auction's freeze record, if it is frozen."""
        with self._reader() as conn:
            row = conn.execute(_SELECT_COUNTER, (auction_id,)).fetchone()
        if row is None or row[1] is None:
            return None
        return Freeze(auction_id, int(row[1]), int(row[0]))

    @staticmethod
    def _live_rows(
        conn: sqlite3.Connection, ops: Sequence[Operation]
    ) -> dict[Pair, tuple[Hashable, StoredBid]]:
        """The live rows of every pair ``ops`` touch, by pair."""
        live: dict[Pair, tuple[Hashable, StoredBid]] = {}
        for auction_id, ids in redemptions_by_auction(ops).items():
            for chunk in _chunks(ids):
                rows = conn.execute(
                    _SELECT_LIVE_OF_PAIRS[len(chunk)],
                    [auction_id, *(u256_to_bytes(r) for r in chunk)],
                ).fetchall()
                for row in rows:
                    bid = _row_to_bid(row)
                    live[(bid.auction_id, bid.redemption_id)] = (row[0], bid)
        return live

    @staticmethod
    def _retired_envelopes(conn: sqlite3.Connection, ops: Sequence[Operation]) -> set[EnvelopeKey]:
        """Which envelopes the batch's puts post were superseded or cancelled before."""
        found: set[EnvelopeKey] = set()
        for chunk in _chunks(stale_lookups(ops)):
            params = [v for a, r, h in chunk for v in (a, u256_to_bytes(r), h)]
            for a, r, h in conn.execute(_SELECT_RETIRED_OF_ENVELOPES[len(chunk)], params):
                found.add((a, u256_from_bytes(r), h))
        return found

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

    def latest(self, auction_id: int, redemption_id: int) -> StoredBid | None:
        """The pair's live bid, else its most recent envelope by sequence (two index probes)."""
        key = (auction_id, u256_to_bytes(redemption_id))
        with self._reader() as conn:
            rows = conn.execute(_SELECT_LATEST, key + key).fetchall()
        return pick_latest([_row_to_bid(row) for row in rows])

    def retired_bids(self, auction_id: int) -> list[StoredBid]:
        """Every superseded and cancelled envelope of an auction, by sequence."""
        with self._reader() as conn:
            rows = conn.execute(_SELECT_RETIRED, (auction_id,)).fetchall()
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

    def claim_artifact(self, auction_id: int, name: str, body: bytes) -> bool:
        """Store ``body`` under ``name`` unless one exists; True if this call stored it."""
        with self._write_transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO artifacts (auction_id, name, body, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (auction_id, name) DO NOTHING",
                (auction_id, name, body, int(time.time())),
            )
            return cursor.rowcount == 1

    def get_artifact(self, auction_id: int, name: str) -> bytes | None:
        """A stored artifact, if any."""
        with self._reader() as conn:
            row = conn.execute(
                "SELECT body FROM artifacts WHERE auction_id = ? AND name = ?", (auction_id, name)
            ).fetchone()
        return None if row is None else bytes(row[0])

    # -- BoardStore ----------------------------------------------------------------------

    def board_put(self, record: BoardRecord) -> tuple[BoardOutcome, BoardRecord]:
        """Store a board message in its slot unless the slot is taken (one transaction)."""
        check_record(record)
        key = (record.auction_id, record.kind, record.slot_a, record.slot_b)
        with self._write_transaction() as conn:
            row = conn.execute(
                "SELECT body, received_at FROM dkg_board"
                " WHERE auction_id = ? AND kind = ? AND slot_a = ? AND slot_b = ?",
                key,
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO dkg_board (auction_id, kind, slot_a, slot_b, body, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (*key, record.body, record.received_at),
                )
                return BoardOutcome.CREATED, record
        stored = BoardRecord(*key, bytes(row[0]), int(row[1]))
        same = stored.body == record.body
        return (BoardOutcome.IDENTICAL if same else BoardOutcome.CONFLICT), stored

    def board_records(self, auction_id: int) -> list[BoardRecord]:
        """Every board message of ``auction_id`` in the order stored."""
        with self._reader() as conn:
            rows = conn.execute(
                "SELECT auction_id, kind, slot_a, slot_b, body, received_at FROM dkg_board"
                " WHERE auction_id = ? ORDER BY id",
                (auction_id,),
            ).fetchall()
        return [BoardRecord(r[0], r[1], r[2], r[3], bytes(r[4]), r[5]) for r in rows]

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
            self._process_lock.close()
        with self._readers_lock:
            idle, self._idle_readers = self._idle_readers, []
        for conn in idle:
            conn.close()
