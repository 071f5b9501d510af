"""The ``registry`` target's typed adapter: USD.AI's draft QEV registry and the vault's reorder.

Reads return typed values and raise ``ChainReadError`` (retryable) when the node fails; the
write builders return unsent contract calls for a ``Sender``, whose simulation decodes the
draft's custom errors with these ABIs. Nothing here decides what to send: that is the close
duty's job (``keeper.duties.registry``).

The draft (PROTOCOL 11.1, 11.3): bids are indexed from 1; ``auction(T)`` is ``(bidCount,
processedBidCount, processedRedemptionId)``; a bid on a request with nothing pending is skipped
by ``postBids`` without being stored; ``previousAuctionId()`` is the last settled auction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clearing.config import scrub_error
from clearing.engine import ValidBid, rank_bids
from clearing.errors import ChainReadError
from clearing.hashing import keccak256
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.model import BPS, Bid, Envelope, SignedBid
from clearing.validation import AuctionContext, RequestSnapshot
from keeper.artifacts import artifact
from keeper.chain import Chain, Snapshot
from keeper.errors import SimulationRevertError, classify

AUCTION_ADMIN_ROLE = keccak256(b"AUCTION_ADMIN_ROLE")
QUEUE_PROCESSOR_ADMIN_ROLE = keccak256(b"QUEUE_PROCESSOR_ADMIN_ROLE")
PAGE = 500  # bids per ``bids(T, offset, count)`` read


@dataclass(frozen=True, slots=True)
class RegistryAuction:
    """``auction(T)``: bids stored, bids reordered, and the last id moved to the front."""

    bid_count: int
    processed: int
    last_moved: int

    @property
    def remaining(self) -> int:
        """Bids not reordered yet (negative after an over-long reorder: hazard 1)."""
        return self.bid_count - self.processed

    @property
    def overrun(self) -> bool:
        """Hazard 1 already on chain: more bids counted as processed than were stored."""
        return self.processed > self.bid_count

    @property
    def reordered(self) -> bool:
        """Every stored bid is reordered (also true with no bids)."""
        return self.processed == self.bid_count


@dataclass(frozen=True, slots=True)
class Moved:
    """One bid's effect in the reorder, from the vault's events (in processing order)."""

    redemption_id: int  # the bid's request
    queue_id: int  # the id moved to the front: the request itself, or a new one (partial bid)
    pending_shares: int  # pending shares of ``queue_id`` right after the reorder
    burnt: int  # shares burnt (``bidAmount``)
    remaining: int | None  # partial bid: what stays pending under the old id; else None


@dataclass(frozen=True, slots=True)
class ReorderCall:
    """One ``reorderRedemptions`` transaction: its ``RedemptionsReordered`` and bids moved."""

    tx_hash: str
    block: int
    count: int
    net_burnt: int
    fee: int
    done: bool
    moved: tuple[Moved, ...]


def _bid(value: Any) -> Bid:
    auction_id, rid, shares, bp, nonce = value
    return Bid(int(auction_id), int(rid), int(shares), int(bp), int(nonce))


def _tx_hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


class Registry:
    """Typed reads and write builders of the registry at ``address`` and of the vault's reorder."""

    def __init__(self, chain: Chain, address: str) -> None:
        self.chain = chain
        self.contract = chain.w3.eth.contract(
            address=chain.w3.to_checksum_address(address), abi=artifact("QEVRegistry")["abi"]
        )

    @property
    def address(self) -> str:
        """The registry's checksummed address."""
        return str(self.contract.address)

    # --- reads --------------------------------------------------------------------------

    def auction(self, auction_id: int, block: int | str = "latest") -> RegistryAuction:
        """``auction(T)`` at ``block``."""
        count, processed, last = self.chain.read(self.contract.functions.auction(auction_id), block)
        return RegistryAuction(int(count), int(processed), int(last))

    def previous_auction_id(self, block: int | str = "latest") -> int:
        """The last settled auction (0 before the first)."""
        return int(self.chain.read(self.contract.functions.previousAuctionId(), block))

    def bids(
        self, auction_id: int, offset: int, count: int, block: int | str = "latest"
    ) -> list[Bid]:
        """Stored bids ``offset+1 .. offset+count`` (clamped by the registry)."""
        raw = self.chain.read(self.contract.functions.bids(auction_id, offset, count), block)
        return [_bid(b) for b in raw]

    def posted(self, auction_id: int, block: int | str = "latest") -> list[Bid]:
        """Every stored bid of ``auction_id`` in order, read page by page at one block."""
        if block == "latest":
            block = self.chain.latest_block()[0]
        total = self.auction(auction_id, block).bid_count
        out: list[Bid] = []
        while len(out) < total:
            page = self.bids(auction_id, len(out), min(PAGE, total - len(out)), block)
            if not page:
                break
            out.extend(page)
        return out

    def nonce(self, auction_id: int, redemption_id: int, block: int | str = "latest") -> int:
        """The pair's nonce on the registry."""
        return int(self.chain.read(self.contract.functions.nonce(auction_id, redemption_id), block))

    def admin_fee_rate(self, block: int | str = "latest") -> int:
        """Admin fee in basis points of the burnt shares (fixed at deployment)."""
        return int(self.chain.read(self.contract.functions.adminFeeRate(), block))

    def admin_fee_recipient(self, block: int | str = "latest") -> str:
        """Where the vault mints the admin-fee shares."""
        return str(self.chain.read(self.contract.functions.adminFeeRecipient(), block))

    def snapshot_requests(
        self, auction_id: int, redemption_ids: Iterable[int], block: int
    ) -> dict[int, RequestSnapshot]:
        """Requests (through the vault's views) and the registry's nonces at ``block``, in
        batched reads."""
        return self.chain.snapshot_requests(
            auction_id, redemption_ids, block, nonces=self.contract.address
        )

    def snapshot(self, auction_id: int, redemption_ids: Iterable[int], block: int) -> Snapshot:
        """Rule 0's inputs for this target at ``block``: requests, registry nonces, price, free
        liquidity (informative: the registry target packages none) and the registry's fee."""
        return Snapshot(
            self.snapshot_requests(auction_id, redemption_ids, block),
            self.chain.share_price(block),
            self.chain.free_liquidity(block),
            self.admin_fee_rate(block),
        )

    def vault_registry(self) -> str | None:
        """The registry the vault reorders from, if the vault has a view for it (the model's
        ``qevRegistry()``); None when it has none."""
        return vault_registry(self.chain)

    # --- events -------------------------------------------------------------------------

    def _logs(self, event: Any, from_block: int, what: str) -> list[Any]:
        try:
            return list(event().get_logs(from_block=from_block))
        except Exception as e:
            raise ChainReadError(f"{what} logs failed: {scrub_error(e)}") from e

    def settlement_tx(self, auction_id: int, from_block: int) -> tuple[str, int] | None:
        """(tx hash, block) of the registry's ``AuctionSettled(T)``, if any."""
        logs = [
            log
            for log in self._logs(self.contract.events.AuctionSettled, from_block, "AuctionSettled")
            if int(log["args"]["auctionId"]) == auction_id
        ]
        if not logs:
            return None
        return _tx_hex(logs[-1]["transactionHash"]), int(logs[-1]["blockNumber"])

    def reorder_calls(self, auction_id: int, from_block: int) -> list[ReorderCall]:
        """Every ``reorderRedemptions(T, ...)`` mined since ``from_block``, with the bids moved."""
        vault = self.chain.vault
        calls = [
            log
            for log in self._logs(
                vault.events.RedemptionsReordered, from_block, "RedemptionsReordered"
            )
            if int(log["args"]["auctionId"]) == auction_id
        ]
        out = []
        for log in calls:
            tx = _tx_hex(log["transactionHash"])
            try:
                receipt = self.chain.w3.eth.get_transaction_receipt(tx)
            except Exception as e:
                raise ChainReadError(f"receipt of {tx} failed: {scrub_error(e)}") from e
            out.append(
                ReorderCall(
                    tx,
                    int(log["blockNumber"]),
                    int(log["args"]["count"]),
                    int(log["args"]["netBurnt"]),
                    int(log["args"]["fee"]),
                    bool(log["args"]["done"]),
                    tuple(moved_in(self.chain, receipt)),
                )
            )
        return out

    # --- writes (unsent) ----------------------------------------------------------------

    def post_bids(self, auction_id: int, bids: Sequence[SignedBid]) -> Any:
        """``postBids(T, bids)`` (AUCTION_ADMIN_ROLE)."""
        return self.contract.functions.postBids(
            auction_id,
            [
                (
                    (
                        s.bid.auction_id,
                        s.bid.redemption_id,
                        s.bid.redemption_shares,
                        s.bid.basis_point,
                        s.bid.nonce,
                    ),
                    s.signature,
                )
                for s in bids
            ],
        )

    def settle(self, auction_id: int) -> Any:
        """``settleAuction(T)`` on the registry (AUCTION_ADMIN_ROLE)."""
        return self.contract.functions.settleAuction(auction_id)

    def reorder(self, auction_id: int, count: int) -> Any:
        """The vault's ``reorderRedemptions(T, count)`` (STRATEGY_ADMIN_ROLE)."""
        return self.chain.vault.functions.reorderRedemptions(auction_id, count)

    def service(self, shares: int) -> Any:
        """The vault's ``serviceRedemptions(shares)`` (STRATEGY_ADMIN_ROLE)."""
        return self.chain.vault.functions.serviceRedemptions(shares)

    def estimate_gas(self, fn: Any, sender: str) -> int:
        """``eth_estimateGas`` of ``fn`` from ``sender``; a revert is a decoded
        ``SimulationRevertError`` (fatal), a node failure a retryable error."""
        params = {"from": sender, "to": fn.address, "data": fn._encode_transaction_data()}
        try:
            return int(self.chain.w3.eth.estimate_gas(params))
        except Exception as e:
            raise classify(e, fn.contract_abi) from e


def moved_in(chain: Chain, receipt: Any) -> list[Moved]:
    """The bids a ``reorderRedemptions`` receipt moved, in order, from its vault events.

    A bid on a whole request gives one ``RedemptionUpdated`` (the burn in ``bidAmount``); a bid
    on part of one gives ``RedemptionUpdated`` (the rest, ``bidAmount`` 0) immediately followed
    by ``RedemptionCreated`` (the new id, its pending shares and the burn).
    """
    events = chain.vault.events
    entries = sorted(
        [
            *(
                (int(e["logIndex"]), False, e["args"])
                for e in _decoded(events.RedemptionUpdated, receipt)
            ),
            *(
                (int(e["logIndex"]), True, e["args"])
                for e in _decoded(events.RedemptionCreated, receipt)
            ),
        ],
        key=lambda entry: entry[0],
    )
    out: list[Moved] = []
    i = 0
    while i < len(entries):
        _, created, args = entries[i]
        if created:
            raise ChainReadError("RedemptionCreated without its RedemptionUpdated")
        if i + 1 < len(entries) and entries[i + 1][1]:
            new = entries[i + 1][2]
            out.append(
                Moved(
                    int(args["redemptionId"]),
                    int(new["redemptionId"]),
                    int(new["pendingShares"]),
                    int(new["bidAmount"]),
                    int(args["pendingShares"]),
                )
            )
            i += 2
            continue
        rid = int(args["redemptionId"])
        out.append(Moved(rid, rid, int(args["pendingShares"]), int(args["bidAmount"]), None))
        i += 1
    return out


def _decoded(event: Any, receipt: Any) -> list[Any]:
    from web3.logs import DISCARD

    return list(event().process_receipt(receipt, errors=DISCARD))


def vault_registry(chain: Chain) -> str | None:
    """The vault's registry through the model's ``qevRegistry()`` view, None without one (or 0)."""
    fn = chain.vault.functions.qevRegistry()
    try:
        value = fn.call(block_identifier="latest")
    except Exception as e:
        if isinstance(classify(e), SimulationRevertError) or type(e).__name__ in {
            "BadFunctionCallOutput",
            "InsufficientDataBytes",
        }:
            return None
        raise ChainReadError(f"qevRegistry() failed: {scrub_error(e)}") from e
    address = str(value)
    return None if int(address, 16) == 0 else to_checksum_address(bytes.fromhex(address[2:]))


# --- the bids to post and what the draft's reorder must do with them (pure) -------------------


@dataclass(frozen=True, slots=True)
class PlannedBid:
    """A valid bid as the registry takes it: the signed inner bid, in rule-2 rank order."""

    rank: int  # 1-based
    signed: SignedBid
    controller: bytes
    size: int  # rule 1: min(redemptionShares, pending shares at the snapshot)


def plan_bids(
    valid: list[ValidBid], envelopes: list[Envelope], ctx: AuctionContext
) -> list[PlannedBid]:
    """The valid bids in rule-2 order with their signed inner bids (opened again from the
    envelopes: rule 0 keeps only the effective size)."""
    by_rid = {e.redemption_id: e for e in envelopes}
    opener = ctx.opener()
    out = []
    for rank, v in enumerate(rank_bids(valid), start=1):
        signed = SignedBid.decode(opener.open(by_rid[v.redemption_id].ciphertext))
        out.append(PlannedBid(rank, signed, v.controller, v.size))
    return out


def bids_document(planned: list[PlannedBid]) -> list[dict[str, Any]]:
    """The result's ``bids``: what is posted, in order (public once posted anyway)."""
    return [
        {
            "rank": p.rank,
            "redemption_id": str(p.signed.bid.redemption_id),
            "controller": to_checksum_address(p.controller),
            "redemption_shares": str(p.signed.bid.redemption_shares),
            "basis_point": p.signed.bid.basis_point,
            "nonce": str(p.signed.bid.nonce),
            "size": str(p.size),
            "signature": to_hex(p.signed.signature),
        }
        for p in planned
    ]


def planned_of(doc: list[dict[str, Any]], auction_id: int) -> list[PlannedBid]:
    """Parse ``bids_document`` back."""
    return [
        PlannedBid(
            int(b["rank"]),
            SignedBid(
                Bid(
                    auction_id,
                    int(b["redemption_id"]),
                    int(b["redemption_shares"]),
                    int(b["basis_point"]),
                    int(b["nonce"]),
                ),
                from_hex(b["signature"]),
            ),
            parse_address(b["controller"]),
            int(b["size"]),
        )
        for b in doc
    ]


def draft_reorder(
    bids: list[Bid],
    pending: dict[int, int],
    index: int,
    fee_rate: int,
    counts: list[int],
) -> tuple[list[list[Moved]], list[int]]:
    """What the draft's ``reorderRedemptions`` calls with ``counts`` do to ``bids`` (posted
    order), given each request's pending shares and the vault's id counter before the first
    call: the bids moved per call and each call's fee (PROTOCOL 11.3).

    A bid whose request has nothing pending is passed over; otherwise ``burnt =
    floor(min(pending, shares) * bp / 10000)``; a bid on the whole request keeps its id, one on
    part of it gets the next id; the fee is ``floor(sum of burnt * fee_rate / 10000)`` per call.
    """
    left = dict(pending)
    calls: list[list[Moved]] = []
    fees: list[int] = []
    at = 0
    for count in counts:
        moved: list[Moved] = []
        burnt_sum = 0
        for b in bids[at : at + count]:
            have = left.get(b.redemption_id, 0)
            if have == 0:
                continue
            size = min(have, b.redemption_shares)
            burnt = size * b.basis_point // BPS
            if size == have:
                left[b.redemption_id] = have - burnt
                moved.append(Moved(b.redemption_id, b.redemption_id, have - burnt, burnt, None))
            else:
                index += 1
                left[b.redemption_id] = have - size
                left[index] = size - burnt
                moved.append(Moved(b.redemption_id, index, size - burnt, burnt, have - size))
            burnt_sum += burnt
        calls.append(moved)
        fees.append(burnt_sum * fee_rate // BPS)
        at += count
    return calls, fees


# --- deployment of the model (demo and tests) ------------------------------------------------


def deploy_registry(
    w3: Any,
    admin: str,
    vault: str,
    auction_admins: Sequence[str],
    *,
    admin_fee_rate: int = 0,
    fee_recipient: str | None = None,
) -> str:
    """Deploy the registry model next to ``vault`` as the draft is deployed (constructor with the
    fixed fee settings, then ``initialize()`` by ``admin``), grant AUCTION_ADMIN_ROLE to
    ``auction_admins`` and point the vault at it (``admin`` must be the vault's admin)."""
    from keeper.deploy import deploy, transact

    registry = deploy(w3, "QEVRegistry", admin, vault, admin_fee_rate, fee_recipient or admin)
    transact(w3, registry.functions.initialize(), admin)
    for account in auction_admins:
        transact(w3, registry.functions.grantRole(AUCTION_ADMIN_ROLE, account), admin)
    model = w3.eth.contract(address=vault, abi=artifact("StakedUSDaiQueue")["abi"])
    transact(w3, model.functions.setQEVRegistry(registry.address), admin)
    return str(registry.address)


__all__ = [
    "AUCTION_ADMIN_ROLE",
    "QUEUE_PROCESSOR_ADMIN_ROLE",
    "Moved",
    "PlannedBid",
    "Registry",
    "RegistryAuction",
    "ReorderCall",
    "bids_document",
    "deploy_registry",
    "draft_reorder",
    "moved_in",
    "plan_bids",
    "planned_of",
    "vault_registry",
]
