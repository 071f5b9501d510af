"""The keeper's jobs (DESIGN 7): open an auction, and close it in order:
freeze book -> commitBook -> snapshot -> decrypt + validate -> clear -> persist -> settle ->
confirm -> push claims -> service the FIFO queue -> reveal the key.

The auction key comes from the master secret (``single`` mode, the default) or, in
``threshold`` mode, from a ``KeySource`` (``keeper.threshold_key``): the DKG's group key at
window open, the keypers' combined shares once the book is on-chain.

Every step first looks at what the chain and the store already say, so a keeper killed at
any point and restarted finishes the same auction with no second settlement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from clearing.documents import (
    Provenance,
    allocation_tree,
    book_document,
    envelopes_of,
    result_document,
    root_of,
)
from clearing.eip712 import Eip712Domain
from clearing.engine import ClearingParams, Mode, clear
from clearing.gcpause import gc_paused
from clearing.hashing import keccak256
from clearing.hexcodec import from_hex, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import Envelope
from clearing.parallel import validate_book_parallel
from clearing.sealing import derive_auction_secret, public_key_of
from clearing.store import artifacts as art
from clearing.store.base import BidStore
from clearing.validation import AuctionContext
from keeper.background import Background
from keeper.calldata import claim_multiple
from keeper.chain import AuctionKeyState, Chain, Snapshot, serviceable_batches
from keeper.errors import FatalError, RevertedOnChainError, SimulationRevertError
from keeper.tx import TxRequest

BPS = 10_000
T = TypeVar("T")
_Reads = tuple[tuple[int, bytes, int], Snapshot]  # (number, hash, timestamp) and the snapshot
# Reverts of settleAuction that mean "the chain no longer allows this result" (DESIGN 7,
# rev 2): the result is abandoned and re-cleared at a later snapshot instead of retried.
ABANDON_ERRORS = {
    keccak256(b"PayoutExceedsValue(uint256,uint256)")[:4]: "PayoutExceedsValue",
    keccak256(b"InsufficientBalance()")[:4]: "InsufficientBalance",
}
MAX_RECLEARS = 3  # per close call; a later tick tries again


class Sender(Protocol):
    """Sends one contract call through the transaction pipeline and waits for it."""

    @property
    def address(self) -> str:
        """The lane's account."""

    def send(self, fn: Any, *, label: str) -> Any:
        """Simulate, estimate, sign, send, confirm; returns an object with ``tx_hash``."""

    def simulate(self, fn: Any, *, block: int | str) -> bytes:
        """``eth_call`` from the lane's account at ``block`` (raises on a revert)."""


class KeeperStateError(FatalError):
    """The chain or store disagrees with what the keeper must do (fatal: never auto-fixed)."""

    code = "keeper_state"


class KeySource(Protocol):
    """Where a threshold-mode keeper's auction key comes from (``keeper.threshold_key``)."""

    def key_to_commit(self, auction_id: int) -> tuple[bytes, bytes] | None:
        """(X25519 public key, transcript hash) once the DKG is final, None while it runs."""

    def check_committed(self, auction_id: int, state: AuctionKeyState) -> None:
        """Raise ``KeeperStateError`` unless ``state`` commits the DKG's key and transcript."""

    def secret(self, auction_id: int) -> bytes:
        """The combined X25519 private key, checked against the public key (after commitBook)."""


@dataclass
class KeeperConfig:
    """What the keeper needs besides chain, store and senders (from the settings)."""

    master_secret: bytes = field(repr=False)
    domain: Eip712Domain
    mode: Mode = Mode.PAY_AS_BID
    min_fill: int = 10**18
    liquidity_bps: int = BPS  # share of the free liquidity packaged for each auction
    claim_batch: int = 200  # leaves per claimMultiple (~59k gas each: ~12M gas a transaction)
    claim_depth: int = 8  # claim transactions in flight at once
    service_batch: int = 1_500  # queue requests walked per serviceRedemptions (~9k gas each)
    workers: int = 0  # 0 = all CPUs for opening the book
    key_source: KeySource | None = None  # threshold mode; None: derive from master_secret

    def __post_init__(self) -> None:
        if not 0 <= self.liquidity_bps <= BPS:
            raise ValueError(f"liquidity_bps must be in 0..{BPS}, got {self.liquidity_bps}")


@dataclass
class CloseReport:
    """What one ``close_auction`` call did (steps already done are listed as skipped).

    ``on_step(name, done)`` (optional) hears each step as it ends, before the later steps
    run, so a close that fails half-way still reports the steps it finished.
    """

    auction_id: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    gas: dict[str, int] = field(default_factory=dict)
    serviced_shares: int = 0
    claimed: int = 0
    on_step: Callable[[str, bool], None] | None = field(default=None, repr=False, compare=False)


class Keeper:
    """Runs the jobs against one chain and one store."""

    def __init__(
        self,
        chain: Chain,
        store: BidStore,
        urgent: Sender,
        housekeeping: Sender,
        config: KeeperConfig,
        *,
        log: Callable[[str], None] = lambda _: None,
        service_clock: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        """``service_clock`` is the intake service's clock (DESIGN 2: the book is frozen only
        once both the chain and the service have reached T)."""
        self.chain, self.store, self.urgent, self.housekeeping = chain, store, urgent, housekeeping
        self.cfg, self.log, self.service_clock = config, log, service_clock
        # (auction, book root, envelopes) of the book this keeper froze last: the close opens
        # those objects instead of parsing ~100 MB of hex back out of the document
        self._book_envelopes: tuple[int, str | None, list[Envelope]] | None = None
        # a book frozen by this keeper and not stored yet (``_store_book``)
        self._unstored_book: tuple[int, dict[str, Any]] | None = None

    def secret(self, auction_id: int) -> bytes:
        """The auction's X25519 private key (derived, never stored in plain form; threshold
        mode: combined from the keypers' released shares, available only after commitBook)."""
        if self.cfg.key_source is not None:
            return self.cfg.key_source.secret(auction_id)
        return derive_auction_secret(self.cfg.master_secret, auction_id)

    def checked_secret(self, auction_id: int) -> bytes:
        """The auction key, checked against the on-chain commitment (DESIGN 3 and 7, rev 2).

        A keeper with another master secret would open no bid and settle an empty auction
        irreversibly; it stops here instead, before anything is frozen or sent. Threshold
        mode: the DKG's transcript and key must be the ones committed, and the combined key
        must give the public key (checked by the key source).
        """
        state = self.chain.key_state(auction_id)
        if self.cfg.key_source is not None:
            if not state.committed:
                raise KeeperStateError(f"auction {auction_id} has no key committed on-chain")
            self.cfg.key_source.check_committed(auction_id, state)
            return self.cfg.key_source.secret(auction_id)
        secret = self.secret(auction_id)
        if not state.committed:
            raise KeeperStateError(f"auction {auction_id} has no key committed on-chain")
        if state.public_key != public_key_of(secret) or state.commitment != keccak256(secret):
            raise KeeperStateError(
                f"the master secret does not give the key committed on-chain for auction "
                f"{auction_id} (wrong master secret file?); nothing was sent"
            )
        return secret

    # --- window open --------------------------------------------------------------

    def open_auction(self, auction_id: int) -> bool:
        """Commit the auction key on-chain and publish the public key; False if already done
        (threshold mode: also False while the DKG runs)."""
        if self.cfg.key_source is not None:
            ready = self.cfg.key_source.key_to_commit(auction_id)
            if ready is None:
                return False
            pk, commitment = ready
        else:
            pk = public_key_of(self.secret(auction_id))
            commitment = b""
        state = self.chain.key_state(auction_id)
        if state.committed and state.public_key != pk:
            raise KeeperStateError(f"auction {auction_id} has another key committed")
        if self.store.get_artifact(auction_id, art.PUBLIC_KEY) != pk:
            self.store.put_artifact(auction_id, art.PUBLIC_KEY, pk)
        if state.committed:
            return False
        commitment = commitment or keccak256(self.secret(auction_id))
        fn = self.chain.settlement.functions.commitAuctionKey(auction_id, pk, commitment)
        self.urgent.send(fn, label=f"commitAuctionKey({auction_id})")
        self.log(f"auction {auction_id}: key committed")
        return True

    # --- window close -------------------------------------------------------------

    def close_auction(
        self, auction_id: int, *, on_step: Callable[[str, bool], None] | None = None
    ) -> CloseReport:
        """Run (or finish) every close step for ``auction_id``; ``on_step`` hears each step."""
        report = CloseReport(auction_id, on_step=on_step)
        _, now = self.chain.latest_block()
        if now < auction_id:
            raise KeeperStateError(f"auction {auction_id} is still open on chain (now {now})")
        threshold = self.cfg.key_source
        if threshold is None:
            secret = self.checked_secret(auction_id)
        else:  # the key exists only once the keypers see the book on-chain
            state = self.chain.key_state(auction_id)
            if not state.committed:
                raise KeeperStateError(f"auction {auction_id} has no key committed on-chain")
            threshold.check_committed(auction_id, state)
        early: list[Background[_Reads]] = []  # the chain reads, started at the freeze

        def start_reads(ids: list[int]) -> None:
            early.append(self._snapshot_reads(auction_id, ids))

        book = self._frozen_book(auction_id, report, start_reads, store_later=True)
        existing = art.get_json(self.store, auction_id, art.RESULT)
        reads = None
        if existing is None:  # to clear: the reads the freeze started, else new ones
            ids = [int(b["redemption_id"]) for b in book["bids"]]
            reads = early[0] if early else self._snapshot_reads(auction_id, ids)
        self._check_book_root(auction_id, book)
        self._commit_book(auction_id, book)
        if threshold is not None:
            secret = threshold.secret(auction_id)
        result = self._cleared(auction_id, book, secret, report, existing=existing, reads=reads)
        self._store_book(auction_id)  # stored by the clearing already, unless it was done
        self._settle(auction_id, book, secret, result, report)
        self._push_claims(auction_id, report)
        self._service_queue(report)
        self._reveal(auction_id, secret, report)
        return report

    def _step(self, report: CloseReport, name: str, done: bool) -> None:
        (report.done if done else report.skipped).append(name)
        if report.on_step is not None:
            report.on_step(name, done)

    def _frozen_book(
        self,
        auction_id: int,
        report: CloseReport,
        on_bids: Callable[[list[int]], None] | None = None,
        *,
        store_later: bool = False,
    ) -> dict[str, Any]:
        """Freeze intake in the store (the fence), then write the frozen book document;
        ``on_bids`` hears the frozen book's redemption ids before the document is built.
        With ``store_later`` the document is stored by ``_store_book`` instead."""
        book = art.get_json(self.store, auction_id, art.BOOK)
        if book is not None:
            self._step(report, "freeze", False)
            return dict(book)
        service_now = self.service_clock()
        if service_now < auction_id:
            raise KeeperStateError(
                f"auction {auction_id}: the service clock ({service_now}) has not reached T; "
                "not freezing yet"
            )
        freeze = self.store.freeze(auction_id, service_now)
        with gc_paused():  # ~1 million objects at 100k bids
            bids = self.store.live_bids(auction_id)
            late = [b.sequence for b in bids if b.sequence > freeze.last_sequence]
            if late:  # the fence makes this impossible; never publish a book it would break
                raise KeeperStateError(f"auction {auction_id}: writes after the freeze: {late[:5]}")
            if on_bids is not None:
                on_bids([b.redemption_id for b in bids])
            envelopes = [
                Envelope(auction_id, b.redemption_id, b.controller, b.ciphertext, b.signature)
                for b in bids
            ]
            book = book_document(
                auction_id, envelopes, [b.sequence for b in bids], [b.received_at for b in bids]
            )
        # The merkle close stores it while the envelopes are opened (``_store_book``), off
        # the way to commitBook: ~1.4 KB per bid. Nothing is lost meanwhile: after the freeze
        # fence the store's live bids give this same document again (a restart re-derives
        # it, and the service's /book builds it from them until it is stored).
        self._unstored_book = (auction_id, book)
        if not store_later:
            self._store_book(auction_id)
        self._book_envelopes = (auction_id, book["bid_book_root"], envelopes)
        self._step(report, "freeze", True)
        self.log(f"auction {auction_id}: book frozen, {len(envelopes)} live envelopes")
        return book

    def _store_book(self, auction_id: int) -> None:
        """Store the book this keeper froze for ``auction_id``, if not stored yet (before
        the result: a stored result always has its book)."""
        pending = self._unstored_book
        if pending is not None and pending[0] == auction_id:
            art.put_json(self.store, auction_id, art.BOOK, pending[1])
            self._unstored_book = None

    def _envelopes(self, auction_id: int, book: dict[str, Any]) -> list[Envelope]:
        """The book's envelopes: those this keeper just froze it from, else parsed from it."""
        memo = self._book_envelopes
        if memo is not None and memo[:2] == (auction_id, book["bid_book_root"]):
            return memo[2]
        return envelopes_of(book)

    def _check_book_root(self, auction_id: int, book: dict[str, Any]) -> None:
        """A book whose root differs from one already on-chain is fatal (nothing is sent)."""
        if not self.chain.is_settled(auction_id):
            return
        onchain = to_hex(self.chain.settled(auction_id).bid_book_root)
        if onchain != (book["bid_book_root"] or ZERO_ROOT):
            raise KeeperStateError(
                f"auction {auction_id}: the frozen book's root {book['bid_book_root']} differs "
                f"from the root settled on-chain {onchain}"
            )

    def _commit_book(self, auction_id: int, book: dict[str, Any]) -> None:
        """``commitBook(T, root, count)`` before any envelope is opened (both key modes).

        Idempotent: nothing is sent if the same book is committed already; another root (or
        count) on-chain is fatal. Not a reported step (the close's steps are unchanged).
        """
        root = from_hex(book["bid_book_root"], 32) if book["bid_book_root"] else bytes(32)
        count = len(book["bids"])
        onchain_root, onchain_count, committed_at = self.chain._call(
            self.chain.settlement.functions.bookCommitment(auction_id)
        )
        if int(committed_at):
            if (bytes(onchain_root), int(onchain_count)) != (root, count):
                raise KeeperStateError(
                    f"auction {auction_id}: the frozen book ({to_hex(root)}, {count} envelopes) "
                    f"differs from the book committed on-chain ({to_hex(bytes(onchain_root))}, "
                    f"{int(onchain_count)}); nothing was sent"
                )
            return
        fn = self.chain.settlement.functions.commitBook(auction_id, root, count)
        self.urgent.send(fn, label=f"commitBook({auction_id})")
        self.log(f"auction {auction_id}: book committed on-chain ({count} envelopes)")

    def _snapshot_reads(self, auction_id: int, ids: list[int]) -> Background[_Reads]:
        """The snapshot block's reads (the first block at or after T: deterministic,
        re-derivable) of the requests ``ids``, started on a thread of their own. They read
        public chain state, so they overlap building the book and waiting for ``commitBook``;
        nothing is decrypted before ``commitBook`` is confirmed."""

        def read() -> _Reads:
            found = self.chain.first_block_at_or_after(auction_id)
            if found is None:
                raise KeeperStateError(f"no block at or after {auction_id} yet")
            return self.chain.block_info(found[0]), self.chain.snapshot(auction_id, ids, found[0])

        return Background(read, "qev-snapshot-reads")

    def _cleared(
        self,
        auction_id: int,
        book: dict[str, Any],
        secret: bytes,
        report: CloseReport,
        *,
        existing: dict[str, Any] | None,
        reads: Background[_Reads] | None,
    ) -> dict[str, Any]:
        if existing is not None:
            self._step(report, "clear", False)
            return dict(existing)
        assert reads is not None  # started by close_auction whenever there is no result
        read = reads.result()
        with gc_paused():  # opening, clearing and the trees build millions of objects
            doc = self._clear_at(auction_id, book, secret, read[0][0], [], reads=read)
        if self.chain.is_settled(auction_id):
            onchain = self.chain.settled(auction_id)
            if to_hex(onchain.allocation_root) != (doc["allocation_root"] or ZERO_ROOT):
                raise KeeperStateError(
                    f"auction {auction_id} is settled with roots this book does not give"
                )
        self._step(report, "clear", True)
        return doc

    def _clear_at(
        self,
        auction_id: int,
        book: dict[str, Any],
        secret: bytes,
        block: int,
        abandoned: list[dict[str, Any]],
        *,
        reads: _Reads | None = None,
    ) -> dict[str, Any]:
        """Open, validate and clear the book at ``block`` (its ``reads`` if made already);
        persist the tree and the result."""
        envelopes = self._envelopes(auction_id, book)
        if reads is None:
            ids = (e.redemption_id for e in envelopes)
            reads = self.chain.block_info(block), self.chain.snapshot(auction_id, ids, block)
        (number, block_hash, timestamp), snap = reads
        ctx = AuctionContext(auction_id, self.cfg.domain, secret)
        valid, excluded = validate_book_parallel(
            envelopes,
            ctx,
            snap.requests,
            self.cfg.workers,
            meanwhile=lambda: self._store_book(auction_id),  # while the workers open it
        )
        liquidity = snap.free_liquidity * self.cfg.liquidity_bps // BPS
        params = ClearingParams(
            snap.price, liquidity, self.cfg.mode, self.cfg.min_fill, snap.admin_fee_bps
        )
        result = clear(auction_id, valid, params)
        tree = allocation_tree(result)
        provenance = Provenance(
            chain_id=self.cfg.domain.chain_id,
            vault=from_hex(self.chain.vault.address, 20),
            settlement=from_hex(self.chain.settlement.address, 20),
            genesis=self.chain.genesis(),
            snapshot_block=number,
            snapshot_block_hash=block_hash,
            snapshot_timestamp=timestamp,
            free_liquidity=snap.free_liquidity,
            liquidity_bps=self.cfg.liquidity_bps,
        )
        doc = result_document(
            result,
            excluded,
            provenance=provenance,
            bid_book_root=book["bid_book_root"],
            allocation_root=root_of(tree),
            requests=snap.requests,
            abandoned=abandoned,
        )
        if tree is not None:
            art.put_json(self.store, auction_id, art.ALLOCATION_TREE, tree.dump())
        elif self.store.get_artifact(auction_id, art.ALLOCATION_TREE) is not None:
            art.put_json(self.store, auction_id, art.ALLOCATION_TREE, None)  # an abandoned tree
        art.put_json(self.store, auction_id, art.RESULT, doc)  # last: marks the step done
        self.log(
            f"auction {auction_id}: snapshot block {number}: {len(valid)} valid, "
            f"{len(excluded)} excluded, {result.winners} winners, "
            f"payout {result.total_payout} of {liquidity}"
        )
        return doc

    def _settle(
        self,
        auction_id: int,
        book: dict[str, Any],
        secret: bytes,
        result: dict[str, Any],
        report: CloseReport,
    ) -> None:
        if self.chain.is_settled(auction_id):
            alloc, book_root = _roots(result)
            onchain = self.chain.settled(auction_id)
            if (onchain.allocation_root, onchain.bid_book_root) != (alloc, book_root):
                raise KeeperStateError(f"auction {auction_id} settled with other roots")
            if self.store.get_artifact(auction_id, art.SETTLEMENT) is None:
                # killed between the receipt and the bookkeeping: rebuild it from the event
                found = self.chain.settlement_tx(auction_id, int(result["snapshot"]["block"]))
                if found is not None:
                    self._record_settlement(auction_id, result, *found)
            self._step(report, "settle", False)
            return
        for _ in range(MAX_RECLEARS + 1):
            fn = self._settle_call(auction_id, result)
            retry_block, _ = self.chain.latest_block()
            try:
                self.urgent.simulate(fn, block=retry_block)
            except SimulationRevertError as e:
                error = _abandon_reason(e)
                if error is None:
                    raise
                result = self._abandon(
                    auction_id,
                    book=book,
                    secret=secret,
                    result=result,
                    retry_block=retry_block,
                    error=error,
                )
                continue
            receipt = self.urgent.send(fn, label=f"settleAuction({auction_id})")
            report.gas["settleAuction"] = int(getattr(receipt, "gas_used", 0))
            self._record_settlement(auction_id, result, _tx_hex(receipt), _block(receipt))
            self._step(report, "settle", True)
            self.log(f"auction {auction_id}: settled")
            return
        raise KeeperStateError(
            f"auction {auction_id}: {MAX_RECLEARS} re-clears in a row could not settle"
        )

    def _settle_call(self, auction_id: int, result: dict[str, Any]) -> Any:
        alloc, book_root = _roots(result)
        return self.chain.settlement.functions.settleAuction(
            auction_id,
            alloc,
            book_root,
            int(result["total_shares"]),
            int(result["total_burnt"]),
            int(result["total_payout"]),
        )

    def _abandon(
        self,
        auction_id: int,
        *,
        book: dict[str, Any],
        secret: bytes,
        result: dict[str, Any],
        retry_block: int,
        error: str,
    ) -> dict[str, Any]:
        """DESIGN 7 (rev 2): record a result the chain no longer allows, re-clear later.

        A result cleared at the very block where its settle reverts cannot be fixed by
        re-clearing (the same state gives the same result): that is fatal, not a retry.
        """
        if int(result["snapshot"]["block"]) >= retry_block:
            raise KeeperStateError(
                f"auction {auction_id}: the result cleared at block {retry_block} does not "
                f"settle at that block ({error}); check the packaged liquidity"
            )
        record = {
            "snapshot_block": int(result["snapshot"]["block"]),
            "allocation_root": result["allocation_root"],
            "retry_block": retry_block,
            "error": error,
        }
        self.log(
            f"auction {auction_id}: the result of block {record['snapshot_block']} can no "
            f"longer settle ({error}); re-clearing at block {retry_block}"
        )
        return self._clear_at(
            auction_id, book, secret, retry_block, [*result.get("abandoned", []), record]
        )

    def _record_settlement(
        self, auction_id: int, result: dict[str, Any], tx: str | None, block: int | None
    ) -> None:
        art.put_json(self.store, auction_id, art.RESULT, {**result, "settlement_tx": tx})
        art.put_json(
            self.store,
            auction_id,
            art.SETTLEMENT,
            {"status": "settled", "tx": tx, "block": block},
        )

    def _push_claims(self, auction_id: int, report: CloseReport) -> None:
        """Claim every unclaimed leaf for its holder: ``claim_batch`` leaves per multiproof
        transaction, ``claim_depth`` transactions in flight (``send_many``, gas scaled by
        leaves), the unclaimed leaves read in batched reads first (a restarted keeper sends
        only what is missing). If a scaled transaction still runs out of gas, the leaves left
        are sent again with each transaction estimated."""
        dump = art.get_json(self.store, auction_id, art.ALLOCATION_TREE)
        if not dump:
            self._step(report, "claims", False)
            return
        tree = StandardMerkleTree.load(dump)

        def plan() -> tuple[list[tuple[Any, str]], list[int], int] | None:
            claimed = self.chain.claimed(auction_id, [int(v[1]) for v in tree.values])
            pending = [i for i, v in enumerate(tree.values) if not claimed[int(v[1])]]
            if not pending:
                return None
            return (*self._claim_calls(auction_id, tree, pending), len(pending))

        # the contract skips claimed leaves (never a revert), so even the exact resend may be
        # pipelined
        sent = self._send_planned(
            plan, estimate_every=32, pipeline_exact=True, what=f"auction {auction_id}: claims"
        )
        if sent is None:
            self._step(report, "claims", False)
            return
        receipts, claimed = sent
        report.claimed += claimed
        report.gas["claimMultiple"] = _gas(receipts)
        self._step(report, "claims", True)
        self.log(
            f"auction {auction_id}: pushed {report.claimed} claims in {len(receipts)} transactions"
        )

    def _claim_calls(
        self, auction_id: int, tree: StandardMerkleTree, pending: list[int]
    ) -> tuple[list[tuple[Any, str]], list[int]]:
        """One ``claimMultiple`` (multiproof) per ``claim_batch`` leaves, and their sizes."""
        calls: list[tuple[Any, str]] = []
        sizes: list[int] = []
        settlement, label = self.chain.settlement, f"claimMultiple({auction_id})"
        abi = settlement.abi
        for start in range(0, len(pending), self.cfg.claim_batch):
            batch = pending[start : start + self.cfg.claim_batch]
            mp = tree.multi_proof(batch)
            leaves = [(v[1], v[2], v[3], v[4], v[5]) for v in mp.leaves]
            data = claim_multiple(auction_id, leaves, mp.proof, mp.proof_flags)
            calls.append((TxRequest(settlement.address, data, abi=abi), label))
            sizes.append(len(batch))
        return calls, sizes

    def _send_planned(
        self,
        plan: Callable[[], tuple[list[tuple[Any, str]], list[int], T] | None],
        *,
        estimate_every: int,
        pipeline_exact: bool,
        what: str,
    ) -> tuple[list[Any], T] | None:
        """Send what ``plan()`` gives (calls, their sizes, a value returned with the
        receipts; None: nothing to do) on the housekeeping lane, ``claim_depth`` in flight
        with gas scaled by the sizes. If a scaled transaction still runs out of gas, plan
        again from the chain and send each call estimated: pipelined if ``pipeline_exact``,
        else one at a time. A lane without ``send_many`` sends one at a time."""
        send_many = getattr(self.housekeeping, "send_many", None)
        scaled = True
        while True:
            planned = plan()
            if planned is None:
                return None
            calls, sizes, value = planned
            try:
                if send_many is None or not (scaled or pipeline_exact):
                    receipts = [self.housekeeping.send(fn, label=label) for fn, label in calls]
                else:
                    receipts = send_many(
                        calls,
                        depth=self.cfg.claim_depth,
                        sizes=sizes if scaled else None,
                        estimate_every=estimate_every,
                    )
                return list(receipts), value
            except RevertedOnChainError as e:
                if not scaled:
                    raise
                self.log(f"{what}: a transaction failed ({e}); planning again, each estimated")
                scaled = False

    def _service_queue(self, report: CloseReport) -> None:
        """Service the FIFO queue's matured head with the free liquidity, in transactions of
        at most ``service_batch`` requests walked (one call over a deep queue would exceed
        the block gas limit), pipelined like the claims (``claim_depth`` in flight, in nonce
        order, so each runs on the queue the one before left; gas scaled by the requests
        walked). If a scaled one still runs out of gas, the rest is planned again from the
        chain and sent one transaction at a time, each estimated."""

        def plan() -> tuple[list[tuple[Any, str]], list[int], int] | None:
            _, now = self.chain.latest_block()
            cap = max(self.chain.pending_shares() - self.chain.locked_shares(), 0)
            batches = serviceable_batches(
                self.chain.queue(limit=2**63),
                now,
                self.chain.share_price(),
                self.chain.free_liquidity(),
                cap,
                max_requests=self.cfg.service_batch,
            )
            if not batches:
                return None
            fn = self.chain.vault.functions.serviceRedemptions
            calls = [(fn(shares), "serviceRedemptions") for shares, _ in batches]
            return calls, [w for _, w in batches], sum(shares for shares, _ in batches)

        sent = self._send_planned(plan, estimate_every=8, pipeline_exact=False, what="queue")
        if sent is None:
            self._step(report, "service", False)
            return
        receipts, shares = sent
        report.serviced_shares += shares
        report.gas["serviceRedemptions"] = _gas(receipts)
        self._step(report, "service", True)
        self.log(f"serviced {shares} shares from the FIFO queue in {len(receipts)} transactions")

    def _reveal(self, auction_id: int, secret: bytes, report: CloseReport) -> None:
        state = self.chain.key_state(auction_id)
        if not state.revealed:
            fn = self.chain.settlement.functions.revealAuctionKey(auction_id, secret)
            receipt = self.urgent.send(fn, label=f"revealAuctionKey({auction_id})")
            tx = _tx_hex(receipt)
            self._step(report, "reveal", True)
            self.log(f"auction {auction_id}: key revealed")
        else:
            tx = None
            self._step(report, "reveal", False)
        if self.store.get_artifact(auction_id, art.KEY) is None:
            art.put_json(
                self.store,
                auction_id,
                art.KEY,
                {
                    "auction_id": auction_id,
                    "private_key": to_hex(secret),
                    "public_key": to_hex(public_key_of(secret)),
                    "tx": tx,
                    **({"key_mode": "threshold"} if self.cfg.key_source is not None else {}),
                },
            )

    # --- catch-up -----------------------------------------------------------------

    def pending_closes(self, genesis: int, window: int, lookback: int = 3) -> list[int]:
        """Past auctions (up to ``lookback``) whose settle or reveal is still missing."""
        _, now = self.chain.latest_block()
        if now <= genesis:
            return []
        last = genesis + (now - genesis) // window * window
        out = []
        for k in range(lookback):
            t = last - k * window
            if t <= genesis:
                break
            if not self.chain.key_state(t).committed:
                continue  # never opened by this keeper
            if not self.chain.is_settled(t) or not self.chain.key_state(t).revealed:
                out.append(t)
        return sorted(out)


ZERO_ROOT = "0x" + "00" * 32


def _roots(result: dict[str, Any]) -> tuple[bytes, bytes]:
    """(allocation root, bid-book root) of a result, zero where there is none."""
    zero = bytes(32)
    alloc = from_hex(result["allocation_root"], 32) if result["allocation_root"] else zero
    book = from_hex(result["bid_book_root"], 32) if result["bid_book_root"] else zero
    return alloc, book


def _abandon_reason(error: SimulationRevertError) -> str | None:
    """The revert's name if it means the chain no longer allows the result, else None."""
    if error.error_name in ABANDON_ERRORS.values():
        return error.reason
    selector = bytes.fromhex((error.selector or "").removeprefix("0x") or "00")
    name = ABANDON_ERRORS.get(selector)
    return None if name is None else (error.reason if error.error_name else name)


def _gas(receipts: list[Any]) -> int:
    """Gas used by ``receipts`` together (a receipt without ``gas_used`` counts 0)."""
    return sum(int(getattr(r, "gas_used", 0)) for r in receipts)


def _tx_hex(receipt: Any) -> str | None:
    tx = getattr(receipt, "tx_hash", None)
    if tx is None:
        return None
    return tx if isinstance(tx, str) else to_hex(bytes(tx))


def _block(receipt: Any) -> int | None:
    block = getattr(receipt, "block_number", None)
    return int(block) if block is not None else None


__all__ = ["CloseReport", "Keeper", "KeeperConfig", "KeeperStateError", "KeySource", "Sender"]
