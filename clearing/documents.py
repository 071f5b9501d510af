"""The published documents (book, result, snapshot inputs) built from core objects; pure."""

from __future__ import annotations

from typing import Any

from clearing.engine import ClearingResult
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import BID_BOOK_LEAF_TYPES, Envelope
from clearing.validation import Exclusion, RequestSnapshot


def book_document(
    auction_id: int, envelopes: list[Envelope], sequences: list[int], received: list[int]
) -> dict[str, Any]:
    """The frozen book: every live envelope at close, its root and OZ dump (DESIGN 4, 6)."""
    tree = (
        StandardMerkleTree.of([e.book_leaf() for e in envelopes], BID_BOOK_LEAF_TYPES)
        if envelopes
        else None
    )
    return {
        "auction_id": auction_id,
        "bid_book_root": to_hex(tree.root) if tree else None,
        "bids": [
            {
                "redemption_id": str(e.redemption_id),
                "controller": to_checksum_address(e.controller),
                "ciphertext": to_hex(e.ciphertext),
                "ciphertext_hash": to_hex(e.ciphertext_hash),
                "signature": to_hex(e.signature),
                "sequence": seq,
                "received_at": at,
            }
            for e, seq, at in zip(envelopes, sequences, received, strict=True)
        ],
        "tree": tree.dump() if tree else None,
    }


def envelopes_of(book: dict[str, Any]) -> list[Envelope]:
    """The envelopes of a book document."""
    auction_id = int(book["auction_id"])
    return [
        Envelope(
            auction_id,
            int(b["redemption_id"]),
            parse_address(b["controller"]),
            from_hex(b["ciphertext"]),
            from_hex(b["signature"]),
        )
        for b in book["bids"]
    ]


def requests_document(requests: dict[int, RequestSnapshot]) -> dict[str, Any]:
    """Snapshot inputs of rule 0, published so anyone can re-run it (and check the chain)."""
    return {
        str(rid): {
            "controller": to_checksum_address(r.controller),
            "pending_shares": str(r.pending_shares),
            "redemption_timestamp": r.redemption_timestamp,
            "nonce": str(r.nonce),
        }
        for rid, r in sorted(requests.items())
    }


def requests_of(doc: dict[str, Any]) -> dict[int, RequestSnapshot]:
    """Parse ``requests_document`` back."""
    return {
        int(rid): RequestSnapshot(
            int(rid),
            parse_address(r["controller"]),
            int(r["pending_shares"]),
            int(r["redemption_timestamp"]),
            int(r["nonce"]),
        )
        for rid, r in doc.items()
    }


def result_document(
    result: ClearingResult,
    excluded: list[Exclusion],
    *,
    snapshot_block: int,
    snapshot_timestamp: int,
    bid_book_root: str | None,
    allocation_root: str | None,
    requests: dict[int, RequestSnapshot],
) -> dict[str, Any]:
    """The clearing summary published at ``/result``."""
    p = result.params
    outcomes = {}
    for o in result.outcomes():
        outcomes[str(o.bid.redemption_id)] = {
            "rank": o.rank,
            "status": o.status.value,
            "basis_point": o.bid.basis_point,
            "size": str(o.bid.size),
            "rate": o.rate,
            "shares_filled": str(o.shares_filled),
            "shares_burnt": str(o.shares_burnt),
            "payout": str(o.payout),
            "reason": o.reason.value if o.reason else None,
        }
    return {
        "auction_id": result.auction_id,
        "mode": p.mode.value,
        "snapshot_block": snapshot_block,
        "snapshot_timestamp": snapshot_timestamp,
        "price": str(p.price),
        "liquidity": str(p.liquidity),
        "min_fill": str(p.min_fill),
        "admin_fee_bps": p.admin_fee_bps,
        "bid_book_root": bid_book_root,
        "allocation_root": allocation_root,
        "winners": result.winners,
        "clearing_rate": result.clearing_rate,
        "total_shares": str(result.total_shares),
        "total_burnt": str(result.total_burnt),
        "total_payout": str(result.total_payout),
        "admin_fee_shares": str(result.admin_fee_shares),
        "leftover": str(result.leftover),
        "excluded": [
            {
                "redemption_id": str(e.redemption_id),
                "controller": to_checksum_address(e.controller),
                "ciphertext_hash": to_hex(e.ciphertext_hash),
                "reason": e.reason.value,
                "detail": e.detail,
            }
            for e in excluded
        ],
        "outcomes": outcomes,
        "requests": requests_document(requests),
        "settlement": None,
    }


__all__ = [
    "book_document",
    "envelopes_of",
    "requests_document",
    "requests_of",
    "result_document",
]
