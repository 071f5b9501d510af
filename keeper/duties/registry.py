"""The ``registry`` target's close: drive USD.AI's draft QEV from sealed bids (PROTOCOL 11.2).

Steps, in order, each re-derived from the chain and the store so that a keeper killed anywhere
(also between a transaction being mined and the keeper noting it) finishes the same auction the
same way, without posting a bid twice:

1. ``freeze``: the store's fence, then the frozen book (shared with the merkle close);
2. ``commit_book``: the book fixed on this repository's settlement contract before anything is
   decrypted: ``commitBook(T, root, count)``, then ``settleAuction(T, 0, root, 0, 0, 0)`` (no
   allocation: the registry target pays nothing through that contract; settling it is what lets
   the key be revealed there);
3. ``validate``: snapshot at the first block >= T, rule 0 in the registry's EIP-712 domain with
   the registry's nonces, rule-2 order; the result document lists the bids to post;
4. ``post``: ``postBids`` in batches bounded by gas, resuming after the last bid the registry
   stored (the on-chain ``bidCount``); every stored bid is checked against the plan;
5. ``settle``: the registry's ``settleAuction(T)`` (only with bids stored);
6. ``reorder``: the vault's ``reorderRedemptions`` in batches, each ``count`` at most the bids
   left by ``auction(T)`` read at one block (hazard 1); before the first batch, bid 1's request
   must still have shares pending (hazard 2), else the keeper stops;
7. ``service``: ``serviceRedemptions`` with the shares found by walking the queue from its head
   (never the aggregate ``pending``: hazard 3), in batches of requests bounded by gas, and never
   while any settled auction still has bids not reordered: the keeper services nothing between
   posting and the end of the reorder;
8. ``reveal``: the auction key, on the settlement contract (shared with the merkle close).

Errors: chain reads raise ``ChainReadError`` (retryable); a chain state the keeper must not act
on (a hazard already on chain, bids on the registry that are not the plan's) raises
``KeeperStateError`` (fatal: the loop logs it and does nothing more for the auction).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clearing.documents import envelopes_of, requests_document
from clearing.hexcodec import from_hex, to_checksum_address, to_hex
from clearing.model import Bid, SignedBid
from clearing.parallel import validate_book_parallel
from clearing.store import artifacts as art
from clearing.store.base import BidStore
from clearing.validation import AuctionContext, Exclusion
from keeper.chain import Chain, serviceable_shares
from keeper.errors import RpcRejectedError, SimulationRevertError
from keeper.jobs import ZERO_ROOT, CloseReport, Keeper, KeeperConfig, KeeperStateError, Sender
from keeper.targets.registry import (
    PlannedBid,
    Registry,
    RegistryAuction,
    bids_document,
    plan_bids,
    planned_of,
)

MAX_RESUMES = 3  # post rounds that found bids gone (reorgs) before the keeper gives up
STEPS = ("freeze", "commit_book", "validate", "post", "settle", "reorder", "service", "reveal")
UINT256_MAX = 2**256 - 1


@dataclass(frozen=True)
class RegistryBatches:
    """Batch bounds: at most ``*_bids`` bids (``service_requests`` requests) and (estimated)
    ``*_gas`` gas per transaction."""

    post_bids: int = 200
    post_gas: int = 12_000_000
    reorder_bids: int = 400
    reorder_gas: int = 12_000_000
    service_requests: int = 300  # requests walked per serviceRedemptions
    service_gas: int = 12_000_000


@dataclass
class RegistryCloseReport(CloseReport):
    """A close of the registry target: also the gas of every batch and the counts on chain."""

    batches: dict[str, list[int]] = field(default_factory=dict)
    posted: int = 0  # bids the registry holds for the auction
    reordered: int = 0  # of which reordered


def hazard1(auction_id: int, state: RegistryAuction) -> KeeperStateError:
    """The over-long reorder is already on chain: nothing the keeper sends can help."""
    return KeeperStateError(
        f"auction {auction_id}: the registry counts {state.processed} bids reordered of "
        f"{state.bid_count} (an over-long reorderRedemptions, PROTOCOL 11.4 hazard 1): every "
        "reorder panics, servicing reverts and no later auction can be posted until an admin "
        "intervenes; the keeper sends nothing"
    )


class RegistryKeeper(Keeper):
    """The close of the ``registry`` target; opening, the freeze and the reveal are the base's.

    ``config.domain`` is the registry's EIP-712 domain (``QEVRegistry``, ``1.0``, the registry).
    """

    def __init__(
        self,
        chain: Chain,
        store: BidStore,
        urgent: Sender,
        housekeeping: Sender,
        config: KeeperConfig,
        *,
        registry: Registry,
        batches: RegistryBatches | None = None,
        log: Callable[[str], None] = lambda _: None,
        service_clock: Callable[[], int] | None = None,
    ) -> None:
        if service_clock is None:
            super().__init__(chain, store, urgent, housekeeping, config, log=log)
        else:
            super().__init__(
                chain, store, urgent, housekeeping, config, log=log, service_clock=service_clock
            )
        self.registry = registry
        self.batches = batches or RegistryBatches()

    # --- the close ----------------------------------------------------------------------

    def close_auction(
        self, auction_id: int, *, on_step: Callable[[str, bool], None] | None = None
    ) -> RegistryCloseReport:
        """Run (or finish) every close step for ``auction_id``; ``on_step`` hears each step."""
        report = RegistryCloseReport(auction_id, on_step=on_step)
        _, now = self.chain.latest_block()
        if now <= auction_id:
            raise KeeperStateError(
                f"auction {auction_id} is still open for the registry (chain time {now}): "
                "bids are posted strictly after T"
            )
        threshold = getattr(self.cfg, "key_source", None)
        if threshold is None:
            secret = self.checked_secret(auction_id)
        else:  # threshold mode: the key exists once the keypers see the book on-chain
            state = self.chain.key_state(auction_id)
            if not state.committed:
                raise KeeperStateError(f"auction {auction_id} has no key committed on-chain")
            threshold.check_committed(auction_id, state)
        book = self._frozen_book(auction_id, report)
        self._fix_book(auction_id, book, report)
        if threshold is not None:
            secret = threshold.secret(auction_id)
        result = self._validated(auction_id, book, secret, report)
        planned = planned_of(result["bids"], auction_id)
        self._post(auction_id, planned, report)
        settled = self._settle_registry(auction_id, result, report)
        self._reorder(auction_id, result, settled, report)
        self._service_walk(auction_id, report)
        self._reveal(auction_id, secret, report)
        onchain = self.registry.auction(auction_id)
        report.posted, report.reordered = onchain.bid_count, onchain.processed
        return report

    # --- 2. the book, before any decryption ------------------------------------------

    def _fix_book(self, auction_id: int, book: dict[str, Any], report: CloseReport) -> None:
        """``commitBook`` then a settlement without allocation, each only if not on-chain yet;
        a different book on-chain is fatal (nothing is sent)."""
        root = book["bid_book_root"] or ZERO_ROOT
        count = len(book["bids"])
        sent = False
        settlement = self.chain.settlement
        if _has_function(settlement, "commitBook"):
            onchain_root, onchain_count, committed_at = self.chain.read(
                settlement.functions.bookCommitment(auction_id)
            )
            if int(committed_at) == 0:
                fn = settlement.functions.commitBook(auction_id, from_hex(root, 32), count)
                receipt = self.urgent.send(fn, label=f"commitBook({auction_id})")
                report.gas["commitBook"] = _gas(receipt)
                sent = True
            elif (to_hex(bytes(onchain_root)), int(onchain_count)) != (root, count):
                raise KeeperStateError(
                    f"auction {auction_id}: the frozen book ({root}, {count} envelopes) differs "
                    f"from the book committed on-chain ({to_hex(bytes(onchain_root))}, "
                    f"{int(onchain_count)})"
                )
        if self.chain.is_settled(auction_id):
            onchain = self.chain.settled(auction_id)
            if to_hex(onchain.bid_book_root) != root:
                raise KeeperStateError(
                    f"auction {auction_id}: the frozen book's root {root} differs from the root "
                    f"settled on-chain {to_hex(onchain.bid_book_root)}"
                )
            if any(onchain.allocation_root) or onchain.total_shares or onchain.total_payout:
                raise KeeperStateError(
                    f"auction {auction_id} was settled on the settlement contract with an "
                    "allocation: it is a merkle auction, not a registry one"
                )
        else:
            fn = settlement.functions.settleAuction(
                auction_id, bytes(32), from_hex(root, 32), 0, 0, 0
            )
            receipt = self.urgent.send(
                fn, label=f"settlement.settleAuction({auction_id}) book only"
            )
            report.gas["bookSettle"] = _gas(receipt)
            sent = True
        self._step(report, "commit_book", sent)
        if sent:
            self.log(f"auction {auction_id}: book {root} ({count} envelopes) fixed on-chain")

    # --- 3. snapshot, rule 0, rule 2 ----------------------------------------------------

    def _validated(
        self, auction_id: int, book: dict[str, Any], secret: bytes, report: CloseReport
    ) -> dict[str, Any]:
        existing = art.get_json(self.store, auction_id, art.RESULT)
        if existing is not None:
            self._step(report, "validate", False)
            return dict(existing)
        found = self.chain.first_block_at_or_after(auction_id)  # deterministic, re-derivable
        if found is None:
            raise KeeperStateError(f"no block at or after {auction_id} yet")
        number, block_hash, timestamp = self.chain.block_info(found[0])
        envelopes = envelopes_of(book)
        snap = self.registry.snapshot(auction_id, (e.redemption_id for e in envelopes), number)
        ctx = AuctionContext(auction_id, self.cfg.domain, secret)
        valid, excluded = validate_book_parallel(envelopes, ctx, snap.requests, self.cfg.workers)
        planned = plan_bids(valid, envelopes, ctx)
        doc = {
            "target": "registry",
            "auction_id": auction_id,
            "chain_id": self.cfg.domain.chain_id,
            "vault": self.chain.vault.address,
            # the EIP-712 verifying contract, as in the auction document (Appendix B.5)
            "settlement": to_checksum_address(self.cfg.domain.verifying_contract),
            "registry": self.registry.address,
            "key_contract": self.chain.settlement.address,
            "genesis": self.chain.genesis(),
            "snapshot": {"block": number, "block_hash": to_hex(block_hash), "timestamp": timestamp},
            "price": str(snap.price),
            "free_liquidity": str(snap.free_liquidity),
            "admin_fee_bps": snap.admin_fee_bps,
            "bid_book_root": book["bid_book_root"],
            "allocation_root": None,
            "excluded": _exclusions(excluded),
            "bids": bids_document(planned),
            "outcomes": {
                str(p.signed.bid.redemption_id): {
                    "rank": p.rank,
                    "status": "valid",
                    "basis_point": p.signed.bid.basis_point,
                    "size": str(p.size),
                    "reason": None,
                }
                for p in planned
            },
            "total_size": str(sum(p.size for p in planned)),
            "requests": requests_document(snap.requests),
            "settlement_tx": None,
            "reorder": None,
            "abandoned": [],
        }
        art.put_json(self.store, auction_id, art.ALLOCATION_TREE, None)  # no claims here
        art.put_json(self.store, auction_id, art.RESULT, doc)  # last: marks the step done
        self._step(report, "validate", True)
        self.log(
            f"auction {auction_id}: snapshot block {number}: {len(planned)} valid bids to post, "
            f"{len(excluded)} excluded"
        )
        return doc

    # --- 4. postBids --------------------------------------------------------------------

    def _post(self, auction_id: int, planned: list[PlannedBid], report: CloseReport) -> None:
        reg = self.registry
        previous = reg.previous_auction_id()
        position = self._resume_at(auction_id, planned, reg.posted(auction_id))
        if previous >= auction_id or position >= len(planned):
            self._step(report, "post", False)
            return
        if previous:
            before = reg.auction(previous)
            if before.overrun:
                raise hazard1(previous, before)
            if not before.reordered:
                raise KeeperStateError(
                    f"auction {previous} still has {before.remaining} bids to reorder: the "
                    f"registry refuses to post auction {auction_id} until it is done"
                )
        gas: list[int] = []
        resumes = 0
        size = self.batches.post_bids  # grows back slowly from the last batch that fit
        while position < len(planned):
            stored_before = reg.auction(auction_id).bid_count
            rest = [p.signed for p in planned[position:]]

            def batch(k: int, rest: list[SignedBid] = rest) -> Any:
                return reg.post_bids(auction_id, rest[:k])

            n, fn = self._fit(
                batch, min(size, len(planned) - position), self.batches.post_gas, "postBids"
            )
            size = min(self.batches.post_bids, n + max(1, n // 8))
            receipt = self.urgent.send(
                fn, label=f"registry.postBids({auction_id}) bids {position + 1}..{position + n}"
            )
            gas.append(_gas(receipt))
            stored_after = reg.auction(auction_id).bid_count
            stored = (
                reg.bids(auction_id, stored_before, stored_after - stored_before)
                if stored_after > stored_before
                else []
            )
            if self._batch_stored(planned[position : position + n], stored):
                position += n
                continue
            # bids of this batch (or earlier ones) are gone: a reorg after the confirmations
            # dropped a batch. Go on from what the chain holds (fatal if it has a gap or bids
            # that are not the plan's); give up after a few such rounds.
            resumes += 1
            if resumes > MAX_RESUMES:
                raise KeeperStateError(
                    f"auction {auction_id}: posted bids keep disappearing from the registry "
                    f"({resumes - 1} resumes); not posting more"
                )
            position = self._resume_at(auction_id, planned, reg.posted(auction_id))
            self.log(
                f"auction {auction_id}: the registry holds fewer bids than were posted "
                f"(reorg?); posting again from bid {position + 1}"
            )
        _batches(report)["postBids"] = gas
        report.gas["postBids"] = sum(gas)
        self._step(report, "post", True)
        self.log(f"auction {auction_id}: {len(planned)} bids posted in {len(gas)} batches")

    def _resume_at(self, auction_id: int, planned: list[PlannedBid], onchain: list[Bid]) -> int:
        """Where posting goes on: after the plan's bid the registry stored last.

        Every stored bid must be one of the plan's, in plan order; a planned bid before that
        point that the registry does not hold must have been skipped by it (its request has
        nothing pending). Anything else is fatal: someone else posts for this auction.
        """
        at = {p.signed.bid.redemption_id: i for i, p in enumerate(planned)}
        last = -1
        for k, b in enumerate(onchain, start=1):
            i = at.get(b.redemption_id)
            if i is None or planned[i].signed.bid != b or i <= last:
                raise KeeperStateError(
                    f"auction {auction_id}: bid {k} on the registry (redemption "
                    f"{b.redemption_id}) is not the next of this auction's valid bids in rule-2 "
                    "order; the keeper posts nothing more"
                )
            last = i
        self._check_skipped(auction_id, planned[: last + 1], onchain)
        return last + 1

    def _batch_stored(self, batch: list[PlannedBid], stored: list[Bid]) -> bool:
        """Whether the bids a batch left on the registry are the batch's, in order, less only
        those the registry skipped (requests with nothing pending)."""
        rest = iter(p.signed.bid for p in batch)
        if not all(any(b == want for want in rest) for b in stored):
            return False
        have = {b.redemption_id for b in stored}
        missing = [
            p.signed.bid.redemption_id for p in batch if p.signed.bid.redemption_id not in have
        ]
        return all(r.pending_shares == 0 for r in self.chain.requests(missing).values())

    def _check_skipped(self, auction_id: int, planned: list[PlannedBid], held: list[Bid]) -> None:
        have = {b.redemption_id for b in held}
        missing = [p.signed.bid.redemption_id for p in planned]
        requests = self.chain.requests(rid for rid in missing if rid not in have)
        for rid in missing:
            if rid not in have and requests[rid].pending_shares != 0:
                raise KeeperStateError(
                    f"auction {auction_id}: the valid bid for redemption {rid} is not on the "
                    "registry although its request has shares pending"
                )

    def _fit(
        self,
        build: Callable[[int], Any],
        n: int,
        cap: int,
        what: str,
        *,
        lane: Sender | None = None,
    ) -> tuple[int, Any]:
        """The largest batch (at most ``n``) whose estimated gas stays within ``cap``.

        A batch too large for the node to estimate (over the block gas limit: a revert without
        data, or the node's "gas required exceeds allowance") is halved; a revert with a
        reason is the chain refusing the call itself, and is raised as it is.
        """
        while True:
            fn = build(n)
            try:
                gas = self.registry.estimate_gas(fn, (lane or self.urgent).address)
            except (SimulationRevertError, RpcRejectedError) as e:
                if n == 1 or not _out_of_gas(e):
                    raise
                n = max(1, n // 2)
                continue
            if gas <= cap:
                return n, fn
            if n == 1:
                raise KeeperStateError(f"one {what} item needs {gas} gas, above the cap of {cap}")
            n = max(1, min(n - 1, n * cap // gas))

    # --- 5. settleAuction on the registry -----------------------------------------------

    def _settle_registry(
        self, auction_id: int, result: dict[str, Any], report: CloseReport
    ) -> tuple[str | None, int] | None:
        """(tx, block) of the registry's settlement, None when there is nothing to settle."""
        reg = self.registry
        previous = reg.previous_auction_id()
        state = reg.auction(auction_id)
        since = int(result["snapshot"]["block"])
        if previous >= auction_id:
            found = reg.settlement_tx(auction_id, since)
            if found is None and state.bid_count:
                raise KeeperStateError(
                    f"auction {auction_id} has {state.bid_count} bids posted but the registry "
                    f"settled auction {previous} after it: they can never be reordered"
                )
            self._step(report, "settle", False)
            return found
        if state.bid_count == 0:
            self.log(f"auction {auction_id}: no bid stored on the registry: nothing to reorder")
            self._step(report, "settle", False)
            return None
        # hazard 2 before it can happen: unsettled, the auction blocks nothing and strands nothing
        self._check_first_bid(auction_id, self.chain.latest_block()[0])
        receipt = self.urgent.send(
            reg.settle(auction_id), label=f"registry.settleAuction({auction_id})"
        )
        report.gas["settleAuction"] = _gas(receipt)
        self._step(report, "settle", True)
        self.log(f"auction {auction_id}: settled on the registry")
        return _tx_hex(receipt), int(getattr(receipt, "block_number", 0))

    # --- 6. reorderRedemptions ----------------------------------------------------------

    def _reorder(
        self,
        auction_id: int,
        result: dict[str, Any],
        settled: tuple[str | None, int] | None,
        report: CloseReport,
    ) -> None:
        reg = self.registry
        if settled is None:
            self._record(auction_id, result, None, None, done=False)
            self._step(report, "reorder", False)
            return
        gas: list[int] = []
        size = self.batches.reorder_bids  # grows back slowly from the last batch that fit
        while True:
            block, _ = self.chain.latest_block()
            state = reg.auction(auction_id, block)  # one read: both counts at one block
            if state.overrun:
                raise hazard1(auction_id, state)
            if state.reordered:
                break
            if state.processed == 0:
                self._check_first_bid(auction_id, block)
            count = min(size, state.remaining)
            n, fn = self._fit(
                lambda k: reg.reorder(auction_id, k), count, self.batches.reorder_gas, "reorder"
            )
            size = min(self.batches.reorder_bids, n + max(1, n // 8))
            receipt = self.urgent.send(fn, label=f"vault.reorderRedemptions({auction_id}, {n})")
            gas.append(_gas(receipt))
        self._record(auction_id, result, *settled, done=bool(gas))
        if gas:
            _batches(report)["reorderRedemptions"] = gas
            report.gas["reorderRedemptions"] = sum(gas)
            self.log(f"auction {auction_id}: reordered in {len(gas)} batches")
        self._step(report, "reorder", bool(gas))

    def _check_first_bid(self, auction_id: int, block: int) -> None:
        """Hazard 2: if bid 1's request was emptied after posting, the reorder would strand
        every request it moves. Stop before settling (while nothing is blocked yet) and again
        before the first reorder batch."""
        (first,) = self.registry.bids(auction_id, 0, 1, block)
        if self.chain.request(first.redemption_id, block).pending_shares == 0:
            raise KeeperStateError(
                f"auction {auction_id}: bid 1's request {first.redemption_id} has no shares "
                "pending any more (serviced after posting?): reordering would detach every "
                "request it moves from the queue (PROTOCOL 11.4 hazard 2); the keeper neither "
                "settles nor reorders, an admin must decide"
            )

    def _record(
        self,
        auction_id: int,
        result: dict[str, Any],
        tx: str | None,
        block: int | None,
        *,
        done: bool,
    ) -> None:
        """The reorder's outcome (from the vault's events) into the result, then the settlement
        record; rebuilt from the chain when a restart finds it missing."""
        if not done and self.store.get_artifact(auction_id, art.SETTLEMENT) is not None:
            return
        calls = self.registry.reorder_calls(auction_id, block) if block is not None else []
        moved = [m for c in calls for m in c.moved]
        if moved:
            (first,) = self.registry.bids(auction_id, 0, 1)
            if not calls[0].moved or moved[0].redemption_id != first.redemption_id:
                raise KeeperStateError(
                    f"auction {auction_id} was reordered without bid 1 (request "
                    f"{first.redemption_id}, emptied before the reorder): the requests it moved "
                    f"({', '.join(str(m.queue_id) for m in moved[:5])}...) are cut off from the "
                    "queue head (PROTOCOL 11.4 hazard 2); an admin must repair the queue"
                )
        outcomes = dict(result["outcomes"])
        for m in moved:
            outcomes[str(m.redemption_id)] = {
                **outcomes[str(m.redemption_id)],
                "status": "reordered",
                "queue_id": str(m.queue_id),
                "shares_burnt": str(m.burnt),
                "pending_shares": str(m.pending_shares),
            }
        reorder = {
            "calls": [
                {
                    "tx": c.tx_hash,
                    "block": c.block,
                    "count": c.count,
                    "net_burnt": str(c.net_burnt),
                    "fee": str(c.fee),
                    "done": c.done,
                }
                for c in calls
            ],
            "moved": [
                {
                    "redemption_id": str(m.redemption_id),
                    "queue_id": str(m.queue_id),
                    "pending_shares": str(m.pending_shares),
                    "shares_burnt": str(m.burnt),
                    "remaining": None if m.remaining is None else str(m.remaining),
                }
                for m in moved
            ],
            "total_burnt": str(sum(m.burnt for m in moved)),
            "fee_shares": str(sum(c.fee for c in calls)),
        }
        doc = {**result, "outcomes": outcomes, "settlement_tx": tx, "reorder": reorder}
        art.put_json(self.store, auction_id, art.RESULT, doc)
        art.put_json(
            self.store,
            auction_id,
            art.SETTLEMENT,
            {"status": "settled", "target": "registry", "tx": tx, "block": block},
        )
        result.update(doc)

    # --- 7. serviceRedemptions by walking the queue ---------------------------------------

    def _service_walk(self, auction_id: int, report: CloseReport) -> None:
        reg = self.registry
        previous = reg.previous_auction_id()
        if previous:
            last = reg.auction(previous)
            if last.overrun:
                raise hazard1(previous, last)
            if not last.reordered:
                raise KeeperStateError(
                    f"auction {previous} still has {last.remaining} bids to reorder: no "
                    "servicing before its reorder ends"
                )
        if previous < auction_id and reg.auction(auction_id).bid_count:
            raise KeeperStateError(
                f"auction {auction_id} has bids posted and not settled: no servicing between "
                "posting and the reorder"
            )
        gas: list[int] = []
        size = self.batches.service_requests
        while True:
            _, now = self.chain.latest_block()
            price, liquidity = self.chain.share_price(), self.chain.free_liquidity()
            head = list(itertools.islice((r for r in self.chain.queue() if r.pending_shares), size))

            def shares_of(
                k: int,
                head: list[Any] = head,
                now: int = now,
                price: int = price,
                liquidity: int = liquidity,
            ) -> int:
                # the walk is the bound, never the aggregate `pending` (hazard 3)
                return serviceable_shares(head[:k], now, price, liquidity, UINT256_MAX)

            if shares_of(len(head)) == 0:
                break
            n, fn = self._fit(
                lambda k: reg.service(shares_of(k)),
                len(head),
                self.batches.service_gas,
                "serviceRedemptions",
                lane=self.housekeeping,
            )
            shares = shares_of(n)
            receipt = self.housekeeping.send(fn, label=f"vault.serviceRedemptions({shares})")
            gas.append(_gas(receipt))
            report.serviced_shares += shares
            size = min(self.batches.service_requests, n + max(1, n // 8))
        if not gas:
            self._step(report, "service", False)
            return
        _batches(report)["serviceRedemptions"] = gas
        report.gas["serviceRedemptions"] = sum(gas)
        self._step(report, "service", True)
        self.log(
            f"serviced {report.serviced_shares} shares from the head of the queue "
            f"in {len(gas)} batches"
        )


def _exclusions(excluded: list[Exclusion]) -> list[dict[str, Any]]:
    return [
        {
            "redemption_id": str(e.redemption_id),
            "controller": to_checksum_address(e.controller),
            "ciphertext_hash": to_hex(e.ciphertext_hash),
            "reason": e.reason.value,
            "detail": e.detail,
        }
        for e in excluded
    ]


def _out_of_gas(error: Exception) -> bool:
    """An estimate that failed for want of gas rather than on a reason of the contract's."""
    if isinstance(error, SimulationRevertError):
        return not error.selector and not error.error_name
    return "gas" in str(error).lower()


def _has_function(contract: Any, name: str) -> bool:
    """Whether our own settlement contract's committed ABI has ``name`` (its revisions differ)."""
    return any(item.get("name") == name for item in contract.abi)


def _batches(report: CloseReport) -> dict[str, list[int]]:
    return report.batches if isinstance(report, RegistryCloseReport) else {}


def _gas(receipt: Any) -> int:
    return int(getattr(receipt, "gas_used", 0))


def _tx_hex(receipt: Any) -> str | None:
    tx = getattr(receipt, "tx_hash", None)
    if tx is None:
        return None
    return tx if isinstance(tx, str) else to_hex(bytes(tx))


__all__ = [
    "STEPS",
    "RegistryBatches",
    "RegistryCloseReport",
    "RegistryKeeper",
    "hazard1",
]
