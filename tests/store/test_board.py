"""The keypers' bulletin board in the store (PROTOCOL 10), on SQLite and PostgreSQL: one
message per slot for ever, identical re-posts answered from the store, racing replicas meet
at the slot's constraint, and everything survives a reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearing.store.base import BidStore
from clearing.store.board import BoardOutcome, BoardRecord
from clearing.store.sqlite import SqliteBidStore

from .conftest import make_pg_store, run_threads

T = 1_767_225_600


def rec(kind: str, a: int, b: int = 0, body: bytes = b"{}", auction: int = T) -> BoardRecord:
    return BoardRecord(auction, kind, a, b, body, 1_000 + a)


def test_put_identical_conflict_and_order(store: BidStore) -> None:
    board = store  # both backends are BoardStores too
    deal = rec("deal", 1, body=b'{"dealer":1}')
    assert board.board_put(deal) == (BoardOutcome.CREATED, deal)  # type: ignore[attr-defined]
    # the same bytes again: nothing written, the stored row returned (with its first time)
    again = BoardRecord(T, "deal", 1, 0, b'{"dealer":1}', 9_999)
    assert board.board_put(again) == (BoardOutcome.IDENTICAL, deal)  # type: ignore[attr-defined]
    # other bytes for the same slot: refused, the first one stays
    other = rec("deal", 1, body=b'{"dealer":1,"x":2}')
    assert board.board_put(other) == (BoardOutcome.CONFLICT, deal)  # type: ignore[attr-defined]
    # slots are per kind and per (a, b); auctions are separate boards
    rows = [
        rec("complaint", 2, 1),
        rec("complaint", 1, 2),
        rec("answer", 1, 2, body=b"answer"),
        rec("share", 3),
        rec("deal", 1, auction=T + 1),
    ]
    for r in rows:
        assert board.board_put(r)[0] is BoardOutcome.CREATED  # type: ignore[attr-defined]
    got = board.board_records(T)  # type: ignore[attr-defined]
    assert got == [deal, *rows[:4]]  # insertion order
    assert board.board_records(T + 1) == [rows[4]]  # type: ignore[attr-defined]
    assert board.board_records(T + 2) == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "bad",
    [
        BoardRecord(T, "vote", 1, 0, b"{}", 1),
        BoardRecord(T, "deal", 0, 0, b"{}", 1),
        BoardRecord(-1, "deal", 1, 0, b"{}", 1),
        BoardRecord(T, "deal", 1, 0, "text", 1),  # type: ignore[arg-type]
        BoardRecord(T, "deal", 1, -3, b"{}", 1),
    ],
)
def test_records_that_do_not_fit_are_caller_bugs(store: BidStore, bad: BoardRecord) -> None:
    with pytest.raises(ValueError):
        store.board_put(bad)  # type: ignore[attr-defined]
    assert store.board_records(T) == []  # type: ignore[attr-defined]


def test_racing_writers_one_slot_one_winner(store: BidStore) -> None:
    """Sixteen threads post different bodies to one slot: exactly one is created, every
    other thread sees the winner's bytes (PostgreSQL: the unique constraint decides)."""
    outcomes: list[tuple[BoardOutcome, BoardRecord]] = []

    def post(i: int) -> None:
        outcomes.append(store.board_put(rec("share", 4, body=f"share {i}".encode())))  # type: ignore[attr-defined]

    run_threads([lambda i=i: post(i) for i in range(16)])
    created = [r for o, r in outcomes if o is BoardOutcome.CREATED]
    assert len(created) == 1
    assert {r.body for _, r in outcomes} == {created[0].body}
    assert [o for o, _ in outcomes].count(BoardOutcome.CONFLICT) == 15
    assert store.board_records(T) == created  # type: ignore[attr-defined]


def test_board_survives_a_reopen_sqlite(tmp_path: Path) -> None:
    first = SqliteBidStore(tmp_path / "b.db")
    first.migrate()
    first.board_put(rec("deal", 2, body=b"durable"))
    first.close()
    second = SqliteBidStore(tmp_path / "b.db")
    second.migrate()
    try:
        assert [r.body for r in second.board_records(T)] == [b"durable"]
    finally:
        second.close()


def test_two_postgres_replicas_share_one_board(pg_dsn: str, pg_schema: str) -> None:
    a, b = make_pg_store(pg_dsn, pg_schema), make_pg_store(pg_dsn, pg_schema)
    try:
        a.migrate()
        b.migrate()
        assert a.board_put(rec("complaint", 1, 3, body=b"x"))[0] is BoardOutcome.CREATED
        assert b.board_put(rec("complaint", 1, 3, body=b"x"))[0] is BoardOutcome.IDENTICAL
        assert b.board_put(rec("complaint", 1, 3, body=b"y"))[0] is BoardOutcome.CONFLICT
        assert [r.body for r in b.board_records(T)] == [b"x"]
    finally:
        a.close()
        b.close()
