"""PostgreSQL only: several pools ("replicas") on one schema, failures, concurrent migrate."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from clearing.store import postgres as pg_module
from clearing.store._common import redemptions_by_auction, stale_lookups
from clearing.store.base import (
    BidStatus,
    CancelResult,
    Operation,
    PutOutcome,
    PutResult,
    StaleCancelError,
    StoreUnavailableError,
)
from clearing.store.postgres import PostgresBidStore
from tests.store.conftest import cancel_op, make_pg_store, put_op, run_threads

A = 1_767_225_600

MIGRATIONS = Path(__file__).resolve().parents[2] / "clearing" / "store" / "migrations" / "postgres"


@pytest.fixture
def replicas(pg_dsn: str, pg_schema: str) -> Iterator[tuple[PostgresBidStore, PostgresBidStore]]:
    """Two stores (two pools) on one migrated schema, like two service processes."""
    one, two = make_pg_store(pg_dsn, pg_schema), make_pg_store(pg_dsn, pg_schema)
    one.migrate()
    yield one, two
    one.close()
    two.close()


def all_rows(dsn: str, schema: str) -> list[tuple[int, int, int, str]]:
    with psycopg.connect(dsn) as conn:
        query = sql.SQL(
            "SELECT auction_id, redemption_id, sequence, status FROM {}.bids ORDER BY sequence"
        ).format(sql.Identifier(schema))
        return [(a, int(r), s, st) for a, r, s, st in conn.execute(query).fetchall()]


def test_replicas_racing_replacements_of_one_pair(
    replicas: tuple[PostgresBidStore, PostgresBidStore], pg_dsn: str, pg_schema: str
) -> None:
    per_thread, workers = 25, 6
    sequences: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> Callable[[], None]:
        store = replicas[index % 2]

        def run() -> None:
            for i in range(per_thread):
                # Mixed batches: the contended pair plus a pair of this worker's own.
                ops = [put_op(A, 42, f"w{index}-{i}")]
                if i % 3 == 0:
                    ops.append(put_op(A, 1000 + index, f"own{index}-{i}"))
                for result in store.apply(ops):
                    assert isinstance(result, PutResult)
                    assert result.outcome is not PutOutcome.IDENTICAL
                    with lock:
                        sequences.append(result.bid.sequence)

        return run

    run_threads([worker(i) for i in range(workers)])
    total = workers * (per_thread + len(range(0, per_thread, 3)))
    assert sorted(sequences) == list(range(1, total + 1))  # unique, gapless
    rows = all_rows(pg_dsn, pg_schema)
    contended = [r for r in rows if r[1] == 42]
    assert len(contended) == workers * per_thread
    live = [r for r in contended if r[3] == "live"]
    assert len(live) == 1 and live[0][2] == max(r[2] for r in contended)
    assert replicas[1].live_bid(A, 42).sequence == live[0][2]  # type: ignore[union-attr]
    assert len(replicas[0].live_bids(A)) == 1 + workers


def test_cancel_racing_replace_is_serializable(
    replicas: tuple[PostgresBidStore, PostgresBidStore],
) -> None:
    one, two = replicas
    outcomes: set[str] = set()
    for round_ in range(25):
        rid = 10_000 + round_
        first = put_op(A, rid, f"first-{round_}")
        one.apply([first])
        results: dict[str, object] = {}
        cancel_ops = [cancel_op(A, rid, first.ciphertext_hash)]
        put_ops = [put_op(A, rid, f"second-{round_}")]

        def cancel(ops: Sequence[Operation] = cancel_ops, out: dict[str, object] = results) -> None:
            [out["cancel"]] = one.apply(ops)

        def replace(ops: Sequence[Operation] = put_ops, out: dict[str, object] = results) -> None:
            [out["put"]] = two.apply(ops)

        run_threads([cancel, replace])
        put_result, cancel_result = results["put"], results["cancel"]
        assert isinstance(put_result, PutResult)
        history = one.history(A, rid)
        assert history[-1].status is BidStatus.LIVE
        assert history[-1].ciphertext_hash == put_result.bid.ciphertext_hash
        if isinstance(cancel_result, CancelResult):
            # cancel, then put: the put created a fresh bid
            assert put_result.outcome is PutOutcome.CREATED
            assert [b.status for b in history] == [BidStatus.CANCELLED, BidStatus.LIVE]
            outcomes.add("cancel-first")
        else:
            # put, then cancel: the cancel named a superseded envelope
            assert isinstance(cancel_result, StaleCancelError)
            assert put_result.outcome is PutOutcome.REPLACED
            assert [b.status for b in history] == [BidStatus.SUPERSEDED, BidStatus.LIVE]
            outcomes.add("put-first")
    assert outcomes  # at least one order was seen; each round matched a serial order


def test_cross_auction_batches_do_not_deadlock(
    replicas: tuple[PostgresBidStore, PostgresBidStore],
) -> None:
    auctions = [A, A + 1, A + 2]

    def worker(index: int) -> Callable[[], None]:
        order = auctions if index % 2 == 0 else auctions[::-1]

        def run() -> None:
            for i in range(20):
                replicas[index % 2].apply([put_op(a, 7, f"{index}-{i}-{a}") for a in order])

        return run

    run_threads([worker(i) for i in range(4)])
    for a in auctions:
        history = replicas[0].history(a, 7)
        assert [b.sequence for b in history] == list(range(1, 81))
        assert [b.status for b in history].count(BidStatus.LIVE) == 1


def test_concurrent_migrations(pg_dsn: str, pg_schema: str) -> None:
    stores = [make_pg_store(pg_dsn, pg_schema) for _ in range(4)]
    try:
        run_threads([s.migrate for s in stores])
        with psycopg.connect(pg_dsn) as conn:
            query = sql.SQL("SELECT version FROM {}.schema_version").format(
                sql.Identifier(pg_schema)
            )
            shipped = sorted(MIGRATIONS.glob("*.sql"))
            assert len(shipped) >= 3  # 0001 init, 0002 rev 2, 0003 the keypers' board
            assert conn.execute(query).fetchall() == [(int(p.name.split("_")[0]),) for p in shipped]
        stores[0].apply([put_op(A, 1, "x")])
        assert stores[3].live_bid(A, 1) is not None
    finally:
        for s in stores:
            s.close()


def test_unreachable_server_raises_store_unavailable() -> None:
    store = PostgresBidStore(
        "postgresql://postgres@127.0.0.1:1/test", schema="qev", timeout=0.5, connect_timeout=1
    )
    try:
        for call in (
            store.ping,
            store.migrate,
            lambda: store.apply([put_op(A, 1, "x")]),
            lambda: store.live_bids(A),
            lambda: store.get_artifact(A, "x"),
        ):
            with pytest.raises(StoreUnavailableError):
                call()
    finally:
        store.close()


def test_unmigrated_schema_is_not_ready(pg_dsn: str, pg_schema: str) -> None:
    store = make_pg_store(pg_dsn, pg_schema)
    try:
        with pytest.raises(StoreUnavailableError):
            store.ping()
        store.migrate()
        store.ping()
    finally:
        store.close()


def test_failed_batch_commits_nothing(
    replicas: tuple[PostgresBidStore, PostgresBidStore], pg_dsn: str, pg_schema: str
) -> None:
    one, _ = replicas
    one.apply([put_op(A, 1, "kept")])
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        # Make every insert fail from now on, as a broken disk or lost table would.
        conn.execute(
            sql.SQL(
                "ALTER TABLE {}.bids ADD CONSTRAINT no_more CHECK (sequence < 2) NOT VALID"
            ).format(sql.Identifier(pg_schema))
        )
    with pytest.raises(StoreUnavailableError):
        one.apply([put_op(A, 2, "a"), put_op(A, 3, "b")])
    assert [b.redemption_id for b in one.live_bids(A)] == [1]
    assert all_rows(pg_dsn, pg_schema) == [(A, 1, 1, "live")]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER TABLE {}.bids DROP CONSTRAINT no_more").format(sql.Identifier(pg_schema))
        )
    # the failed batch's connection went back to the pool with its transaction ended
    results = one.apply([put_op(A, 2, "a"), put_op(A, 3, "b")])
    assert [r.bid.sequence for r in results if isinstance(r, PutResult)] == [2, 3]
    assert all_rows(pg_dsn, pg_schema) == [(A, 1, 1, "live"), (A, 2, 2, "live"), (A, 3, 3, "live")]


def test_server_error_in_the_writes_is_retried_not_reported_as_unknown(
    replicas: tuple[PostgresBidStore, PostgresBidStore], pg_dsn: str, pg_schema: str
) -> None:
    """lock_not_available (an OperationalError) from the write statements: the server
    aborted the transaction, so COMMIT surely never ran and the batch is retried."""
    one, _ = replicas
    schema = sql.Identifier(pg_schema)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(  # a sequence, unlike a table, keeps counting through a rollback
            sql.SQL(
                "CREATE SEQUENCE {s}.inserts;"
                "CREATE FUNCTION {s}.fail_once() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN IF nextval('{s}.inserts') = 1 THEN"
                "  RAISE EXCEPTION 'injected' USING ERRCODE = 'lock_not_available'; END IF;"
                " RETURN NEW; END $$;"
                "CREATE TRIGGER fail_once BEFORE INSERT ON {s}.bids"
                " FOR EACH ROW EXECUTE FUNCTION {s}.fail_once()"
            ).format(s=schema)
        )
    (result,) = one.apply([put_op(A, 1, "once")])
    assert isinstance(result, PutResult) and result.bid.sequence == 1
    assert all_rows(pg_dsn, pg_schema) == [(A, 1, 1, "live")]
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(sql.SQL("SELECT last_value FROM {}.inserts").format(schema)).fetchone()
    assert row == (2,)  # the first attempt failed and rolled back, the second committed


def _terminate_store_connections(dsn: str, schema: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s",
            (f"qev-store-{schema}",),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_connections_lost_while_pooled_are_replaced_without_an_error(
    pg_dsn: str, pg_schema: str
) -> None:
    """A connection that answered within the last second skips the pool's check; if the
    server dropped it meanwhile, the read or the batch is retried on a fresh one."""
    store = make_pg_store(pg_dsn, pg_schema)
    try:
        store.migrate()
        store.apply([put_op(A, 1, "one")])
        assert _terminate_store_connections(pg_dsn, pg_schema) >= 1
        live = store.live_bid(A, 1)  # on a dead, recently used connection first
        assert live is not None and live.sequence == 1
        assert _terminate_store_connections(pg_dsn, pg_schema) >= 1
        (result,) = store.apply([put_op(A, 2, "two")])
        assert isinstance(result, PutResult) and result.bid.sequence == 2
        assert all_rows(pg_dsn, pg_schema) == [(A, 1, 1, "live"), (A, 2, 2, "live")]
    finally:
        store.close()


def test_bytes_and_uint256_survive_the_batch_literals(
    replicas: tuple[PostgresBidStore, PostgresBidStore],
) -> None:
    """Batches travel as SQL literals: quotes, backslashes, NULs and 2^256-1 round-trip."""
    one, two = replicas
    nasty = b"'\\x00'; DROP TABLE bids; --\x00\xff\\" + bytes(range(256))
    top = 2**256 - 1
    put = replace(put_op(A, top, "nasty"), ciphertext=nasty, signature=nasty[::-1])
    (created,) = one.apply([put])
    assert isinstance(created, PutResult) and created.outcome is PutOutcome.CREATED
    stored = two.live_bid(A, top)
    assert stored is not None
    assert (stored.ciphertext, stored.signature, stored.redemption_id) == (
        nasty,
        nasty[::-1],
        top,
    )
    (cancel,) = one.apply([replace(cancel_op(A, top, put.ciphertext_hash), signature=nasty)])
    assert isinstance(cancel, CancelResult) and cancel.bid.cancel_signature == nasty
    assert [b.cancel_signature for b in two.history(A, top)] == [nasty]


@pytest.mark.parametrize("value", [True, 1.0, "1", None])
def test_integer_literals_refuse_anything_but_int(value: object) -> None:
    with pytest.raises(TypeError):
        pg_module._int(value)


def test_text_literals_are_only_bid_status_names() -> None:
    assert pg_module._literal("superseded") == "'superseded'"
    with pytest.raises(ValueError):
        pg_module._literal("live'); DROP TABLE bids; --")


@pytest.mark.parametrize("value", ["0xab", bytearray(b"ab"), 1])
def test_bytea_literals_refuse_anything_but_bytes(value: object) -> None:
    with pytest.raises(TypeError):
        pg_module._bytea(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["Qev", "qev;drop", "1abc", "", "a-b", "x" * 64])
def test_schema_name_is_validated(bad: str) -> None:
    with pytest.raises(ValueError):
        PostgresBidStore("postgresql://postgres@127.0.0.1:5432/test", schema=bad)


def test_stale_lookup_probes_the_envelope_index_not_the_history(
    replicas: tuple[PostgresBidStore, PostgresBidStore], pg_dsn: str, pg_schema: str
) -> None:
    """No resurrection reads only the batch's (pair, hash) rows, in the first round trip:
    one bids_pair_hash probe per posted envelope, never the pair's whole history."""
    one, _ = replicas
    one.apply([put_op(A, 7, f"v{i}") for i in range(2_000)])  # a long history for one pair
    ops = [put_op(A, 7, "v3"), put_op(A, 7, "new"), put_op(A, 8, "v5")]
    reads = pg_module._lock_statements(redemptions_by_auction(ops), stale_lookups(ops)).decode()
    lookup = reads.split(";\n")[-1]  # the last statement of the first round trip
    assert "ciphertext_hash = u.h" in lookup
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        conn.execute(sql.SQL("ANALYZE {}.bids").format(sql.Identifier(pg_schema)))
        plan = "\n".join(
            row[0] for row in conn.execute(("EXPLAIN (ANALYZE, COSTS OFF) " + lookup).encode())
        )
    assert "Index Scan using bids_pair_hash" in plan, plan
    assert "Seq Scan" not in plan, plan
    results = one.apply(ops)
    assert [type(r).__name__ for r in results] == ["StaleEnvelopeError", "PutResult", "PutResult"]


def test_store_sessions_commit_synchronously_whatever_the_default(
    pg_dsn: str, pg_schema: str
) -> None:
    """synchronous_commit=off as the session default (here from the DSN's options; a role's
    or database's setting arrives the same way): the store's connections run with it on."""
    sep = "&" if "?" in pg_dsn else "?"
    dsn = f"{pg_dsn}{sep}options=-c%20synchronous_commit%3Doff"
    with psycopg.connect(dsn) as plain:  # the default the store's sessions start from
        assert plain.execute("SHOW synchronous_commit").fetchone() == ("off",)
    store = make_pg_store(dsn, pg_schema, max_size=2)
    try:
        store.migrate()
        store.apply([put_op(A, 1, "durable")])
        for _ in range(3):
            row = store._read(lambda conn: conn.execute("SHOW synchronous_commit").fetchone())
            assert row == ("on",)
    finally:
        store.close()
