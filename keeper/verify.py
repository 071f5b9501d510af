"""``qev verify``: re-run an auction from public data only, as an outside auditor would.

Inputs are the published documents (auction, book, key, result, allocation tree) from the
service or a directory, and, when an RPC is given, the chain: the committed key, the
settled roots and totals, and the request snapshot at the published block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clearing.documents import envelopes_of, requests_of
from clearing.eip712 import Eip712Domain
from clearing.engine import ClearingParams, Mode, clear
from clearing.hashing import keccak256
from clearing.hexcodec import from_hex, parse_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES, BID_BOOK_LEAF_TYPES
from clearing.sealing import public_key_of
from clearing.validation import AuctionContext, validate_book
from keeper.chain import Chain
from qev.errors import InvalidTreeError

DOCUMENTS = ("auction", "book", "key", "result", "allocation-tree")


@dataclass
class VerifyReport:
    """Every check made, and every difference found."""

    auction_id: int
    checks: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No difference found."""
        return not self.differences

    def expect(self, what: str, published: Any, recomputed: Any) -> None:
        """Record one comparison."""
        self.checks.append(what)
        if published != recomputed:
            self.differences.append(f"{what}: published {published!r}, recomputed {recomputed!r}")


def verify_documents(docs: dict[str, Any], chain: Chain | None = None) -> VerifyReport:
    """Check the documents against each other, against a re-run, and against the chain."""
    auction, book, key, result = docs["auction"], docs["book"], docs["key"], docs["result"]
    t = int(auction["auction_id"])
    report = VerifyReport(t)
    for name in ("book", "key", "result"):
        report.expect(f"{name}.auction_id", int(docs[name]["auction_id"]), t)

    secret = from_hex(key["private_key"], 32)
    report.expect(
        "public key = X25519(revealed key)", auction["public_key"], to_hex(public_key_of(secret))
    )

    envelopes = envelopes_of(book)
    book_root = (
        to_hex(StandardMerkleTree.of([e.book_leaf() for e in envelopes], BID_BOOK_LEAF_TYPES).root)
        if envelopes
        else None
    )
    report.expect("book root (rebuilt from envelopes)", book["bid_book_root"], book_root)
    report.expect("result.bid_book_root", result["bid_book_root"], book_root)

    domain = Eip712Domain(
        auction["eip712"]["name"],
        auction["eip712"]["version"],
        int(auction["chain_id"]),
        parse_address(auction["settlement"]),
    )
    requests = requests_of(result["requests"])
    valid, excluded = validate_book(envelopes, AuctionContext(t, domain, secret), requests)
    report.expect(
        "exclusions (redemption, reason)",
        sorted((int(e["redemption_id"]), e["reason"]) for e in result["excluded"]),
        sorted((e.redemption_id, e.reason.value) for e in excluded),
    )
    params = ClearingParams(
        int(result["price"]),
        int(result["liquidity"]),
        Mode(result["mode"]),
        int(result["min_fill"]),
        int(result["admin_fee_bps"]),
    )
    cleared = clear(t, valid, params)
    for name, value in (
        ("total_shares", cleared.total_shares),
        ("total_burnt", cleared.total_burnt),
        ("total_payout", cleared.total_payout),
        ("admin_fee_shares", cleared.admin_fee_shares),
        ("leftover", cleared.leftover),
    ):
        report.expect(f"result.{name}", result[name], str(value))
    report.expect("result.winners", result["winners"], cleared.winners)
    report.expect(
        "outcomes (redemption ids)",
        sorted(int(r) for r in result["outcomes"]),
        sorted(o.bid.redemption_id for o in cleared.outcomes()),
    )
    for o in cleared.outcomes():
        published = result["outcomes"].get(str(o.bid.redemption_id), {})
        report.expect(
            f"outcome of redemption {o.bid.redemption_id}",
            (published.get("shares_filled"), published.get("payout")),
            (str(o.shares_filled), str(o.payout)),
        )
    allocation_root = (
        to_hex(StandardMerkleTree.of(cleared.leaf_values(), ALLOCATION_LEAF_TYPES).root)
        if cleared.winners
        else None
    )
    report.expect("allocation root (re-cleared)", result["allocation_root"], allocation_root)
    if docs.get("allocation-tree") is not None:
        try:
            tree = StandardMerkleTree.load(docs["allocation-tree"])
        except InvalidTreeError as e:
            report.checks.append("allocation tree dump")
            report.differences.append(f"allocation tree dump: not a valid tree ({e})")
        else:
            report.expect("allocation tree dump root", to_hex(tree.root), allocation_root)
    if chain is not None:
        _check_chain(
            report,
            chain,
            t=t,
            secret=secret,
            result=result,
            book_root=book_root,
            allocation_root=allocation_root,
            requests=requests,
        )
    return report


def _check_chain(
    report: VerifyReport,
    chain: Chain,
    *,
    t: int,
    secret: bytes,
    result: dict[str, Any],
    book_root: str | None,
    allocation_root: str | None,
    requests: dict[int, Any],
) -> None:
    zero = "0x" + "00" * 32
    key = chain.key_state(t)
    report.expect("on-chain key commitment", to_hex(key.commitment), to_hex(keccak256(secret)))
    report.expect("on-chain public key", to_hex(key.public_key), to_hex(public_key_of(secret)))
    settled = chain.settled(t)
    report.expect(
        "on-chain allocation root", to_hex(settled.allocation_root), allocation_root or zero
    )
    report.expect("on-chain bid-book root", to_hex(settled.bid_book_root), book_root or zero)
    for name in ("total_shares", "total_burnt", "total_payout"):
        report.expect(f"on-chain {name}", str(getattr(settled, name)), result[name])
    block = int(result["snapshot_block"])
    snapshot = chain.snapshot_requests(t, sorted(requests), block)
    report.expect("request snapshot at the published block", requests, snapshot)
    report.expect(
        "share price at the snapshot block", result["price"], str(chain.share_price(block))
    )
    report.checks.append("liquidity <= free liquidity at the snapshot block")
    if int(result["liquidity"]) > chain.free_liquidity(block):
        report.differences.append("liquidity exceeds the vault's free liquidity at the snapshot")


def fetch_documents(get: Callable[[str], Any], auction_id: int) -> dict[str, Any]:
    """The documents of ``auction_id`` through ``get(path) -> JSON`` (service or directory)."""
    base = f"/v1/auctions/{auction_id}"
    return {
        "auction": get(base),
        "book": get(f"{base}/book"),
        "key": get(f"{base}/key"),
        "result": get(f"{base}/result"),
        "allocation-tree": get(f"{base}/allocation-tree"),
    }


__all__ = ["DOCUMENTS", "VerifyReport", "fetch_documents", "verify_documents"]
