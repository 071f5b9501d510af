"""Keeper close on py-evm (network blocked): balances to the wei, and a keeper killed after any
step (or between a transaction and its bookkeeping) and restarted converges to the same chain
state with exactly one settlement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clearing.hexcodec import to_hex
from keeper.jobs import KeeperStateError

from .conftest import Env, PyEvmMonth
from .crash import CRASHES, Crash, die_after_tx, die_before, skipped_on_restart
from .month import (
    BOOK,
    KEY,
    RESULT,
    SETTLEMENT,
    STEPS,
    TREE,
    artifact,
    check_closed,
    fingerprint,
)


@pytest.fixture(scope="module")
def reference(_pyevm_month: PyEvmMonth, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The chain state after one uninterrupted close (and its published result)."""
    m = _pyevm_month.month
    _pyevm_month.tester.revert_to_snapshot(_pyevm_month.snapshot)
    store = m.open_store(tmp_path_factory.mktemp("reference") / "qev.db")
    try:
        report = m.keeper(store).close_auction(m.auction_id)
        assert report.done == STEPS
        return {"state": fingerprint(m), "result": artifact(store, m.auction_id, RESULT)}
    finally:
        store.close()
        _pyevm_month.tester.revert_to_snapshot(_pyevm_month.snapshot)


def test_full_close_balances_to_the_wei(env: Env, reference: dict[str, Any]) -> None:
    m = env.month
    store = env.store()
    report = m.keeper(store).close_auction(m.auction_id)
    assert report.done == STEPS and report.skipped == []
    result, state = check_closed(m, store)
    assert report.claimed == result["winners"] == 6
    assert report.serviced_shares == sum(r[1] for r in state["requests"].values())
    assert set(report.gas) == {"settleAuction", "claimMultiple", "serviceRedemptions"}
    assert all(g > 21_000 for g in report.gas.values())
    settlement = artifact(store, m.auction_id, SETTLEMENT)
    assert settlement["status"] == "settled"
    assert settlement["tx"] == result["settlement_tx"]
    receipt = m.w3.eth.get_transaction_receipt(settlement["tx"])
    assert (receipt["status"], receipt["blockNumber"]) == (1, settlement["block"])
    # the close is deterministic: same roots and state as the reference run
    assert state == reference["state"]
    assert result["allocation_root"] == reference["result"]["allocation_root"]

    # a second close (the same or a restarted keeper) changes nothing
    again = m.keeper(env.store()).close_auction(m.auction_id)
    assert again.done == []
    assert again.skipped == ["freeze", "clear", "settle", "claims", "service", "reveal"]
    assert fingerprint(m) == state


@pytest.mark.parametrize("crash", list(CRASHES))
def test_killed_and_restarted_converges(env: Env, reference: dict[str, Any], crash: str) -> None:
    m = env.month
    arm, redo = CRASHES[crash]
    first = m.keeper(env.store())
    arm(first)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    settled_now = m.chain.is_settled(m.auction_id)
    assert settled_now == (crash not in ("after-freeze", "after-clear"))
    assert len(m.settled_events()) == int(settled_now)
    if crash == "after-freeze":  # frozen in the store (the fence); the book is stored later
        survivor = env.store()
        assert survivor.frozen(m.auction_id) is not None
        assert artifact(survivor, m.auction_id, BOOK) is None
        assert artifact(survivor, m.auction_id, RESULT) is None

    # a new process: new store object on the same file, new senders, new chain binding
    restarted = m.keeper(env.store())
    report = restarted.close_auction(m.auction_id)
    assert report.done == redo
    assert report.skipped == skipped_on_restart(redo)
    result, state = check_closed(m, env.store())
    assert state == reference["state"]
    for name in ("allocation_root", "bid_book_root", "total_payout", "snapshot"):
        assert result[name] == reference["result"][name]
    stored_book = artifact(env.store(), m.auction_id, BOOK)
    assert stored_book["bid_book_root"] == reference["result"]["bid_book_root"]
    # and once more: nothing left to do
    assert m.keeper(env.store()).close_auction(m.auction_id).done == []
    assert len(m.settled_events()) == 1


def test_settlement_record_repaired_after_restart(env: Env) -> None:
    m = env.month
    first = m.keeper(env.store())
    die_after_tx("urgent", "settleAuction")(first)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    m.keeper(env.store()).close_auction(m.auction_id)
    store = env.store()
    (event,) = m.settled_events()
    tx = to_hex(bytes(event["transactionHash"]))
    assert artifact(store, m.auction_id, SETTLEMENT) == {
        "status": "settled",
        "tx": tx,
        "block": event["blockNumber"],
    }
    assert artifact(store, m.auction_id, RESULT)["settlement_tx"] == tx


def test_reveal_tx_mined_then_killed_still_publishes_the_key(env: Env) -> None:
    m = env.month
    first = m.keeper(env.store())
    die_after_tx("urgent", "revealAuctionKey")(first)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    assert m.chain.key_state(m.auction_id).revealed
    assert artifact(env.store(), m.auction_id, KEY) is None  # died before publishing it
    report = m.keeper(env.store()).close_auction(m.auction_id)
    assert "reveal" in report.skipped
    key = artifact(env.store(), m.auction_id, KEY)
    assert key["private_key"] == to_hex(m.secret)
    assert key["public_key"] == to_hex(m.chain.key_state(m.auction_id).public_key)


def _crash_after_settle(env: Env) -> dict[str, Any]:
    m = env.month
    first = m.keeper(env.store())
    die_before("_push_claims")(first)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    result = artifact(env.store(), m.auction_id, RESULT)
    assert m.usdai(m.deployment.settlement) == int(result["total_payout"])  # in escrow
    return result


def _restore_from_backup(env: Env, tmp_path: Path) -> Any:
    """The store comes back from a backup taken before the close: bids and key only."""
    restored = env.month.open_store(tmp_path / "restored.db")
    env.stores.append(restored)
    return restored


def test_store_lost_after_settlement_rederives_the_result_and_finishes(
    env: Env, reference: dict[str, Any], tmp_path: Path
) -> None:
    """The snapshot is the first block at or after T, so a keeper that lost its store
    re-freezes the same book, re-clears at the same snapshot, finds the settled roots equal
    to its own and finishes the month without a second settlement."""
    m = env.month
    published = _crash_after_settle(env)
    restored = _restore_from_backup(env, tmp_path)
    report = m.keeper(restored).close_auction(m.auction_id)
    assert report.done == ["freeze", "clear", "claims", "service", "reveal"]
    assert report.skipped == ["settle"]
    assert len(m.settled_events()) == 1
    again = artifact(restored, m.auction_id, RESULT)
    assert again["allocation_root"] == published["allocation_root"]
    assert again["settlement_tx"] is not None  # the record is rebuilt from the event
    assert check_closed(m, restored)[1] == reference["state"]


def test_store_lost_after_settlement_publishes_nothing_contradicting_the_chain(
    env: Env, tmp_path: Path
) -> None:
    m = env.month
    _crash_after_settle(env)
    restored = _restore_from_backup(env, tmp_path)
    m.keeper(restored).close_auction(m.auction_id)
    served = artifact(restored, m.auction_id, RESULT)  # what the service would publish
    settled = m.chain.settled(m.auction_id)
    assert served is None or served["allocation_root"] == to_hex(settled.allocation_root)


def test_store_lost_after_settlement_rederives_the_same_result_at_the_same_snapshot(
    env: Env, reference: dict[str, Any], tmp_path: Path
) -> None:
    """Clearing is a pure function of the frozen book and the snapshot block: a keeper that
    re-clears at the original snapshot gets the settled roots back and finishes the month."""
    m = env.month
    published = _crash_after_settle(env)
    restored = _restore_from_backup(env, tmp_path)
    keeper = m.keeper(restored)
    pinned = (published["snapshot"]["block"], published["snapshot"]["timestamp"])
    keeper.chain.latest_block = lambda: pinned  # type: ignore[method-assign]
    report = keeper.close_auction(m.auction_id)
    assert report.done == ["freeze", "clear", "claims", "service", "reveal"]
    assert report.skipped == ["settle"]
    again = artifact(restored, m.auction_id, RESULT)
    assert {**again, "settlement_tx": None} == {**published, "settlement_tx": None}
    assert artifact(restored, m.auction_id, TREE) == artifact(env.store(), m.auction_id, TREE)
    assert check_closed(m, restored)[1] == reference["state"]


def test_open_auction_is_idempotent_and_refuses_another_key(env: Env) -> None:
    m = env.month
    keeper = m.keeper(env.store())
    assert keeper.open_auction(m.auction_id) is False  # committed when the month was built
    state = m.chain.key_state(m.auction_id)
    assert state.public_key == artifact_bytes(env, "public_key")
    other = m.keeper(env.store())
    other.cfg.master_secret = b"\x22" * 32
    with pytest.raises(KeeperStateError, match="another key committed"):
        other.open_auction(m.auction_id)


def test_refused_open_leaves_the_published_key_alone(env: Env) -> None:
    m = env.month
    committed = m.chain.key_state(m.auction_id).public_key
    other = m.keeper(env.store())
    other.cfg.master_secret = b"\x22" * 32
    with pytest.raises(KeeperStateError):
        other.open_auction(m.auction_id)
    # bidders read this key from the service: it must stay the committed one
    assert artifact_bytes(env, "public_key") == committed


def artifact_bytes(env: Env, name: str) -> bytes | None:
    return env.store().get_artifact(env.month.auction_id, name)


def test_close_before_t_is_refused(env: Env) -> None:
    m = env.month
    with pytest.raises(KeeperStateError, match="still open"):
        m.keeper(env.store()).close_auction(m.auction_id + 30 * 86_400)
