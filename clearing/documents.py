"""The published documents (book, result, snapshot inputs) built from core objects; pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearing.engine import ClearingResult
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES, BID_BOOK_LEAF_TYPES, Envelope
from clearing.receipts import Receipt, ReceiptKind
from clearing.signing import Signer
from clearing.validation import Exclusion, RequestSnapshot


def book_tree(envelopes: list[Envelope]) -> StandardMerkleTree | None:
    """The bid-book tree over the live envelopes at close (None for an empty book)."""
    if not envelopes:
        return None
    return StandardMerkleTree.of([e.book_leaf() for e in envelopes], BID_BOOK_LEAF_TYPES)


def allocation_tree(result: ClearingResult) -> StandardMerkleTree | None:
    """The allocation tree over the winners' leaves (None when nobody won)."""
    if not result.winners:
        return None
    return StandardMerkleTree.of(result.leaf_values(), ALLOCATION_LEAF_TYPES)


def root_of(tree: StandardMerkleTree | None) -> str | None:
    """A tree's root as 0x-hex, None for no tree (published as null, bytes32(0) on-chain)."""
    return None if tree is None else to_hex(tree.root)


def book_document(
    auction_id: int, envelopes: list[Envelope], sequences: list[int], received: list[int]
) -> dict[str, Any]:
    """The frozen book: every live envelope at close, its root and OZ dump (DESIGN 4, 6)."""
    tree = book_tree(envelopes)
    return {
        "auction_id": auction_id,
        "bid_book_root": root_of(tree),
        "bids": [
            {
                "redemption_id": str(e.redemption_id),
                "controller": to_checksum_address(e.controller),
                "ciphertext": to_hex(e.ciphertext),
                "ciphertext_hash": to_hex(e.ciphertext_hash),
                "signature": to_hex(e.signature),
                "sequence": seq,
                "received_at": at,
                "kind": int(ReceiptKind.BID),
            }
            for e, seq, at in zip(envelopes, sequences, received, strict=True)
        ],
        "tree": tree.dump() if tree else None,
    }


def entry_receipt(auction_id: int, entry: dict[str, Any]) -> Receipt:
    """The receipt a book or history entry stands for (its ``service_signature`` if any)."""
    signature = entry.get("service_signature")
    return Receipt(
        auction_id,
        int(entry["redemption_id"]),
        parse_address(entry["controller"]),
        from_hex(entry["ciphertext_hash"], 32),
        int(entry["sequence"]),
        int(entry["received_at"]),
        ReceiptKind(int(entry["kind"])),
        from_hex(signature) if signature else b"",
    )


def signed_book(book: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """The published ``/book``: the frozen book with each entry's signed kind-0 receipt.

    Receipt signatures are deterministic (RFC 6979), so each equals the one the bidder got
    at intake for the same stored envelope.
    """
    auction_id = int(book["auction_id"])
    bids = [
        {
            **entry,
            "service_signature": to_hex(
                entry_receipt(auction_id, entry).signed_by(signer).service_signature
            ),
        }
        for entry in book["bids"]
    ]
    return {**book, "receipt_signer": to_checksum_address(signer.address), "bids": bids}


def history_entry(
    envelope: Envelope,
    *,
    sequence: int,
    received_at: int,
    status: str,
    cancel: tuple[int, int, bytes] | None,
    signer: Signer,
) -> dict[str, Any]:
    """One superseded or cancelled envelope with its receipt; ``cancel`` is the cancel's
    (sequence, received_at, CancelBid signature), which gets its own kind-1 receipt."""
    entry: dict[str, Any] = {
        "redemption_id": str(envelope.redemption_id),
        "controller": to_checksum_address(envelope.controller),
        "ciphertext": to_hex(envelope.ciphertext),
        "ciphertext_hash": to_hex(envelope.ciphertext_hash),
        "signature": to_hex(envelope.signature),
        "sequence": sequence,
        "received_at": received_at,
        "kind": int(ReceiptKind.BID),
        "status": status,
        "cancel": None,
    }
    entry["service_signature"] = to_hex(
        entry_receipt(envelope.auction_id, entry).signed_by(signer).service_signature
    )
    if cancel is not None:
        cancel_sequence, cancelled_at, cancel_signature = cancel
        receipt = Receipt(
            envelope.auction_id,
            envelope.redemption_id,
            envelope.controller,
            envelope.ciphertext_hash,
            cancel_sequence,
            cancelled_at,
            ReceiptKind.CANCEL,
        ).signed_by(signer)
        entry["cancel"] = {
            "sequence": cancel_sequence,
            "received_at": cancelled_at,
            "kind": int(ReceiptKind.CANCEL),
            "signature": to_hex(cancel_signature),
            "service_signature": to_hex(receipt.service_signature),
        }
    return entry


def history_document(
    auction_id: int, entries: list[dict[str, Any]], signer: Signer
) -> dict[str, Any]:
    """The published ``/book/history``: every superseded and cancelled envelope."""
    return {
        "auction_id": auction_id,
        "receipt_signer": to_checksum_address(signer.address),
        "envelopes": entries,
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


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a result's inputs come from: the chain, its contracts and the snapshot block."""

    chain_id: int
    vault: bytes
    settlement: bytes
    genesis: int
    snapshot_block: int
    snapshot_block_hash: bytes
    snapshot_timestamp: int
    free_liquidity: int
    liquidity_bps: int


def result_document(
    result: ClearingResult,
    excluded: list[Exclusion],
    *,
    provenance: Provenance,
    bid_book_root: str | None,
    allocation_root: str | None,
    requests: dict[int, RequestSnapshot],
    abandoned: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The clearing summary published at ``/result`` (DESIGN 4, rev 2).

    Enough to re-run the clearing from public data and to tie it to the chain: the chain,
    contracts and genesis, the snapshot block (number, hash, time), every input of the
    rule, every outcome, and the ``abandoned`` attempts. ``settlement_tx`` is filled in once
    the settle transaction is mined.
    """
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
    src = provenance
    return {
        "auction_id": result.auction_id,
        "chain_id": src.chain_id,
        "vault": to_checksum_address(src.vault),
        "settlement": to_checksum_address(src.settlement),
        "genesis": src.genesis,
        "snapshot": {
            "block": src.snapshot_block,
            "block_hash": to_hex(src.snapshot_block_hash),
            "timestamp": src.snapshot_timestamp,
        },
        "mode": p.mode.value,
        "price": str(p.price),
        "free_liquidity": str(src.free_liquidity),
        "liquidity_bps": src.liquidity_bps,
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
        "settlement_tx": None,
        "abandoned": list(abandoned or []),
    }


__all__ = [
    "Provenance",
    "allocation_tree",
    "book_document",
    "book_tree",
    "entry_receipt",
    "envelopes_of",
    "history_document",
    "history_entry",
    "requests_document",
    "requests_of",
    "result_document",
    "root_of",
    "signed_book",
]
