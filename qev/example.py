"""``qev example``: one auction, end to end through the pure core, on built-in data.

Holders seal and sign bids, the book is frozen and committed to a bid-book root, the
auction key opens it, rule 0 excludes what it must, the clearing rule allocates the
packaged liquidity and the allocation tree gives the root the keeper would settle.
Keys here are derived from fixed labels: an example, never a real secret.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from clearing.bidding import seal_bid
from clearing.eip712 import Eip712Domain
from clearing.engine import ClearingParams, ClearingResult, Mode, clear
from clearing.hexcodec import to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES, BID_BOOK_LEAF_TYPES, Bid, Envelope
from clearing.sealing import derive_auction_secret, public_key_of
from clearing.signing import Signer
from clearing.validation import AuctionContext, Exclusion, RequestSnapshot, validate_book

E18 = 10**18
WINDOW = 30 * 86_400
GENESIS = 1_735_689_600  # 2025-01-01T00:00:00Z
AUCTION_ID = GENESIS + 23 * WINDOW
SETTLEMENT = bytes.fromhex("a51c1fc2f0d1a1b8494ed1fe312d7c3a78ed91c0")
PRICE = 1_053_400_000_000_000_000  # sUSDai redemption share price, 1e18 fixed point


def _label_key(label: str) -> bytes:
    return hashlib.sha256(b"qev-example:" + label.encode()).digest()


@dataclass
class ExampleAuction:
    """The example's inputs and everything derived from them."""

    domain: Eip712Domain
    envelopes: list[Envelope]
    requests: dict[int, RequestSnapshot]
    superseded: int
    secret: bytes


def build_example(holders: int) -> ExampleAuction:
    """Holders, their redemption requests and sealed bids (with a few deliberate faults)."""
    domain = Eip712Domain("QEVSettlement", "1", 31337, SETTLEMENT)
    secret = derive_auction_secret(_label_key("master"), AUCTION_ID)
    public_key = public_key_of(secret)
    envelopes: dict[int, Envelope] = {}
    requests: dict[int, RequestSnapshot] = {}
    superseded = 0
    for i in range(holders):
        signer = Signer(_label_key(f"holder-{i}"))
        rid = 1_000 + i
        pending = (25 + 37 * (i % 9)) * E18
        matured_at = AUCTION_ID - WINDOW if i % 11 != 7 else AUCTION_ID + WINDOW  # one too young
        nonce = 1 if i % 13 == 5 else 0  # one holder cancelled on-chain: the bid is stale
        requests[rid] = RequestSnapshot(rid, signer.address, pending, matured_at, nonce)
        bp = 10 + (i * 379) % 990  # 0.1% .. 10%
        envelope = seal_bid(signer, Bid(AUCTION_ID, rid, pending, bp, 0), domain, public_key)
        if i % 4 == 1:  # changed their mind: the replacement supersedes the first bid
            superseded += 1
            bump = Bid(AUCTION_ID, rid, pending, min(bp + 150, 10_000), 0)
            envelope = seal_bid(signer, bump, domain, public_key)
        if i % 17 == 3:  # a corrupted upload
            envelope = Envelope(
                AUCTION_ID,
                rid,
                envelope.controller,
                envelope.ciphertext[:-2] + b"\x00\x00",
                envelope.signature,
            )
        envelopes[rid] = envelope
    return ExampleAuction(domain, list(envelopes.values()), requests, superseded, secret)


def _usd(wei: int) -> str:
    return f"{wei // E18:,}.{wei % E18 * 100 // E18:02d}"


def _short(address: bytes) -> str:
    text = to_checksum_address(address)
    return text[:6] + ".." + text[-4:]


def close_example(
    ex: ExampleAuction, mode: str = "pay_as_bid"
) -> tuple[ClearingResult, list[Exclusion], dict[str, object]]:
    """Freeze, open, validate and clear the example book; returns result, exclusions, summary."""
    book = StandardMerkleTree.of([e.book_leaf() for e in ex.envelopes], BID_BOOK_LEAF_TYPES)
    ctx = AuctionContext(AUCTION_ID, ex.domain, ex.secret)
    valid, excluded = validate_book(ex.envelopes, ctx, ex.requests)
    demand = sum(b.size for b in valid) * PRICE // E18
    result = clear(AUCTION_ID, valid, ClearingParams(PRICE, demand * 2 // 5, Mode(mode)))
    allocation = (
        StandardMerkleTree.of(result.leaf_values(), ALLOCATION_LEAF_TYPES)
        if result.winners
        else None
    )
    return result, excluded, _summary(ex, book, result, excluded, allocation)


def run_example(holders: int = 12, mode: str = "pay_as_bid", as_json: bool = False) -> int:
    """Run the example auction and print the result; returns the exit code."""
    if holders < 1:
        print("--holders must be at least 1")
        return 2
    ex = build_example(holders)
    result, excluded, summary = close_example(ex, mode)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _print_human(ex, result, excluded, summary)
    return 0


def _summary(
    ex: ExampleAuction,
    book: StandardMerkleTree,
    result: ClearingResult,
    excluded: list[Exclusion],
    allocation: StandardMerkleTree | None,
) -> dict[str, object]:
    return {
        "auction_id": AUCTION_ID,
        "mode": result.params.mode.value,
        "live_envelopes": len(ex.envelopes),
        "superseded": ex.superseded,
        "valid_bids": len(result.ranked),
        "excluded": {to_checksum_address(e.controller): e.reason.value for e in excluded},
        "winners": result.winners,
        "clearing_rate_bps": result.clearing_rate,
        "liquidity": str(result.params.liquidity),
        "total_shares_filled": str(result.total_shares),
        "total_shares_burnt": str(result.total_burnt),
        "total_payout": str(result.total_payout),
        "leftover_liquidity": str(result.leftover),
        "bid_book_root": to_hex(book.root),
        "allocation_root": to_hex(allocation.root) if allocation else None,
    }


def _print_human(
    ex: ExampleAuction,
    result: ClearingResult,
    excluded: list[Exclusion],
    summary: dict[str, object],
) -> None:
    p = result.params
    print(f"qev example: auction {AUCTION_ID} ({p.mode.value}), {len(ex.envelopes)} sealed bids")
    print(f"  superseded by a replacement: {ex.superseded}; excluded by rule 0: {len(excluded)}")
    for e in excluded:
        print(f"    redemption {e.redemption_id} ({_short(e.controller)}): {e.reason.value}")
    print(f"  liquidity packaged: {_usd(p.liquidity)} USDai at share price {_usd(p.price)}")
    print()
    print(
        f"  {'rank':>4} {'redemption':>10} {'controller':<14} {'bps':>5} "
        f"{'shares':>10} {'filled':>10} {'burnt':>8} {'USDai paid':>12}  status"
    )
    for o in result.outcomes():
        print(
            f"  {o.rank + 1:>4} {o.bid.redemption_id:>10} {_short(o.bid.controller):<14} "
            f"{o.bid.basis_point:>5} {_usd(o.bid.size):>10} {_usd(o.shares_filled):>10} "
            f"{_usd(o.shares_burnt):>8} {_usd(o.payout):>12}  {o.status.value}"
            + (f" ({o.reason.value})" if o.reason else "")
        )
    print()
    print(f"  winners {result.winners}, clearing rate {result.clearing_rate} bps")
    print(f"  shares filled {_usd(result.total_shares)}, burnt {_usd(result.total_burnt)}")
    print(
        f"  USDai paid {_usd(result.total_payout)}, left for the FIFO queue {_usd(result.leftover)}"
    )
    print(f"  bid-book root   {summary['bid_book_root']}")
    print(f"  allocation root {summary['allocation_root']}")


__all__ = ["build_example", "close_example", "run_example"]
