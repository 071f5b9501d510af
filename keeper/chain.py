"""The keeper's view of the chain: contract bindings and reads pinned to a snapshot block.

The vault may be the repository's model or USD.AI's real vault. The model has three views the
real (and the draft QEV) vault lacks: ``balances()``, ``genesisTimestamp()`` and
``qevRedemptionInfo()`` (PROTOCOL 11.3). Each is used only after a probing ``eth_call`` found it
answering; otherwise the reads fall back to what every vault has: ``redemptionQueueInfo()``,
``redemption(id)``, ``redemptionTimestamp()`` and the USDai token balance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from clearing.config import scrub_error
from clearing.errors import ChainReadError
from clearing.validation import RequestSnapshot
from keeper.artifacts import artifact
from keeper.errors import SimulationRevertError, classify
from keeper.readers import ChainReader

E18 = 10**18


@dataclass(frozen=True, slots=True)
class QueueRequest:
    """One request of the vault's FIFO queue."""

    redemption_id: int
    controller: bytes
    pending_shares: int
    redemption_timestamp: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every chain input of the clearing, read at one block."""

    requests: dict[int, RequestSnapshot]
    price: int
    free_liquidity: int
    admin_fee_bps: int


@dataclass(frozen=True, slots=True)
class SettledAuction:
    """What ``QEVSettlement.auction(T)`` says (all zero before settlement)."""

    allocation_root: bytes
    bid_book_root: bytes
    total_shares: int
    total_burnt: int
    total_payout: int
    claimed_shares: int
    claimed_payout: int
    fee_shares: int
    settled_at: int


@dataclass(frozen=True, slots=True)
class AuctionKeyState:
    """``QEVSettlement.auctionKey(T)``."""

    public_key: bytes
    commitment: bytes
    private_key: bytes
    revealed: bool

    @property
    def committed(self) -> bool:
        """Whether ``commitAuctionKey`` ran for this auction."""
        return any(self.commitment)


def _addr(value: str) -> bytes:
    return bytes.fromhex(value[2:])


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """``redemptionQueueInfo()``: the id counter, both ends, aggregate pending, USDai set aside."""

    index: int
    head: int
    tail: int
    pending: int
    balance: int


class Chain:
    """Bindings to the vault, the settlement contract and USDai, from the committed ABIs.

    ``genesis`` (optional) is the configured genesis: used, after a consistency check, when the
    vault has no ``genesisTimestamp()`` view.
    """

    def __init__(self, w3: Any, vault: str, settlement: str, *, genesis: int | None = None) -> None:
        self.w3 = w3
        self.vault = w3.eth.contract(address=vault, abi=artifact("StakedUSDaiQueue")["abi"])
        self.settlement = w3.eth.contract(address=settlement, abi=artifact("QEVSettlement")["abi"])
        self._genesis_hint = genesis
        self._views: dict[str, bool] = {}
        self.reader = ChainReader(w3)
        self.usdai = w3.eth.contract(
            address=self._call(self.vault.functions.asset()), abi=artifact("MockUSDai")["abi"]
        )

    def _call(self, fn: Any, block: int | str = "latest") -> Any:
        try:
            return fn.call(block_identifier=block)
        except Exception as e:  # RPC failures of every transport are retryable reads
            raise ChainReadError(f"{fn.fn_name} failed: {scrub_error(e)}") from e

    @property
    def genesis_hint(self) -> int | None:
        """The configured genesis given at construction (None if none)."""
        return self._genesis_hint

    def read(self, fn: Any, block: int | str = "latest") -> Any:
        """Any bound contract read at ``block``; a node failure is a ``ChainReadError``."""
        return self._call(fn, block)

    def has_view(self, name: str) -> bool:
        """Whether the vault answers the model view ``name`` (``balances``, ``genesisTimestamp``
        or ``qevRedemptionInfo``), found out once by a probing ``eth_call``.

        A revert (what a missing function gives) or an undecodable answer means absent; an RPC
        failure raises ``ChainReadError`` and is not remembered, so the next read probes again.
        """
        found = self._views.get(name)
        if found is None:
            args = (0,) if name == "qevRedemptionInfo" else ()
            fn = getattr(self.vault.functions, name)(*args)
            try:
                fn.call(block_identifier="latest")
                found = True
            except Exception as e:
                kind = classify(e)
                if not isinstance(kind, SimulationRevertError) and not _undecodable(e):
                    raise ChainReadError(f"probing {name}() failed: {scrub_error(e)}") from e
                found = False
            self._views[name] = found
        return found

    def queue_info(self, block: int | str = "latest") -> QueueInfo:
        """``redemptionQueueInfo()`` at ``block``."""
        index, head, tail, pending, balance = self._call(
            self.vault.functions.redemptionQueueInfo(), block
        )
        return QueueInfo(int(index), int(head), int(tail), int(pending), int(balance))

    # --- time -------------------------------------------------------------------

    def latest_block(self) -> tuple[int, int]:
        """(number, timestamp) of the latest block."""
        try:
            block = self.w3.eth.get_block("latest")
        except Exception as e:
            raise ChainReadError(f"get_block failed: {scrub_error(e)}") from e
        return int(block["number"]), int(block["timestamp"])

    def block_info(self, number: int) -> tuple[int, bytes, int]:
        """(number, hash, timestamp) of block ``number``."""
        try:
            block = self.w3.eth.get_block(number)
        except Exception as e:
            raise ChainReadError(f"get_block({number}) failed: {scrub_error(e)}") from e
        return int(block["number"]), bytes(block["hash"]), int(block["timestamp"])

    def transaction_sender(self, tx_hash: str) -> str:
        """The ``from`` address of a mined transaction."""
        try:
            return str(self.w3.eth.get_transaction(tx_hash)["from"])
        except Exception as e:
            raise ChainReadError(f"get_transaction failed: {scrub_error(e)}") from e

    def simulate(self, fn: Any, sender: str | None, block: int) -> bytes:
        """``eth_call`` of a contract call from ``sender`` at ``block``.

        Raises ``SimulationRevertError`` (decoded with the contract's ABI) if it reverts.
        """
        params: dict[str, Any] = {"to": fn.address, "data": fn._encode_transaction_data()}
        if sender is not None:
            params["from"] = sender
        try:
            return bytes(self.w3.eth.call(params, block))
        except Exception as e:
            raise classify(e, fn.contract_abi) from e

    def chain_id(self) -> int:
        """The node's chain id."""
        try:
            return int(self.w3.eth.chain_id)
        except Exception as e:
            raise ChainReadError(f"eth_chainId failed: {scrub_error(e)}") from e

    def receipt_signer(self, block: int | str = "latest") -> bytes:
        """The settlement contract's registered receipt signer (zero address if none)."""
        return _addr(self._call(self.settlement.functions.receiptSigner(), block))

    def genesis(self) -> int:
        """The vault's immutable genesis timestamp.

        A vault without ``genesisTimestamp()`` (the real one) gives the configured genesis
        instead, checked to be a window boundary of the vault (``redemptionTimestamp()`` is
        always one); without a configured genesis that is a ``ConfigError``.
        """
        if self.has_view("genesisTimestamp"):
            return int(self._call(self.vault.functions.genesisTimestamp()))
        from clearing.calendar import REDEMPTION_WINDOW
        from clearing.config import ConfigError

        if self._genesis_hint is None:
            raise ConfigError(
                "the vault has no genesisTimestamp() view: configure genesis (QEV_GENESIS)"
            )
        boundary = int(self._call(self.vault.functions.redemptionTimestamp()))
        if (boundary - self._genesis_hint) % REDEMPTION_WINDOW:
            raise ConfigError(
                f"genesis {self._genesis_hint} is not a window boundary of the vault "
                f"(its current window ends at {boundary})"
            )
        return self._genesis_hint

    # --- snapshot reads ---------------------------------------------------------

    def share_price(self, block: int | str = "latest") -> int:
        """``redemptionSharePrice()`` (1e18 fixed point)."""
        return int(self._call(self.vault.functions.redemptionSharePrice(), block))

    def free_liquidity(self, block: int | str = "latest") -> int:
        """USDai held by the vault less USDai set aside for serviced requests.

        From the model's ``balances()`` when the vault has it, else from the USDai balance and
        the set-aside balance of ``redemptionQueueInfo()`` (the same two numbers).
        """
        if self.has_view("balances"):
            held, set_aside = self._call(self.vault.functions.balances(), block)
        else:
            held = self._call(self.usdai.functions.balanceOf(self.vault.address), block)
            set_aside = self.queue_info(block).balance
        return int(held) - int(set_aside)

    def request(self, redemption_id: int, block: int | str = "latest") -> QueueRequest:
        """One request (a missing request has a zero controller and no shares).

        Uses the QEV vault's O(1) ``qevRedemptionInfo`` when the vault has it; the plain
        ``redemption(id)`` view also sums the shares ahead (a bounded walk of the queue).
        """
        if self.has_view("qevRedemptionInfo"):
            controller, ts, pending = self._call(
                self.vault.functions.qevRedemptionInfo(redemption_id), block
            )
        else:
            (_, _, pending, _, _, controller, ts), _ = self._call(
                self.vault.functions.redemption(redemption_id), block
            )
        return QueueRequest(redemption_id, _addr(controller), int(pending), int(ts))

    def requests(
        self, redemption_ids: Iterable[int], block: int | str = "latest"
    ) -> dict[int, QueueRequest]:
        """Many requests at ``block`` in batched reads (a missing one: zero controller)."""
        read = self.reader.requests(
            self.vault.address,
            None,
            0,
            sorted(set(redemption_ids)),
            block,
            plain=not self.has_view("qevRedemptionInfo"),
        )
        return {rid: QueueRequest(rid, c, pending, ts) for rid, (c, ts, pending, _) in read.items()}

    def snapshot_requests(
        self,
        auction_id: int,
        redemption_ids: Iterable[int],
        block: int,
        *,
        nonces: str | None = None,
    ) -> dict[int, RequestSnapshot]:
        """Requests and the auction's nonces for ``redemption_ids`` at ``block`` (rule 0 input),
        in batched reads; ``nonces`` is the contract keeping them (default: the settlement)."""
        read = self.reader.requests(
            self.vault.address,
            nonces or self.settlement.address,
            auction_id,
            sorted(set(redemption_ids)),
            block,
            plain=not self.has_view("qevRedemptionInfo"),
        )
        return {
            rid: RequestSnapshot(rid, c, pending, ts, nonce)
            for rid, (c, ts, pending, nonce) in read.items()
        }

    def snapshot(self, auction_id: int, redemption_ids: Iterable[int], block: int) -> Snapshot:
        """Requests, nonces, share price, free liquidity and admin fee at ``block``."""
        return Snapshot(
            self.snapshot_requests(auction_id, sorted(set(redemption_ids)), block),
            self.share_price(block),
            self.free_liquidity(block),
            self.admin_fee_bps(block),
        )

    def queue(self, block: int | str = "latest", limit: int = 10_000) -> Iterator[QueueRequest]:
        """The FIFO queue from its head, lazily, a page of requests per read (stop early to
        read only what you need)."""
        _, head, _, _, _ = self._call(self.vault.functions.redemptionQueueInfo(), block)
        rid, seen = int(head), 0
        while rid and seen < limit:
            page, rid = self.reader.queue_page(self.vault.address, rid, block, limit - seen)
            for qid, controller, ts, pending in page:
                yield QueueRequest(qid, controller, pending, ts)
            seen += len(page)

    def admin_fee_bps(self, block: int | str = "latest") -> int:
        """The settlement contract's admin fee (basis points of the burnt shares)."""
        return int(self._call(self.settlement.functions.adminFeeBps(), block))

    def pending_shares(self, block: int | str = "latest") -> int:
        """Pending shares of the whole queue (the aggregate: see PROTOCOL 11.4, hazard 3)."""
        return self.queue_info(block).pending

    def settlement_tx(self, auction_id: int, from_block: int) -> tuple[str, int] | None:
        """(tx hash, block) of the ``AuctionSettled`` event of ``auction_id``, if any."""
        try:
            logs = self.settlement.events.AuctionSettled().get_logs(
                from_block=from_block, argument_filters={"auctionId": auction_id}
            )
        except Exception as e:
            raise ChainReadError(f"AuctionSettled logs failed: {scrub_error(e)}") from e
        if not logs:
            return None
        return "0x" + bytes(logs[-1]["transactionHash"]).hex(), int(logs[-1]["blockNumber"])

    def first_block_at_or_after(self, timestamp: int) -> tuple[int, int] | None:
        """The first block whose timestamp is >= ``timestamp`` (binary search), if mined yet.

        The keeper's snapshot for auction T is the first block at or after T: a keeper that
        lost its store re-derives the same snapshot and so the same result.
        """
        latest, latest_ts = self.latest_block()
        if latest_ts < timestamp:
            return None
        lo, hi = 0, latest
        while lo < hi:
            mid = (lo + hi) // 2
            if self._block_timestamp(mid) >= timestamp:
                hi = mid
            else:
                lo = mid + 1
        return lo, self._block_timestamp(lo)

    def _block_timestamp(self, number: int) -> int:
        try:
            return int(self.w3.eth.get_block(number)["timestamp"])
        except Exception as e:
            raise ChainReadError(f"get_block({number}) failed: {scrub_error(e)}") from e

    def locked_shares(self, block: int | str = "latest") -> int:
        """Pending shares locked by settled, unclaimed QEV allocations."""
        return int(self._call(self.vault.functions.qevLockedShares(), block))

    # --- settlement state -------------------------------------------------------

    def settled(self, auction_id: int) -> SettledAuction:
        """``auction(T)``."""
        v = self._call(self.settlement.functions.auction(auction_id))
        return SettledAuction(bytes(v[0]), bytes(v[1]), *(int(x) for x in v[2:]))

    def is_settled(self, auction_id: int) -> bool:
        """Whether ``settleAuction(T, ...)`` has run."""
        return bool(self._call(self.settlement.functions.isSettled(auction_id)))

    def key_state(self, auction_id: int) -> AuctionKeyState:
        """``auctionKey(T)``."""
        pk, commitment, sk, revealed = self._call(self.settlement.functions.auctionKey(auction_id))
        return AuctionKeyState(bytes(pk), bytes(commitment), bytes(sk), bool(revealed))

    def is_claimed(self, auction_id: int, redemption_id: int) -> bool:
        """Whether an allocation leaf has been claimed."""
        return bool(self._call(self.settlement.functions.isClaimed(auction_id, redemption_id)))

    def claimed(
        self, auction_id: int, redemption_ids: Iterable[int], block: int | str = "latest"
    ) -> dict[int, bool]:
        """``isClaimed`` of many leaves at ``block``, in batched reads."""
        return self.reader.claimed(self.settlement.address, auction_id, list(redemption_ids), block)


def _undecodable(exc: Exception) -> bool:
    """web3's "the call returned nothing it could decode" (e.g. a contract with a fallback)."""
    return type(exc).__name__ in {"BadFunctionCallOutput", "InsufficientDataBytes"}


def serviceable_batches(
    queue: Iterable[QueueRequest],
    now: int,
    price: int,
    liquidity: int,
    cap: int,
    *,
    max_requests: int,
) -> list[tuple[int, int]]:
    """Shares ``serviceRedemptions`` can take from the head, split into calls that each walk
    at most ``max_requests`` requests (emptied ones included: the vault pops them too), as
    ``(shares, requests walked)`` per call.

    Mirrors the vault's walk (per-request ``mulDiv(shares, price, 1e18)``), so the calls fit
    the free liquidity exactly and never reach an unmatured request; splitting at request
    boundaries prices every request as one call would. A call also pops the emptied requests
    that follow its last serviced one, so a batch ends only where a request with shares
    pending starts the next (the emptied ones between count towards the batch before). The
    emptied requests before a batch's first serviced one are popped by that call whatever
    their number: when they alone reach ``max_requests`` the batch services one request.
    """
    batches: list[tuple[int, int]] = []
    total, remaining, walked, batch = 0, liquidity, 0, 0
    for r in queue:
        if r.pending_shares == 0:
            walked += 1
            continue
        if r.redemption_timestamp >= now or total >= cap or remaining <= 0:
            break
        if walked >= max_requests and batch:
            batches.append((batch, walked))
            walked, batch = 0, 0
        walked += 1
        affordable = remaining * E18 // price if price else r.pending_shares
        take = min(r.pending_shares, affordable, cap - total)
        if take <= 0:
            break
        total += take
        batch += take
        remaining -= take * price // E18
        if take < r.pending_shares:
            break
    if batch:
        batches.append((batch, walked))
    return batches


def serviceable_shares(
    queue: Iterable[QueueRequest], now: int, price: int, liquidity: int, cap: int
) -> int:
    """Shares ``serviceRedemptions`` can take from the head: matured, paid for, within ``cap``
    (all of ``serviceable_batches`` in one call)."""
    batches = serviceable_batches(queue, now, price, liquidity, cap, max_requests=2**63)
    return sum(shares for shares, _ in batches)


__all__ = [
    "AuctionKeyState",
    "Chain",
    "QueueInfo",
    "QueueRequest",
    "SettledAuction",
    "Snapshot",
    "serviceable_batches",
    "serviceable_shares",
]
