"""The ``registry`` target's close on py-evm (network blocked): the whole month to the wei
against a reference of the draft's rules written here, a keeper killed after every step (and
with every transaction mined but unrecorded) converging with no second post, a restart in the
middle of the postBids batches, and each hazard of PROTOCOL 11.4 avoided (or, already on
chain, refused loudly)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from clearing.store.base import BidStore
from keeper.duties.registry import RegistryCloseReport, RegistryKeeper
from keeper.jobs import KeeperStateError

from .conftest import Env, PyEvmMonth
from .crash import Crash, die_after_tx, die_before
from .month import (
    BOOK,
    BPS,
    E18,
    KEY,
    REGISTRY_FEE_BPS,
    REGISTRY_POST_BIDS,
    REGISTRY_REORDER_BIDS,
    REGISTRY_STEPS,
    RESULT,
    SETTLEMENT,
    RegistryMonth,
    artifact,
    expected_book_root,
)

# --- an independent reference of the draft's rules ---------------------------------------------


@dataclass(frozen=True)
class MovedBid:
    redemption_id: int
    queue_id: int
    pending: int  # of queue_id after the reorder
    burnt: int
    rest: int | None  # partial bid: what stays under the old id


@dataclass
class Expected:
    ranked: list[Any]  # Planned, rule-2 order
    moved: list[MovedBid]
    fees: list[int]  # per reorder call
    pending: dict[int, int]  # every request after the reorder
    queue: list[int]  # from the head after the reorder
    index: int  # the vault's id counter after the reorder


def batches(n: int, size: int) -> list[int]:
    return [min(size, n - i) for i in range(0, n, size)]


def expected_reorder(m: RegistryMonth) -> Expected:
    """Rules 0-2 from the plan, then the draft's reorder in the keeper's batches."""
    ranked = sorted(
        (p for p in m.plan.values() if p.excluded is None),
        key=lambda p: (-p.basis_point, p.redemption_id),
    )
    pending = dict(m.pending)
    index = m.index_at_close
    moved: list[MovedBid] = []
    fees: list[int] = []
    at = 0
    for count in batches(len(ranked), REGISTRY_REORDER_BIDS):
        burnt_sum = 0
        for p in ranked[at : at + count]:
            have = pending[p.redemption_id]
            size = min(p.shares, have)
            burnt = size * p.basis_point // BPS
            if size == have:
                pending[p.redemption_id] = have - burnt
                moved.append(MovedBid(p.redemption_id, p.redemption_id, have - burnt, burnt, None))
            else:
                index += 1
                pending[p.redemption_id] = have - size
                pending[index] = size - burnt
                moved.append(MovedBid(p.redemption_id, index, size - burnt, burnt, have - size))
            burnt_sum += burnt
        fees.append(burnt_sum * REGISTRY_FEE_BPS // BPS)
        at += count
    front = [x.queue_id for x in moved]
    queue = front + [rid for rid in m.queue_at_close if rid not in front]
    return Expected(ranked, moved, fees, pending, queue, index)


# --- what a closed registry month looks like --------------------------------------------------


def registry_fingerprint(m: RegistryMonth) -> dict[str, Any]:
    """Every piece of chain state the close touches (not block numbers or timestamps)."""
    c, t = m.chain, m.auction_id
    reg = m.registry_contract()
    index = c.queue_info().index
    s = c.settled(t)
    return {
        "requests": {rid: m.redemption(rid) for rid in range(1, index + 1)},
        "queue": m.queue(),
        "queue_info": c.queue_info(),
        "registry": tuple(reg.functions.auction(t).call()),
        "previous": reg.functions.previousAuctionId().call(),
        "posted": [tuple(b) for b in reg.functions.bids(t, 0, 100).call()],
        "fee_shares": m.susdai(m.fee_recipient),
        "vault_usdai": m.usdai(m.deployment.vault),
        "key": c.key_state(t),
        "book_commitment": (s.allocation_root, s.bid_book_root, s.total_shares, s.total_payout),
        "book": tuple(c.settlement.functions.bookCommitment(t).call())[:2],
        "urgent_nonce": m.w3.eth.get_transaction_count(m.urgent_account.address),
        "house_nonce": m.w3.eth.get_transaction_count(m.house_account.address),
        "reorder_calls": len(c.vault.events.RedemptionsReordered().get_logs(from_block=0)),
        "service_calls": len(c.vault.events.RedemptionsServiced().get_logs(from_block=0)),
        "registry_settlements": len(reg.events.AuctionSettled().get_logs(from_block=0)),
    }


def check_registry_closed(m: RegistryMonth, store: BidStore) -> tuple[dict[str, Any], Expected]:
    """The whole month-end against the reference, to the wei; returns (fingerprint, reference)."""
    c, t = m.chain, m.auction_id
    want = expected_reorder(m)
    state = registry_fingerprint(m)
    result = artifact(store, t, RESULT)

    # rule 0 and rule 2: the result and the registry hold exactly the valid bids, in order
    assert {int(e["redemption_id"]): e["reason"] for e in result["excluded"]} == {
        rid: p.excluded for rid, p in m.plan.items() if p.excluded
    }
    assert [int(b["redemption_id"]) for b in result["bids"]] == [
        p.redemption_id for p in want.ranked
    ]
    assert state["posted"] == [
        (t, p.redemption_id, p.shares, p.basis_point, 0) for p in want.ranked
    ]
    n = len(want.ranked)
    assert n == 9
    assert state["registry"] == (n, n, want.moved[-1].queue_id)
    assert state["previous"] == t
    assert state["registry_settlements"] == 1
    assert state["reorder_calls"] == len(batches(n, REGISTRY_REORDER_BIDS)) == 3

    # burns, new ids, the fee on each call's sum; reorder events as published
    published = result["reorder"]
    assert [int(x["fee"]) for x in published["calls"]] == want.fees
    assert [
        (
            int(x["redemption_id"]),
            int(x["queue_id"]),
            int(x["pending_shares"]),
            int(x["shares_burnt"]),
        )
        for x in published["moved"]
    ] == [(x.redemption_id, x.queue_id, x.pending, x.burnt) for x in want.moved]
    partial = [x for x in want.moved if x.rest is not None]
    assert len(partial) == 3  # requests 1, 9 and 10 split
    assert [x.queue_id for x in partial] == list(range(m.index_at_close + 1, want.index + 1))
    assert state["queue_info"].index == want.index
    assert state["fee_shares"] == sum(want.fees) > 0
    assert int(published["fee_shares"]) == sum(want.fees)
    assert int(published["total_burnt"]) == sum(x.burnt for x in want.moved)

    # servicing: the queue after the reorder, walked from its head at the service's price
    (serviced,) = c.vault.events.RedemptionsServiced().get_logs(from_block=0)
    price = c.share_price(serviced["blockNumber"] - 1)
    remaining = m.free_liquidity
    paid: dict[int, tuple[int, int]] = {}
    for rid in want.queue:
        have = want.pending[rid]
        if have == 0:
            continue
        if rid == m.extra["late_rid"] or remaining <= 0:
            break
        take = min(have, remaining * E18 // price)
        if take == 0:
            break
        paid[rid] = (take, take * price // E18)
        remaining -= take * price // E18
        if take < have:
            break
    assert len(paid) >= 3
    assert serviced["args"]["shares"] == sum(x[0] for x in paid.values())
    assert serviced["args"]["amount"] == sum(x[1] for x in paid.values())
    for rid, before in want.pending.items():
        take, amount = paid.get(rid, (0, 0))
        assert state["requests"][rid] == (before - take, take, amount), rid
    # the queue now: what servicing left, in the reordered order
    left = [rid for rid in want.queue if state["requests"][rid][0] > 0]
    assert state["queue"] == left
    # hazard 3 in the model: the aggregate is the queue's pending plus every fee minted
    assert state["queue_info"].pending == sum(r[0] for r in state["requests"].values()) + sum(
        want.fees
    )

    # the book commitment and the key on the settlement contract
    assert state["book_commitment"] == (bytes(32), expected_book_root(m), 0, 0)
    assert state["book"] == (expected_book_root(m), len(artifact(store, t, BOOK)["bids"]))
    assert state["key"].revealed and state["key"].private_key == m.secret
    assert artifact(store, t, KEY)["private_key"] == "0x" + m.secret.hex()
    assert artifact(store, t, SETTLEMENT)["status"] == "settled"
    assert artifact(store, t, BOOK)["bid_book_root"] == result["bid_book_root"]
    return state, want


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(
    _pyevm_registry_month: PyEvmMonth, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The chain state after one uninterrupted close."""
    m = _pyevm_registry_month.month
    _pyevm_registry_month.tester.revert_to_snapshot(_pyevm_registry_month.snapshot)
    store = m.open_store(tmp_path_factory.mktemp("registry-reference") / "qev.db")
    try:
        report = m.keeper(store).close_auction(m.auction_id)
        assert report.done == REGISTRY_STEPS
        return {"state": registry_fingerprint(m), "result": artifact(store, m.auction_id, RESULT)}
    finally:
        store.close()
        _pyevm_registry_month.tester.revert_to_snapshot(_pyevm_registry_month.snapshot)


class Recorder:
    """A sender that remembers the labels it sent, and dies after the ``nth`` send whose label
    starts with ``prefix`` was mined (the keeper never records it)."""

    def __init__(self, inner: Any, prefix: str = "", nth: int = 0) -> None:
        self.inner, self.prefix, self.nth = inner, prefix, nth
        self.labels: list[str] = []

    @property
    def address(self) -> str:
        return str(self.inner.address)

    def simulate(self, fn: Any, *, block: int | str) -> bytes:
        return bytes(self.inner.simulate(fn, block=block))

    def send(self, fn: Any, *, label: str) -> Any:
        receipt = self.inner.send(fn, label=label)
        self.labels.append(label)
        if self.nth and sum(x.startswith(self.prefix) for x in self.labels) == self.nth:
            raise Crash(f"killed after {label} was mined")
        return receipt


class Hooked:
    """A sender that runs ``hooks[n]`` right after the n-th confirmed send whose label starts
    with ``prefix`` (the keeper goes on: nothing is killed)."""

    def __init__(self, inner: Any, prefix: str, hooks: dict[int, Callable[[], None]]) -> None:
        self.inner, self.prefix, self.hooks = inner, prefix, hooks
        self.labels: list[str] = []

    @property
    def address(self) -> str:
        return str(self.inner.address)

    def simulate(self, fn: Any, *, block: int | str) -> bytes:
        return bytes(self.inner.simulate(fn, block=block))

    def send(self, fn: Any, *, label: str) -> Any:
        receipt = self.inner.send(fn, label=label)
        self.labels.append(label)
        if label.startswith(self.prefix):
            hook = self.hooks.get(sum(x.startswith(self.prefix) for x in self.labels))
            if hook is not None:
                hook()
        return receipt


def _admin(m: RegistryMonth, fn: Any) -> None:
    from keeper.deploy import transact

    transact(m.w3, fn, m.admin)


# --- the month --------------------------------------------------------------------------------


def test_registry_month_to_the_wei(renv: Env, reference: dict[str, Any]) -> None:
    m: RegistryMonth = renv.month  # type: ignore[assignment]
    store = renv.store()
    keeper = m.keeper(store)
    assert isinstance(keeper, RegistryKeeper)
    report = keeper.close_auction(m.auction_id)
    assert isinstance(report, RegistryCloseReport)
    assert report.done == REGISTRY_STEPS and report.skipped == []
    state, _ = check_registry_closed(m, store)
    assert state == reference["state"]
    # batches: 9 bids posted 4 + 4 + 1, reordered 3 + 3 + 3; every transaction paid gas
    assert len(report.batches["postBids"]) == len(batches(9, REGISTRY_POST_BIDS)) == 3
    assert len(report.batches["reorderRedemptions"]) == 3
    assert all(g > 21_000 for gas in report.batches.values() for g in gas)
    assert set(report.gas) == {
        "commitBook",
        "bookSettle",
        "postBids",
        "settleAuction",
        "reorderRedemptions",
        "serviceRedemptions",
    }
    assert (report.posted, report.reordered) == (9, 9)
    # urgent lane: key, book (commit + settle), 3 posts, settle, 3 reorders, reveal;
    # housekeeping: one service
    assert state["urgent_nonce"] == 1 + 2 + 3 + 1 + 3 + 1
    assert state["house_nonce"] == 1
    # a second close (the same or a restarted keeper) changes nothing
    again = m.keeper(renv.store()).close_auction(m.auction_id)
    assert again.done == [] and again.skipped == REGISTRY_STEPS
    assert registry_fingerprint(m) == state


# crash point -> (how the first keeper dies, the steps the restarted keeper does)
def _after(method: str) -> Callable[[Any], None]:
    return die_before(method)


REGISTRY_CRASHES: dict[str, tuple[Callable[[Any], None], list[str]]] = {
    "after-freeze": (_after("_fix_book"), REGISTRY_STEPS[1:]),
    "after-commit-book": (_after("_validated"), REGISTRY_STEPS[2:]),
    "after-validate": (_after("_post"), REGISTRY_STEPS[3:]),
    "after-post": (_after("_settle_registry"), REGISTRY_STEPS[4:]),
    "after-settle": (_after("_reorder"), REGISTRY_STEPS[5:]),
    "after-reorder": (_after("_service_walk"), REGISTRY_STEPS[6:]),
    "after-service": (_after("_reveal"), REGISTRY_STEPS[7:]),
    # mined, but the keeper dies before writing anything down
    "commit-book-tx-mined": (die_after_tx("urgent", "commitBook"), REGISTRY_STEPS[1:]),
    "book-settle-tx-mined": (die_after_tx("urgent", "settlement.settle"), REGISTRY_STEPS[2:]),
    "first-post-tx-mined": (die_after_tx("urgent", "registry.postBids"), REGISTRY_STEPS[3:]),
    "settle-tx-mined": (die_after_tx("urgent", "registry.settle"), REGISTRY_STEPS[5:]),
    "first-reorder-tx-mined": (die_after_tx("urgent", "vault.reorder"), REGISTRY_STEPS[5:]),
    "service-tx-mined": (die_after_tx("housekeeping", "vault.service"), REGISTRY_STEPS[7:]),
    "reveal-tx-mined": (die_after_tx("urgent", "revealAuctionKey"), []),
}


@pytest.mark.parametrize("crash", list(REGISTRY_CRASHES))
def test_killed_and_restarted_converges(renv: Env, reference: dict[str, Any], crash: str) -> None:
    m: RegistryMonth = renv.month  # type: ignore[assignment]
    arm, redo = REGISTRY_CRASHES[crash]
    first = m.keeper(renv.store())
    arm(first)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    restarted = m.keeper(renv.store())
    report = restarted.close_auction(m.auction_id)
    assert report.done == redo
    assert report.skipped == [s for s in REGISTRY_STEPS if s not in redo]
    state, _ = check_registry_closed(m, renv.store())
    # the same chain state, and the same number of transactions: nothing was posted twice
    assert state == reference["state"]
    result = artifact(renv.store(), m.auction_id, RESULT)
    for name in ("bids", "reorder", "snapshot", "bid_book_root", "excluded"):
        assert result[name] == reference["result"][name], name
    assert m.keeper(renv.store()).close_auction(m.auction_id).done == []


def test_restart_in_the_middle_of_post_batches_resumes_exactly(
    renv: Env, reference: dict[str, Any]
) -> None:
    m: RegistryMonth = renv.month  # type: ignore[assignment]
    t = m.auction_id
    first = m.keeper(renv.store())
    first.urgent = Recorder(first.urgent, "registry.postBids", nth=2)
    with pytest.raises(Crash):
        first.close_auction(t)
    reg = m.registry_contract()
    assert reg.functions.auction(t).call()[0] == 8  # two batches of 4 are on chain
    restarted = m.keeper(renv.store())
    recorder = Recorder(restarted.urgent)
    restarted.urgent = recorder
    report = restarted.close_auction(t)
    posts = [x for x in recorder.labels if x.startswith("registry.postBids")]
    assert posts == [f"registry.postBids({t}) bids 9..9"]  # exactly the rest
    assert report.done == REGISTRY_STEPS[3:]
    state, _ = check_registry_closed(m, renv.store())
    assert state == reference["state"]


def test_a_post_batch_dropped_after_its_confirmation_is_posted_again(
    renv: Env, reference: dict[str, Any]
) -> None:
    """The chain loses the second postBids batch after the keeper saw it confirmed (py-evm:
    back to a snapshot taken after the first): the keeper finds the registry short of the
    batch's bids and posts them again from the chain's count."""
    m: RegistryMonth = renv.month  # type: ignore[assignment]
    t = m.auction_id
    keeper = m.keeper(renv.store())
    snapshots: dict[str, Any] = {}

    def after_first() -> None:
        snapshots["first"] = renv.tester.take_snapshot()

    def after_second() -> None:
        assert m.registry_contract().functions.auction(t).call()[0] == 8
        renv.tester.revert_to_snapshot(snapshots["first"])  # the second batch is gone
        assert m.registry_contract().functions.auction(t).call()[0] == 4

    hooked = Hooked(keeper.urgent, "registry.postBids", {1: after_first, 2: after_second})
    keeper.urgent = hooked
    report = keeper.close_auction(t)
    assert [x for x in hooked.labels if x.startswith("registry.postBids")] == [
        f"registry.postBids({t}) bids 1..4",
        f"registry.postBids({t}) bids 5..8",
        f"registry.postBids({t}) bids 5..8",
        f"registry.postBids({t}) bids 9..9",
    ]
    assert report.done == REGISTRY_STEPS
    state, _ = check_registry_closed(m, renv.store())
    assert state == reference["state"]


def test_book_with_no_valid_bid_skips_the_registry(renv: Env, tmp_path: Any) -> None:
    """An empty book: the root 0 is committed, nothing is posted, settled or reordered (the
    registry refuses to settle an auction without bids); the queue is serviced, the key
    revealed."""
    from clearing.sealing import public_key_of
    from clearing.store import open_store

    m: RegistryMonth = renv.month  # type: ignore[assignment]
    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    renv.stores.append(store)
    store.put_artifact(m.auction_id, "public_key", public_key_of(m.secret))
    report = m.keeper(store).close_auction(m.auction_id)
    assert report.done == ["freeze", "commit_book", "validate", "service", "reveal"]
    assert report.skipped == ["post", "settle", "reorder"]
    reg = m.registry_contract()
    assert reg.functions.auction(m.auction_id).call() == [0, 0, 0]
    assert reg.functions.previousAuctionId().call() == 0
    assert m.chain.settled(m.auction_id).bid_book_root == bytes(32)
    assert artifact(store, m.auction_id, SETTLEMENT)["status"] == "settled"
    assert artifact(store, m.auction_id, RESULT)["bids"] == []


# --- hazards (PROTOCOL 11.4) -----------------------------------------------------------------


def test_hazard1_keeper_counts_exactly_what_is_left(renv: Env) -> None:
    m: RegistryMonth = renv.month  # type: ignore[assignment]
    m.keeper(renv.store()).close_auction(m.auction_id)
    calls = m.chain.vault.events.RedemptionsReordered().get_logs(from_block=0)
    counts = [int(e["args"]["count"]) for e in calls]
    assert counts == [3, 3, 3]
    left = 9
    for count in counts:
        assert count <= left  # never past the bids left
        left -= count
    assert [bool(e["args"]["done"]) for e in calls] == [False, False, True]
    assert tuple(m.registry_contract().functions.auction(m.auction_id).call())[:2] == (9, 9)


def test_hazard1_already_on_chain_stops_the_keeper(renv: Env) -> None:
    m: RegistryMonth = renv.month  # type: ignore[assignment]
    t = m.auction_id
    first = m.keeper(renv.store())
    die_before("_reorder")(first)
    with pytest.raises(Crash):
        first.close_auction(t)
    _admin(m, m.chain.vault.functions.reorderRedemptions(t, 9 + 5))  # an admin's over-long count
    assert m.registry_contract().functions.auction(t).call()[:2] == [9, 14]
    nonce = m.w3.eth.get_transaction_count(m.urgent_account.address)
    with pytest.raises(KeeperStateError, match="hazard 1"):
        m.keeper(renv.store()).close_auction(t)
    assert m.w3.eth.get_transaction_count(m.urgent_account.address) == nonce  # nothing sent
    assert m.w3.eth.get_transaction_count(m.house_account.address) == 0


def _head_serviced_after_posting(renv: Env) -> RegistryMonth:
    """The keeper dies after posting; an admin then services the head, bid 1's request."""
    m: RegistryMonth = renv.month  # type: ignore[assignment]
    first = m.keeper(renv.store())
    die_before("_settle_registry")(first)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    head = m.queue()[0]
    assert m.registry_contract().functions.redemptionId(m.auction_id, 1).call() == head
    _admin(m, m.chain.vault.functions.serviceRedemptions(m.pending[head]))
    assert m.redemption(head)[0] == 0
    return m


def test_hazard2_keeper_refuses_to_settle_once_bid_one_is_emptied(renv: Env) -> None:
    m = _head_serviced_after_posting(renv)
    nonce = m.w3.eth.get_transaction_count(m.urgent_account.address)
    with pytest.raises(KeeperStateError, match="hazard 2"):
        m.keeper(renv.store()).close_auction(m.auction_id)
    assert m.w3.eth.get_transaction_count(m.urgent_account.address) == nonce
    # not settled: the queue can still be serviced, and nothing is stranded
    assert m.registry_contract().functions.previousAuctionId().call() == 0


def test_hazard2_keeper_refuses_to_reorder_a_settled_auction(renv: Env) -> None:
    from keeper.targets.registry import AUCTION_ADMIN_ROLE

    m = _head_serviced_after_posting(renv)
    reg = m.registry_contract()
    _admin(m, reg.functions.grantRole(AUCTION_ADMIN_ROLE, m.admin))
    _admin(m, reg.functions.settleAuction(m.auction_id))  # someone settles anyway
    nonce = m.w3.eth.get_transaction_count(m.urgent_account.address)
    with pytest.raises(KeeperStateError, match="hazard 2"):
        m.keeper(renv.store()).close_auction(m.auction_id)
    assert m.w3.eth.get_transaction_count(m.urgent_account.address) == nonce
    assert reg.functions.auction(m.auction_id).call()[1] == 0  # nothing reordered


def test_hazard2_already_on_chain_is_reported(renv: Env) -> None:
    from keeper.targets.registry import AUCTION_ADMIN_ROLE

    m = _head_serviced_after_posting(renv)
    reg = m.registry_contract()
    _admin(m, reg.functions.grantRole(AUCTION_ADMIN_ROLE, m.admin))
    _admin(m, reg.functions.settleAuction(m.auction_id))
    _admin(m, m.chain.vault.functions.reorderRedemptions(m.auction_id, 9))  # the hazard itself
    stranded = [rid for rid in m.queue_at_close if rid not in m.queue()]
    assert stranded  # requests moved and cut off from the head
    with pytest.raises(KeeperStateError, match="hazard 2"):
        m.keeper(renv.store()).close_auction(m.auction_id)
    assert m.w3.eth.get_transaction_count(m.house_account.address) == 0  # no servicing


def test_hazard3_keeper_services_by_walking_the_queue(renv: Env) -> None:
    m: RegistryMonth = renv.month  # type: ignore[assignment]
    t = m.auction_id
    first = m.keeper(renv.store())
    die_before("_service_walk")(first)
    with pytest.raises(Crash):
        first.close_auction(t)
    # plenty of liquidity now: the whole matured queue can be paid
    _admin(m, m.chain.usdai.functions.mint(m.deployment.vault, 10**9 * E18))
    late = m.extra["late_rid"]
    info = m.chain.queue_info()
    walked = sum(m.redemption(rid)[0] for rid in m.queue() if rid != late)
    fees = m.susdai(m.fee_recipient)
    assert info.pending == walked + m.pending[late] + fees  # hazard 3: the fee counted twice
    # servicing the aggregate (less the unmatured request) would revert...
    house = m.keeper(renv.store()).housekeeping
    with pytest.raises(Exception, match="InvalidRedemptionState"):
        house.simulate(
            m.chain.vault.functions.serviceRedemptions(info.pending - m.pending[late]),
            block="latest",
        )
    # ...the keeper walks the queue and services exactly what it holds
    report = m.keeper(renv.store()).close_auction(t)
    assert report.done == ["service", "reveal"]
    assert report.serviced_shares == walked
    assert m.queue() == [late]
    assert m.chain.queue_info().pending == m.pending[late] + fees


# --- the chain adapter on the draft vault's views ---------------------------------------------


def test_chain_probes_the_views_the_draft_vault_lacks(renv: Env) -> None:
    from clearing.config import ConfigError
    from keeper.chain import Chain

    m: RegistryMonth = renv.month  # type: ignore[assignment]
    dep = m.deployment
    hidden = Chain(m.w3, dep.vault, dep.settlement, genesis=m.genesis)
    assert not any(
        hidden.has_view(v) for v in ("balances", "genesisTimestamp", "qevRedemptionInfo")
    )
    rids = sorted(m.sizes)
    seen = ([hidden.request(r) for r in rids], hidden.free_liquidity(), hidden.genesis())
    _admin(m, m.chain.vault.functions.hideModelViews(False))
    shown = Chain(m.w3, dep.vault, dep.settlement)
    assert all(shown.has_view(v) for v in ("balances", "genesisTimestamp", "qevRedemptionInfo"))
    assert seen == ([shown.request(r) for r in rids], shown.free_liquidity(), shown.genesis())
    _admin(m, m.chain.vault.functions.hideModelViews(True))
    with pytest.raises(ConfigError, match="genesis"):
        Chain(m.w3, dep.vault, dep.settlement).genesis()
    with pytest.raises(ConfigError, match="not a window boundary"):
        Chain(m.w3, dep.vault, dep.settlement, genesis=m.genesis + 1).genesis()


def test_unknown_target_stops_at_startup() -> None:
    from clearing.config import ConfigError
    from keeper.factory import build_keeper
    from keeper.settings import KeeperSettings

    settings = KeeperSettings.model_construct(target="auction-house")
    with pytest.raises(ConfigError, match="unknown target 'auction-house'"):
        build_keeper(settings)


def test_registry_address_from_the_vault(renv: Env) -> None:
    from keeper.factory import registry_address
    from keeper.settings import KeeperSettings

    m: RegistryMonth = renv.month  # type: ignore[assignment]
    settings = KeeperSettings.model_construct(target="registry")
    assert registry_address(settings, m.chain) == m.registry


def test_the_loop_runs_the_registry_close(renv: Env, reference: dict[str, Any]) -> None:
    """``keeper.loop.tick`` drives a RegistryKeeper as it drives the merkle keeper: it opens the
    next auction, closes the past one, and the steps reach the metrics."""
    from clearing.calendar import AuctionCalendar
    from keeper.loop import KeeperMetrics, tick

    m: RegistryMonth = renv.month  # type: ignore[assignment]
    keeper = m.keeper(renv.store())
    metrics = KeeperMetrics()
    closed = tick(keeper, AuctionCalendar(m.genesis, 30 * 86_400), 3, metrics=metrics)
    assert closed == [m.auction_id]
    assert m.chain.key_state(m.auction_id + 30 * 86_400).committed  # the next auction opened
    steps = {
        s.labels["step"]
        for metric in metrics.registry.collect()
        for s in metric.samples
        if s.name == "qev_keeper_close_step_timestamp"
    }
    assert steps == set(REGISTRY_STEPS)
    state, _ = check_registry_closed(m, renv.store())
    assert {k: v for k, v in state.items() if k != "urgent_nonce"} == {
        k: v for k, v in reference["state"].items() if k != "urgent_nonce"
    }
    assert state["urgent_nonce"] == reference["state"]["urgent_nonce"] + 1  # the next key
    assert tick(keeper, AuctionCalendar(m.genesis, 30 * 86_400), 3) == []  # nothing left
