"""One small month for the keeper tests, on any node (py-evm or anvil).

Holders request redemptions in two windows, most of the vault's USDai is "deployed" (so the
auction is liquidity-limited), the keeper commits the auction key, sealed bids (a replaced
one, a cancelled one, and seven kinds of rule-0 exclusion) go straight into a SQLite store,
and time moves past T. ``expected_allocation`` re-derives the winners from the plan with a
reference implementation of pay-as-bid rule 3, independent of ``clearing.engine``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.logs import DISCARD

from clearing.bidding import seal_bid, sign_cancel
from clearing.calendar import REDEMPTION_WINDOW
from clearing.eip712 import Eip712Domain
from clearing.engine import Mode
from clearing.hexcodec import parse_address, to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import BID_BOOK_LEAF_TYPES, Bid, Envelope, SignedBid
from clearing.sealing import bid_info, derive_auction_secret, public_key_of, seal
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import BidStore, CancelBid, PutBid, StoreError
from keeper.chain import Chain
from keeper.deploy import Deployment, deploy_stack, transact
from keeper.jobs import Keeper, KeeperConfig
from keeper.senders import make_sender
from keeper.verify import DOCUMENT_FILES

E18 = 10**18
W = REDEMPTION_WINDOW
BPS = 10_000
SERVICE_KEY = hashlib.sha256(b"qev-keeper-test:service").digest()  # registered receiptSigner
FEE_BPS = 100  # admin fee: 1% of the burnt shares, minted as sUSDai to FEE_RECIPIENT
LIQUIDITY_BPS = 6_000  # the auction gets 60% of the free liquidity, FIFO the rest
N_HOLDERS = 14
MASTER = hashlib.sha256(b"qev-keeper-test:master").digest()

# artifact names in the store (plain strings: the helper module is being moved around)
BOOK, RESULT, TREE, SETTLEMENT, KEY, PUBLIC_KEY = (
    "book",
    "result",
    "allocation_tree",
    "settlement",
    "key",
    "public_key",
)


def key(label: str) -> bytes:
    """A deterministic secp256k1 test key (generated here, never a real key)."""
    return hashlib.sha256(b"qev-keeper-test:" + label.encode()).digest()


@dataclass(frozen=True)
class Planned:
    """One planned live bid and what rule 0 must say about it."""

    redemption_id: int
    controller: bytes
    shares: int
    basis_point: int
    excluded: str | None  # the exclusion reason, or None for a valid bid


@dataclass
class Month:
    """Everything a keeper test needs about the built month."""

    w3: Any
    admin: str
    deployment: Deployment
    chain: Chain
    genesis: int
    auction_id: int
    domain: Eip712Domain
    holders: list[Signer]
    rids: list[int]
    sizes: dict[int, int]  # redemption id -> requested shares
    fee_recipient: str
    urgent_account: LocalAccount
    house_account: LocalAccount
    ops: list[PutBid | CancelBid]
    plan: dict[int, Planned]  # redemption id -> the live bid of the frozen book
    price: int  # redemptionSharePrice at close (no transaction between close and snapshot)
    free_liquidity: int
    pending: dict[int, int] = field(default_factory=dict)  # pending shares at close
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def liquidity(self) -> int:
        """What the keeper packages for the auction."""
        return self.free_liquidity * LIQUIDITY_BPS // BPS

    def config(self) -> KeeperConfig:
        return KeeperConfig(MASTER, self.domain, Mode.PAY_AS_BID, liquidity_bps=LIQUIDITY_BPS)

    def keeper(
        self,
        store: BidStore,
        *,
        urgent: Any = None,
        house: Any = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> Keeper:
        """A fresh keeper: its own senders (lanes from the two keeper accounts) and chain."""
        chain = Chain(self.w3, self.deployment.vault, self.deployment.settlement)
        return Keeper(
            chain,
            store,
            urgent or make_sender(self.w3, self.urgent_account, poll_interval=0.01, deadline=60),
            house or make_sender(self.w3, self.house_account, poll_interval=0.01, deadline=60),
            self.config(),
            log=log,
            service_clock=lambda: chain.latest_block()[1],  # the service runs on chain time
        )

    def open_store(self, path: Path) -> BidStore:
        """A new store file holding this month's bids and the published public key."""
        store = open_store(f"sqlite:///{path}")
        results = store.apply(self.ops)
        errors = [r for r in results if isinstance(r, StoreError)]
        assert not errors, errors
        store.put_artifact(self.auction_id, PUBLIC_KEY, public_key_of(self.secret))
        return store

    @property
    def secret(self) -> bytes:
        return derive_auction_secret(MASTER, self.auction_id)

    # --- reads used by the assertions ---------------------------------------------------

    def usdai(self, who: str | bytes) -> int:
        addr = who if isinstance(who, str) else to_checksum_address(who)
        return int(self.chain.usdai.functions.balanceOf(addr).call())

    def susdai(self, who: str) -> int:
        return int(self.chain.vault.functions.balanceOf(who).call())

    def redemption(self, rid: int) -> tuple[int, int, int]:
        """(pendingShares, redeemableShares, withdrawableAmount) of a request."""
        (_, _, pending, redeemable, withdrawable, _, _), _ = self.chain.vault.functions.redemption(
            rid
        ).call()
        return int(pending), int(redeemable), int(withdrawable)

    def settled_events(self) -> list[Any]:
        return list(
            self.chain.settlement.events.AuctionSettled().get_logs(
                from_block=0, argument_filters={"auctionId": self.auction_id}
            )
        )


def artifact(store: BidStore, auction_id: int, name: str) -> Any:
    raw = store.get_artifact(auction_id, name)
    return None if raw is None else orjson.loads(raw)


def _rid(chain: Chain, receipt: Any) -> int:
    (event,) = chain.vault.events.RedeemRequest().process_receipt(receipt, errors=DISCARD)
    return int(event["args"]["requestId"])


def build_month(
    w3: Any,
    admin: str,
    urgent: LocalAccount,
    house: LocalAccount,
    fee_recipient: str,
    advance_to: Callable[[int], None],
    store_path: Path,
) -> Month:
    """Deploy, request, deploy liquidity, commit the key, seal bids, move past T."""
    dep = deploy_stack(
        w3,
        admin,
        [urgent.address, house.address],
        admin_fee_bps=FEE_BPS,
        fee_recipient=fee_recipient,
        receipt_signer=to_checksum_address(Signer(SERVICE_KEY).address),
    )
    chain = Chain(w3, dep.vault, dep.settlement)
    genesis = chain.genesis()
    auction_id = genesis + 2 * W
    vault, usdai = chain.vault, chain.usdai
    holders = [Signer(key(f"holder-{i}")) for i in range(N_HOLDERS)]
    late = Signer(key("late-holder"))
    # odd wei everywhere so every mulDiv rounds
    sizes = [(100 + 53 * i) * E18 + 1_000_003 * i + 7 for i in range(N_HOLDERS)]
    foreign_size, late_size = 250 * E18 + 5, 300 * E18 + 11
    total = sum(sizes) + foreign_size + late_size
    transact(w3, usdai.functions.mint(admin, 2 * total), admin)
    transact(w3, usdai.functions.approve(vault.address, 2 * total), admin)
    transact(w3, vault.functions.deposit(2 * total, admin), admin)

    def request(shares: int, controller: bytes) -> int:
        fn = vault.functions.requestRedeem(shares, to_checksum_address(controller), admin)
        return _rid(chain, transact(w3, fn, admin))

    rids: list[int] = []
    for i, (s, size) in enumerate(zip(holders, sizes, strict=True)):
        if i == 8:
            advance_to(genesis + W + 3_600)  # the rest in the auction's own window
        rids.append(request(size, s.address))
    foreign_rid = request(foreign_size, holders[11].address)  # holder 11's second request

    # most USDai works in strategies (NAV unchanged), then a month of yield
    held = int(usdai.functions.balanceOf(vault.address).call())
    deployed = held * 75 // 100
    transact(w3, usdai.functions.burn(vault.address, deployed), admin)
    transact(w3, vault.functions.setExternalAssets(deployed * 1_008 // 1_000), admin)

    secret = derive_auction_secret(MASTER, auction_id)
    domain = Eip712Domain("QEVSettlement", "1", int(w3.eth.chain_id), parse_address(dep.settlement))
    month = Month(
        w3=w3,
        admin=admin,
        deployment=dep,
        chain=chain,
        genesis=genesis,
        auction_id=auction_id,
        domain=domain,
        holders=holders,
        rids=rids,
        sizes={**dict(zip(rids, sizes, strict=True)), foreign_rid: foreign_size},
        fee_recipient=fee_recipient,
        urgent_account=urgent,
        house_account=house,
        ops=[],
        plan={},
        price=0,
        free_liquidity=0,
    )
    setup_store = month.open_store(store_path)
    assert month.keeper(setup_store).open_auction(auction_id) is True
    setup_store.close()
    pk = public_key_of(secret)
    assert bytes(chain.key_state(auction_id).public_key) == pk

    # --- sealed bids ---------------------------------------------------------------------
    received = genesis + W + 7_200
    ops: list[PutBid | CancelBid] = []
    plan: dict[int, Planned] = {}

    def put(env: Envelope) -> None:
        ops.append(
            PutBid(
                auction_id,
                env.redemption_id,
                env.controller,
                env.ciphertext,
                env.ciphertext_hash,
                env.signature,
                received + len(ops),
            )
        )

    def bid(i: int, shares: int, bp: int, excluded: str | None = None) -> Envelope:
        rid = rids[i]
        env = seal_bid(holders[i], Bid(auction_id, rid, shares, bp, 0), domain, pk)
        put(env)
        plan[rid] = Planned(rid, holders[i].address, shares, bp, excluded)
        return env

    bid(0, sizes[0], 250)
    bid(1, sizes[1] // 2, 40)
    bid(2, sizes[2], 5, "basis_point_out_of_range")
    bid(3, sizes[3], 900)
    bid(3, sizes[3], 1_200)  # replaced: only this one is live
    bid(4, sizes[4], 700, "stale_nonce")  # cancelled on-chain below (incrementNonce)
    bid(5, 0, 600, "zero_shares")
    bid(6, sizes[6], 300)
    # holder 7's envelope carries an inner bid signed by holder 8
    inner_bid = Bid(auction_id, rids[7], sizes[7], 450, 0)
    inner = SignedBid(inner_bid, holders[8].sign_digest(inner_bid.digest(domain)))
    ct = seal(inner.encode(), pk, bid_info(domain.chain_id, domain.verifying_contract, auction_id))
    unsigned = Envelope(auction_id, rids[7], holders[7].address, ct, b"")
    put(
        Envelope(
            auction_id,
            rids[7],
            holders[7].address,
            ct,
            holders[7].sign_digest(unsigned.digest(domain)),
        )
    )
    plan[rids[7]] = Planned(rids[7], holders[7].address, sizes[7], 450, "signer_not_controller")
    bid(8, sizes[8] * 3, 1_500)  # more than pending: clipped to the request
    garbage = hashlib.sha256(b"garbage").digest() * 13  # a plausible length, not HPKE
    unsigned = Envelope(auction_id, rids[9], holders[9].address, garbage, b"")
    put(
        Envelope(
            auction_id,
            rids[9],
            holders[9].address,
            garbage,
            holders[9].sign_digest(unsigned.digest(domain)),  # intake checks this signature
        )
    )
    plan[rids[9]] = Planned(rids[9], holders[9].address, 0, 0, "undecryptable")
    bid(10, sizes[10] - 12_345, 120)
    bid(11, sizes[11], 2_000)
    cancelled = bid(12, sizes[12], 80)
    ops.append(
        CancelBid(
            auction_id,
            rids[12],
            holders[12].address,
            cancelled.ciphertext_hash,
            sign_cancel(holders[12], domain, auction_id, rids[12], cancelled.ciphertext_hash),
            received + len(ops),
        )
    )
    del plan[rids[12]]
    bid(13, sizes[13], 10)
    # holder 0 bids on holder 11's second request
    env = seal_bid(holders[0], Bid(auction_id, foreign_rid, foreign_size, 800, 0), domain, pk)
    put(env)
    plan[foreign_rid] = Planned(
        foreign_rid, holders[0].address, foreign_size, 800, "not_controller"
    )

    # holder 4 cancels on-chain before T: its sealed bid (nonce 0) goes stale
    w3.eth.send_transaction(
        {"from": admin, "to": to_checksum_address(holders[4].address), "value": E18}
    )
    stale = make_sender(w3, Account.from_key(key("holder-4")), poll_interval=0.01, deadline=60)
    stale.send(chain.settlement.functions.incrementNonce(auction_id, rids[4]), label="nonce")

    # --- past T: bidding closed; a request made now did not exist at the snapshot (the first
    # block at or after T), so its bid has no pending shares to clear -------------------------
    advance_to(auction_id + 30)
    late_rid = request(late_size, late.address)
    env = seal_bid(late, Bid(auction_id, late_rid, late_size, 500, 0), domain, pk)
    put(env)
    plan[late_rid] = Planned(late_rid, late.address, late_size, 500, "no_pending_shares")
    month.sizes[late_rid] = late_size
    advance_to(auction_id + 60)

    month.ops, month.plan = ops, plan
    month.price = chain.share_price()
    month.free_liquidity = chain.free_liquidity()
    month.pending = {rid: month.redemption(rid)[0] for rid in sorted(month.sizes)}
    assert month.pending == month.sizes  # nothing serviced or filled yet
    month.extra = {"foreign_rid": foreign_rid, "late_rid": late_rid, "late": late}
    return month


# --- reference expectations ------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    redemption_id: int
    controller: bytes
    filled: int
    burnt: int
    payout: int


def _pay(x: int, bp: int, price: int) -> int:
    return (x - x * bp // BPS) * price // E18


def expected_allocation(month: Month, pending: dict[int, int]) -> list[Leaf]:
    """Pay-as-bid rule 3 from the plan: full fills in rank order, then the marginal bid."""
    valid = [p for p in month.plan.values() if p.excluded is None]
    ranked = sorted(valid, key=lambda p: (-p.basis_point, p.redemption_id))
    remaining, out = month.liquidity, []
    for p in ranked:
        size = min(p.shares, pending[p.redemption_id])
        pay = _pay(size, p.basis_point, month.price)
        if pay <= remaining:
            remaining -= pay
            out.append(Leaf(p.redemption_id, p.controller, size, size * p.basis_point // BPS, pay))
            continue
        # the largest x < size that still fits (linear scan is too slow: bisect)
        lo, hi = 0, size - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (
                (mid, hi) if _pay(mid, p.basis_point, month.price) <= remaining else (lo, mid - 1)
            )
        if lo >= E18:  # min_fill
            out.append(
                Leaf(
                    p.redemption_id,
                    p.controller,
                    lo,
                    lo * p.basis_point // BPS,
                    _pay(lo, p.basis_point, month.price),
                )
            )
        break
    return out


# --- what a closed month must look like, to the wei ----------------------------------------

STEPS = ["freeze", "clear", "settle", "claims", "service", "reveal"]


def expected_book_root(month: Month) -> bytes:
    """The bid-book root of the live envelopes (last PutBid per pair, minus cancelled ones)."""
    live: dict[int, PutBid] = {}
    for op in month.ops:
        if isinstance(op, PutBid):
            live[op.redemption_id] = op
        else:
            del live[op.redemption_id]
    leaves = [
        (op.auction_id, op.redemption_id, op.controller, op.ciphertext_hash)
        for _, op in sorted(live.items())
    ]
    return StandardMerkleTree.of(leaves, BID_BOOK_LEAF_TYPES).root


def everyone(month: Month) -> list[str]:
    holders = [*month.holders, month.extra["late"]]
    return [to_checksum_address(h.address) for h in holders]


def fingerprint(month: Month) -> dict[str, Any]:
    """Every piece of chain state a close touches (not block numbers or timestamps)."""
    c, t = month.chain, month.auction_id
    s = c.settled(t)
    return {
        "settled": (
            s.allocation_root,
            s.bid_book_root,
            s.total_shares,
            s.total_burnt,
            s.total_payout,
            s.claimed_shares,
            s.claimed_payout,
            s.fee_shares,
        ),
        "requests": {rid: month.redemption(rid) for rid in sorted(month.sizes)},
        "usdai": {a: month.usdai(a) for a in everyone(month)},
        "escrow": month.usdai(month.deployment.settlement),
        "vault_usdai": month.usdai(month.deployment.vault),
        "fee_shares": month.susdai(month.fee_recipient),
        "queue": tuple(c.vault.functions.redemptionQueueInfo().call()),
        "set_aside": tuple(c.vault.functions.balances().call()),
        "locked": c.locked_shares(),
        "key": c.key_state(t),
        "settled_events": len(month.settled_events()),
        "service_events": len(c.vault.events.RedemptionsServiced().get_logs(from_block=0)),
    }


def check_closed(month: Month, store: BidStore) -> tuple[dict[str, Any], dict[str, Any]]:
    """Assert the whole month-end against the plan and the reference allocation, to the wei.

    Returns the published result and the chain's ``fingerprint``.
    """
    c, t = month.chain, month.auction_id
    state = fingerprint(month)
    result = artifact(store, t, RESULT)
    assert result is not None
    expected = expected_allocation(month, month.pending)
    assert 3 <= len(expected) < len([p for p in month.plan.values() if p.excluded is None])

    # the published result: snapshot inputs, exclusions, outcomes, totals
    assert (result["price"], result["liquidity"]) == (str(month.price), str(month.liquidity))
    assert result["admin_fee_bps"] == FEE_BPS
    assert {int(e["redemption_id"]): e["reason"] for e in result["excluded"]} == {
        rid: p.excluded for rid, p in month.plan.items() if p.excluded
    }
    by_rid = {leaf.redemption_id: leaf for leaf in expected}
    valid = {rid for rid, p in month.plan.items() if p.excluded is None}
    assert {int(r) for r in result["outcomes"]} == valid
    for rid in valid:
        o, leaf = result["outcomes"][str(rid)], by_rid.get(rid)
        want = (leaf.filled, leaf.burnt, leaf.payout) if leaf else (0, 0, 0)
        assert (int(o["shares_filled"]), int(o["shares_burnt"]), int(o["payout"])) == want
    totals = (
        sum(x.filled for x in expected),
        sum(x.burnt for x in expected),
        sum(x.payout for x in expected),
    )
    assert (
        int(result["total_shares"]),
        int(result["total_burnt"]),
        int(result["total_payout"]),
    ) == totals
    assert int(result["leftover"]) == month.liquidity - totals[2]
    fee_shares = totals[1] * FEE_BPS // BPS
    assert int(result["admin_fee_shares"]) == fee_shares

    # the allocation tree: exactly the reference leaves, in rank order; roots everywhere
    tree = StandardMerkleTree.load(artifact(store, t, TREE))
    assert tree.values == [
        (t, x.redemption_id, x.controller, x.filled, x.burnt, x.payout) for x in expected
    ]
    book = artifact(store, t, BOOK)
    book_root = expected_book_root(month)
    assert book["bid_book_root"] == result["bid_book_root"] == to_hex(book_root)
    assert result["allocation_root"] == to_hex(tree.root)
    assert state["settled"] == (
        tree.root,
        book_root,
        *totals,
        totals[0],  # claimed shares
        totals[2],  # claimed payout
        fee_shares,
    )
    assert (state["settled_events"], state["service_events"]) == (1, 1)
    (event,) = month.settled_events()
    assert (
        bytes(event["args"]["allocationRoot"]),
        bytes(event["args"]["bidBookRoot"]),
        event["args"]["totalShares"],
        event["args"]["totalBurnt"],
        event["args"]["totalPayout"],
        event["args"]["feeShares"],
    ) == (tree.root, book_root, *totals, fee_shares)

    # money: each winner got exactly its payout; the escrow is empty; the fee was minted
    paid = {to_checksum_address(x.controller): x.payout for x in expected}
    assert state["usdai"] == {a: paid.get(a, 0) for a in everyone(month)}
    assert state["escrow"] == 0
    assert state["fee_shares"] == fee_shares
    assert state["locked"] == 0

    # the queue: winners lost exactly their filled shares; FIFO took the matured head in order
    filled = {x.redemption_id: x.filled for x in expected}
    after = state["requests"]
    for rid, (pending, redeemable, _) in after.items():
        assert pending + redeemable == month.pending[rid] - filled.get(rid, 0), rid
    late = month.extra["late_rid"]
    assert after[late] == (month.pending[late], 0, 0)  # not matured: never serviced
    (serviced,) = c.vault.events.RedemptionsServiced().get_logs(from_block=0)
    price = c.share_price(serviced["blockNumber"] - 1)  # the price serviceRedemptions used
    matured = [rid for rid in sorted(after) if rid != late]
    touched = [rid for rid in matured if after[rid][1] > 0]
    assert touched, "FIFO serviced nothing"
    for rid in touched:
        assert after[rid][2] == after[rid][1] * price // E18  # withdrawable, per request
    # FIFO: everything before the last serviced request is done; nothing after it was touched
    last = matured.index(touched[-1])
    assert all(after[rid][0] == 0 for rid in matured[:last])
    assert all(after[rid][1] == 0 for rid in matured[last + 1 :])
    set_aside = sum(after[rid][2] for rid in touched)
    assert serviced["args"]["shares"] == sum(after[rid][1] for rid in touched)
    assert serviced["args"]["amount"] == set_aside
    held, aside = state["set_aside"]
    assert aside == set_aside
    free_after = held - aside
    assert free_after == month.free_liquidity - totals[2] - set_aside
    assert free_after * E18 < 2 * price  # the queue got all the liquidity it could pay for

    # the key: revealed on-chain and published
    assert state["key"].revealed
    assert state["key"].private_key == month.secret
    assert state["key"].public_key == public_key_of(month.secret)
    assert artifact(store, t, KEY)["private_key"] == to_hex(month.secret)
    return result, state


def published_documents(month: Month, store: BidStore, tmp: Path) -> dict[str, Any]:
    """The auction's documents as the real service app publishes them (in process, no socket)."""
    from fastapi.testclient import TestClient

    from clearing.api.server import build_app
    from clearing.api.settings import ServiceSettings
    from keeper.redemptions import Web3Redemptions
    from keeper.verify import fetch_documents

    (tmp / "service.key").write_text(SERVICE_KEY.hex())
    (tmp / "service.key").chmod(0o600)
    settings = ServiceSettings(
        store_url=f"sqlite:///{tmp / 'unused.db'}",
        chain_id=month.domain.chain_id,
        settlement=month.deployment.settlement,
        genesis=month.genesis,
        service_key_file=tmp / "service.key",
    )
    app = build_app(
        settings,
        Web3Redemptions(month.chain),
        store=store,
        clock=lambda: int(month.w3.eth.get_block("latest")["timestamp"]),
    )
    with TestClient(app) as client:

        def get(path: str) -> Any:
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text)
            return r.json()

        docs = fetch_documents(get, month.auction_id)
    assert docs["auction"]["status"] == "revealed"
    return docs


def write_documents(folder: Path, docs: dict[str, Any]) -> Path:
    """The layout ``qev verify --dir`` reads (and ``qev demo --out`` writes)."""
    folder.mkdir(parents=True)
    for k, name in DOCUMENT_FILES.items():
        (folder / name).write_bytes(orjson.dumps(docs[k], option=orjson.OPT_INDENT_2))
    return folder


# --- the registry target's month (additions) --------------------------------------------------

REGISTRY_STEPS = [
    "freeze",
    "commit_book",
    "validate",
    "post",
    "settle",
    "reorder",
    "service",
    "reveal",
]
REGISTRY_FEE_BPS = 100  # the draft's admin fee: 1% of each reorder call's burnt shares
REGISTRY_POST_BIDS = 4  # bids per postBids: 9 valid bids -> batches of 4, 4, 1
REGISTRY_REORDER_BIDS = 3  # bids per reorderRedemptions: 3, 3, 3


@dataclass
class RegistryMonth(Month):
    """The month for the ``registry`` target: the draft's registry next to the vault, whose
    model-only views are hidden before T (the keeper meets the draft's surface)."""

    registry: str = ""
    bystanders: list[int] = field(default_factory=list)  # requests without a bid
    queue_at_close: list[int] = field(default_factory=list)  # the queue from its head at T
    index_at_close: int = 0  # the vault's id counter at T

    def config(self) -> KeeperConfig:
        return KeeperConfig(MASTER, self.domain, Mode.PAY_AS_BID, workers=1)

    def keeper(
        self,
        store: BidStore,
        *,
        urgent: Any = None,
        house: Any = None,
        log: Callable[[str], None] = lambda _: None,
        batches: Any = None,
    ) -> Any:
        """A fresh registry keeper (own senders, chain and registry bindings)."""
        from keeper.duties.registry import RegistryBatches, RegistryKeeper
        from keeper.targets.registry import Registry

        chain = Chain(
            self.w3, self.deployment.vault, self.deployment.settlement, genesis=self.genesis
        )
        return RegistryKeeper(
            chain,
            store,
            urgent or make_sender(self.w3, self.urgent_account, poll_interval=0.01, deadline=60),
            house or make_sender(self.w3, self.house_account, poll_interval=0.01, deadline=60),
            self.config(),
            registry=Registry(chain, self.registry),
            batches=batches
            or RegistryBatches(
                post_bids=REGISTRY_POST_BIDS,
                post_gas=25_000_000,
                reorder_bids=REGISTRY_REORDER_BIDS,
                reorder_gas=25_000_000,
            ),
            log=log,
            service_clock=lambda: chain.latest_block()[1],
        )

    def registry_contract(self) -> Any:
        from keeper.artifacts import artifact as abi_of

        return self.w3.eth.contract(address=self.registry, abi=abi_of("QEVRegistry")["abi"])

    def queue(self, block: int | str = "latest") -> list[int]:
        """The queue from its head (what servicing reaches)."""
        return [r.redemption_id for r in self.chain.queue(block)]


def build_registry_month(
    w3: Any,
    admin: str,
    urgent: LocalAccount,
    house: LocalAccount,
    fee_recipient: str,
    advance_to: Callable[[int], None],
    store_path: Path,
) -> RegistryMonth:
    """Deploy (vault, USDai, QEVSettlement for the key, the draft's registry), request over two
    windows with bystanders between the bidders, deploy most liquidity, commit the key, seal
    bids in the registry's domain, cancel one on the registry, hide the model views, pass T."""
    from keeper.targets.registry import deploy_registry

    dep = deploy_stack(
        w3,
        admin,
        [urgent.address, house.address],
        receipt_signer=to_checksum_address(Signer(SERVICE_KEY).address),
    )
    registry = deploy_registry(
        w3,
        admin,
        dep.vault,
        [urgent.address, house.address],
        admin_fee_rate=REGISTRY_FEE_BPS,
        fee_recipient=fee_recipient,
    )
    chain = Chain(w3, dep.vault, dep.settlement)
    genesis = chain.genesis()
    auction_id = genesis + 2 * W
    vault, usdai = chain.vault, chain.usdai
    n = 15
    holders = [Signer(key(f"registry-holder-{i}")) for i in range(n)]
    bystander = Signer(key("registry-bystander"))
    late = Signer(key("registry-late-holder"))
    sizes = [(100 + 53 * i) * E18 + 1_000_003 * i + 7 for i in range(n)]
    foreign_size, late_size, bystander_size = 250 * E18 + 5, 300 * E18 + 11, 77 * E18 + 3
    total = sum(sizes) + foreign_size + late_size + 2 * bystander_size
    transact(w3, usdai.functions.mint(admin, 2 * total), admin)
    transact(w3, usdai.functions.approve(vault.address, 2 * total), admin)
    transact(w3, vault.functions.deposit(2 * total, admin), admin)

    def request(shares: int, controller: bytes) -> int:
        fn = vault.functions.requestRedeem(shares, to_checksum_address(controller), admin)
        return _rid(chain, transact(w3, fn, admin))

    rids: list[int] = []
    bystanders: list[int] = []
    for i, (s, size) in enumerate(zip(holders, sizes, strict=True)):
        if i == 8:
            advance_to(genesis + W + 3_600)  # the rest in the auction's own window
        rids.append(request(size, s.address))
        if i in (2, 9):
            bystanders.append(request(bystander_size, bystander.address))
    foreign_rid = request(foreign_size, holders[11].address)  # holder 11's second request

    # most USDai works in strategies: servicing after the reorder is bounded by liquidity
    held = int(usdai.functions.balanceOf(vault.address).call())
    deployed = held * 80 // 100
    transact(w3, usdai.functions.burn(vault.address, deployed), admin)
    transact(w3, vault.functions.setExternalAssets(deployed * 1_008 // 1_000), admin)

    domain = Eip712Domain("QEVRegistry", "1.0", int(w3.eth.chain_id), parse_address(registry))
    month = RegistryMonth(
        w3=w3,
        admin=admin,
        deployment=dep,
        chain=chain,
        genesis=genesis,
        auction_id=auction_id,
        domain=domain,
        holders=holders,
        rids=rids,
        sizes={
            **dict(zip(rids, sizes, strict=True)),
            foreign_rid: foreign_size,
            **dict.fromkeys(bystanders, bystander_size),
        },
        fee_recipient=fee_recipient,
        urgent_account=urgent,
        house_account=house,
        ops=[],
        plan={},
        price=0,
        free_liquidity=0,
        registry=registry,
        bystanders=bystanders,
    )
    setup_store = month.open_store(store_path)
    assert month.keeper(setup_store).open_auction(auction_id) is True
    setup_store.close()
    secret = derive_auction_secret(MASTER, auction_id)
    pk = public_key_of(secret)

    received = genesis + W + 7_200
    ops: list[PutBid | CancelBid] = []
    plan: dict[int, Planned] = {}

    def put(env: Envelope) -> None:
        ops.append(
            PutBid(
                auction_id,
                env.redemption_id,
                env.controller,
                env.ciphertext,
                env.ciphertext_hash,
                env.signature,
                received + len(ops),
            )
        )

    def bid(i: int, shares: int, bp: int, excluded: str | None = None) -> Envelope:
        rid = rids[i]
        env = seal_bid(holders[i], Bid(auction_id, rid, shares, bp, 0), domain, pk)
        put(env)
        plan[rid] = Planned(rid, holders[i].address, shares, bp, excluded)
        return env

    bid(0, sizes[0], 10_000)  # the head's request, whole, all of it burnt: bid 1
    bid(1, sizes[1] // 2, 40)  # half: a new request at the front, the rest stays
    bid(2, sizes[2], 5, "basis_point_out_of_range")
    bid(3, sizes[3], 900)
    bid(3, sizes[3], 1_200)  # replaced: only this one is live
    bid(4, sizes[4], 700, "stale_nonce")  # cancelled on the registry below
    bid(5, 0, 600, "zero_shares")
    bid(6, sizes[6], 300)
    inner_bid = Bid(auction_id, rids[7], sizes[7], 450, 0)  # holder 7's envelope, holder 8's bid
    inner = SignedBid(inner_bid, holders[8].sign_digest(inner_bid.digest(domain)))
    ct = seal(inner.encode(), pk, bid_info(domain.chain_id, domain.verifying_contract, auction_id))
    unsigned = Envelope(auction_id, rids[7], holders[7].address, ct, b"")
    put(
        Envelope(
            auction_id,
            rids[7],
            holders[7].address,
            ct,
            holders[7].sign_digest(unsigned.digest(domain)),
        )
    )
    plan[rids[7]] = Planned(rids[7], holders[7].address, sizes[7], 450, "signer_not_controller")
    bid(8, sizes[8] * 3, 1_500)  # more than pending: clipped, a whole-request bid
    bid(9, sizes[9] // 3, 300)  # a tie with request 6 at 300 bp: id order; a partial bid
    bid(10, sizes[10] - 12_345, 120)  # all but 12,345 wei: a new request, a dust rest
    bid(11, sizes[11], 2_500)
    cancelled = bid(12, sizes[12], 80)
    ops.append(
        CancelBid(
            auction_id,
            rids[12],
            holders[12].address,
            cancelled.ciphertext_hash,
            sign_cancel(holders[12], domain, auction_id, rids[12], cancelled.ciphertext_hash),
            received + len(ops),
        )
    )
    del plan[rids[12]]
    bid(13, sizes[13], 10)
    garbage = hashlib.sha256(b"registry garbage").digest() * 13
    unsigned = Envelope(auction_id, rids[14], holders[14].address, garbage, b"")
    put(
        Envelope(
            auction_id,
            rids[14],
            holders[14].address,
            garbage,
            holders[14].sign_digest(unsigned.digest(domain)),
        )
    )
    plan[rids[14]] = Planned(rids[14], holders[14].address, 0, 0, "undecryptable")
    env = seal_bid(holders[0], Bid(auction_id, foreign_rid, foreign_size, 800, 0), domain, pk)
    put(env)
    plan[foreign_rid] = Planned(
        foreign_rid, holders[0].address, foreign_size, 800, "not_controller"
    )

    # holder 4 cancels on the registry before T: its sealed bid (nonce 0) goes stale
    w3.eth.send_transaction(
        {"from": admin, "to": to_checksum_address(holders[4].address), "value": E18}
    )
    stale = make_sender(
        w3, Account.from_key(key("registry-holder-4")), poll_interval=0.01, deadline=60
    )
    stale.send(
        month.registry_contract().functions.incrementNonce(auction_id, rids[4]), label="nonce"
    )
    # the keeper meets the draft vault: no balances(), genesisTimestamp(), qevRedemptionInfo()
    transact(w3, vault.functions.hideModelViews(True), admin)

    advance_to(auction_id + 30)
    late_rid = request(late_size, late.address)
    env = seal_bid(late, Bid(auction_id, late_rid, late_size, 500, 0), domain, pk)
    put(env)
    plan[late_rid] = Planned(late_rid, late.address, late_size, 500, "no_pending_shares")
    month.sizes[late_rid] = late_size
    advance_to(auction_id + 60)

    month.ops, month.plan = ops, plan
    fresh = Chain(w3, dep.vault, dep.settlement, genesis=genesis)  # probes the hidden views
    month.chain = fresh
    month.price = fresh.share_price()
    month.free_liquidity = fresh.free_liquidity()
    month.pending = {rid: month.redemption(rid)[0] for rid in sorted(month.sizes)}
    assert month.pending == month.sizes
    month.queue_at_close = month.queue()
    month.index_at_close = fresh.queue_info().index
    month.extra = {"foreign_rid": foreign_rid, "late_rid": late_rid, "late": late}
    return month


def published_registry_documents(
    month: RegistryMonth, store: BidStore, tmp: Path
) -> dict[str, Any]:
    """The registry auction's documents as the real service publishes them: the service runs
    with ``target = registry`` and the registry as its EIP-712 verifying contract."""
    from fastapi.testclient import TestClient

    from clearing.api.server import build_app
    from clearing.api.settings import ServiceSettings
    from keeper.redemptions import Web3Redemptions
    from keeper.verify import fetch_documents

    (tmp / "service.key").write_text(SERVICE_KEY.hex())
    (tmp / "service.key").chmod(0o600)
    settings = ServiceSettings(
        store_url=f"sqlite:///{tmp / 'unused.db'}",
        chain_id=month.domain.chain_id,
        settlement=month.registry,
        target="registry",
        genesis=month.genesis,
        service_key_file=tmp / "service.key",
    )
    app = build_app(
        settings,
        Web3Redemptions(month.chain),
        store=store,
        clock=lambda: int(month.w3.eth.get_block("latest")["timestamp"]),
    )
    with TestClient(app) as client:

        def get(path: str) -> Any:
            r = client.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text)
            return r.json()

        docs = fetch_documents(get, month.auction_id)
    assert docs["auction"]["status"] == "revealed"
    assert docs["auction"]["eip712"] == {"name": "QEVRegistry", "version": "1.0"}
    return docs
