"""``qev verify`` for the ``registry`` target (PROTOCOL 8, step 6; 11.2-11.3).

From the published documents alone: the key, the book and its root, every signature (the same
checks as the merkle target), rule 0 re-run in the registry's EIP-712 domain with the published
request snapshot, and the bids to post re-derived in rule-2 order, signed inner bids included.

With the chain (``chain``: the vault and this repository's settlement contract; the registry
is the result's ``registry``, checked against the vault's own where the vault names one):

- the book commitment, the key commitment and the receipt signer on the settlement contract;
- the snapshot block (the first block >= T), its hash and time, and every request, registry
  nonce, the price, free liquidity and the registry's fee re-read there;
- the bids on the registry are exactly the valid sealed bids in rule-2 order: none added, none
  out of order, and none missing unless the registry skipped it (its request had nothing
  pending by the time the auction was settled);
- the auction is settled on the registry and fully reordered, and every ``reorderRedemptions``
  call did what the draft's rules give from the state before it: shares burnt per bid, the new
  ids of partial bids, the fee on each call's sum (and its mint), and the queue order after the
  last call (the moved ids in bid order, then the rest of the queue in its old order).
"""

from __future__ import annotations

from typing import Any

from clearing.calendar import REDEMPTION_WINDOW
from clearing.documents import book_tree, envelopes_of, requests_of, root_of
from clearing.eip712 import Eip712Domain
from clearing.hashing import keccak256
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.model import Bid
from clearing.parallel import validate_book_parallel
from clearing.sealing import public_key_of
from clearing.validation import AuctionContext
from keeper.chain import Chain
from keeper.targets.registry import (
    Moved,
    PlannedBid,
    Registry,
    ReorderCall,
    bids_document,
    draft_reorder,
    plan_bids,
    vault_registry,
)
from keeper.verify import VerifyReport, _check_signatures

ZERO = "0x" + "00" * 32


def verify_registry_documents(docs: dict[str, Any], chain: Chain | None = None) -> VerifyReport:
    """Check a registry auction's documents against each other, a re-run, and the chain."""
    auction, book, key, result = docs["auction"], docs["book"], docs["key"], docs["result"]
    history = docs.get("history")
    t = int(auction["auction_id"])
    report = VerifyReport(t)
    for name in ("book", "key", "result", "history"):
        if docs.get(name) is not None:
            report.expect(f"{name}.auction_id", int(docs[name]["auction_id"]), t)
    report.checks.append("book history published")
    if history is None:
        report.differences.append("book history published: missing")
    report.expect("no allocation tree (registry target)", docs.get("allocation-tree"), None)

    secret = from_hex(key["private_key"], 32)
    report.expect(
        "public key = X25519(revealed key)", auction["public_key"], to_hex(public_key_of(secret))
    )
    envelopes = envelopes_of(book)
    book_root = root_of(book_tree(envelopes))
    report.expect("book root (rebuilt from envelopes)", book["bid_book_root"], book_root)
    report.expect("result.bid_book_root", result["bid_book_root"], book_root)

    domain = Eip712Domain(
        auction["eip712"]["name"],
        auction["eip712"]["version"],
        int(auction["chain_id"]),
        parse_address(auction["settlement"]),
    )
    for name, value in (("chain_id", domain.chain_id), ("settlement", auction["settlement"])):
        report.expect(f"result.{name} = auction.{name}", result.get(name), value)
    report.expect(
        "result.registry = the EIP-712 verifying contract",
        result.get("registry"),
        auction["settlement"],
    )
    _check_signatures(
        report, t, domain=domain, auction=auction, book=book, history=history, envelopes=envelopes
    )

    requests = requests_of(result["requests"])
    ctx = AuctionContext(t, domain, secret)
    valid, excluded = validate_book_parallel(envelopes, ctx, requests)
    report.expect(
        "exclusions (redemption, reason)",
        sorted((int(e["redemption_id"]), e["reason"]) for e in result["excluded"]),
        sorted((e.redemption_id, e.reason.value) for e in excluded),
    )
    planned = plan_bids(valid, envelopes, ctx)
    report.expect(
        "bids to post (rule 0, rule 2, signed inner bids)", result["bids"], bids_document(planned)
    )
    if chain is not None:
        _check_chain(
            report, chain, t=t, secret=secret, docs=docs, planned=planned, requests=requests
        )
    return report


def _check_chain(
    report: VerifyReport,
    chain: Chain,
    *,
    t: int,
    secret: bytes,
    docs: dict[str, Any],
    planned: list[PlannedBid],
    requests: dict[int, Any],
) -> None:
    auction, book, result = docs["auction"], docs["book"], docs["result"]
    report.expect("chain id", result.get("chain_id"), chain.chain_id())
    report.expect("vault", result.get("vault"), chain.vault.address)
    report.expect(
        "settlement contract (key, book, receipt signer)",
        result.get("key_contract"),
        chain.settlement.address,
    )
    report.expect(
        "the settlement contract's vault",
        chain.vault.address,
        chain.read(chain.settlement.functions.vault()),
    )
    if chain.has_view("genesisTimestamp") or chain.genesis_hint is not None:
        report.expect("genesis (the vault's)", result.get("genesis"), chain.genesis())
    else:  # the draft's vault has no genesisTimestamp(): genesis must be one of its boundaries
        boundary = int(chain.read(chain.vault.functions.redemptionTimestamp()))
        report.expect(
            "genesis is a window boundary of the vault (redemptionTimestamp())",
            (boundary - int(result["genesis"])) % REDEMPTION_WINDOW,
            0,
        )
    report.expect(
        "receipt signer (on-chain receiptSigner())",
        auction.get("receipt_signer"),
        to_checksum_address(chain.receipt_signer()),
    )
    state = chain.key_state(t)
    report.expect("on-chain key commitment", to_hex(state.commitment), to_hex(keccak256(secret)))
    report.expect("on-chain public key", to_hex(state.public_key), to_hex(public_key_of(secret)))
    root = book["bid_book_root"] or ZERO
    if any(item.get("name") == "bookCommitment" for item in chain.settlement.abi):
        onchain_root, count, at = chain.read(chain.settlement.functions.bookCommitment(t))
        report.expect("book committed on-chain (commitBook)", bool(int(at)), True)
        report.expect(
            "on-chain committed book (root, count)",
            (to_hex(bytes(onchain_root)), int(count)),
            (root, len(book["bids"])),
        )
    settled = chain.settled(t)
    report.expect(
        "settlement contract: book root, no allocation",
        (
            to_hex(settled.bid_book_root),
            to_hex(settled.allocation_root),
            settled.total_shares,
            settled.total_payout,
        ),
        (root, ZERO, 0, 0),
    )

    registry = Registry(chain, result["registry"])
    named = vault_registry(chain)
    if named is not None:
        report.expect("the vault's registry", registry.address, named)

    # the snapshot: the first block >= T, and what rule 0 read there
    first = chain.first_block_at_or_after(t)
    snapshot = result["snapshot"]
    block = int(snapshot["block"])
    report.expect("snapshot block (first block >= T)", block, None if first is None else first[0])
    _, block_hash, timestamp = chain.block_info(block)
    report.expect("snapshot block hash", snapshot["block_hash"], to_hex(block_hash))
    report.expect("snapshot block timestamp", snapshot["timestamp"], timestamp)
    snap = registry.snapshot(t, requests, block)
    report.expect(
        "request snapshot (registry nonces) at the published block", requests, snap.requests
    )
    report.expect("share price at the snapshot block", result["price"], str(snap.price))
    report.expect(
        "free liquidity at the snapshot block", result["free_liquidity"], str(snap.free_liquidity)
    )
    report.expect("registry admin fee", result["admin_fee_bps"], snap.admin_fee_bps)

    posted = registry.posted(t)
    settlement = registry.settlement_tx(t, block)
    _check_posted(report, chain, planned=planned, posted=posted, settlement=settlement)
    if not posted:
        report.expect("no bid on the registry: no reorder", registry.auction(t).processed, 0)
        return
    state_now = registry.auction(t)
    report.expect("reordered on-chain (processed = bids)", state_now.processed, state_now.bid_count)
    if settlement is None:
        return
    calls = registry.reorder_calls(t, settlement[1])
    _check_reorder(report, chain, registry, posted, calls)
    published = result.get("reorder") or {}
    report.expect(
        "published reorder = the chain's",
        [
            (m["redemption_id"], m["queue_id"], m["shares_burnt"])
            for m in published.get("moved", [])
        ],
        [(str(m.redemption_id), str(m.queue_id), str(m.burnt)) for c in calls for m in c.moved],
    )
    report.expect(
        "published fee = the chain's", published.get("fee_shares"), str(sum(c.fee for c in calls))
    )


def _check_posted(
    report: VerifyReport,
    chain: Chain,
    *,
    planned: list[PlannedBid],
    posted: list[Bid],
    settlement: tuple[str, int] | None,
) -> None:
    """The registry's bids are the plan's, in order; a planned bid may only be missing when the
    registry skipped it (nothing pending by the settlement)."""
    want = [p.signed.bid for p in planned]
    report.checks.append("bids on the registry = valid sealed bids in rule-2 order")
    at = {b.redemption_id: i for i, b in enumerate(want)}
    last = -1
    for k, b in enumerate(posted, start=1):
        i = at.get(b.redemption_id)
        if i is None or want[i] != b:
            report.differences.append(
                f"bid {k} on the registry (redemption {b.redemption_id}) is not a valid sealed bid"
            )
        elif i <= last:
            report.differences.append(
                f"bid {k} on the registry (redemption {b.redemption_id}) is out of rule-2 order"
            )
        else:
            last = i
    held = {b.redemption_id for b in posted}
    settled_block = settlement[1] if settlement is not None else "latest"
    requests = chain.requests(
        (b.redemption_id for b in want if b.redemption_id not in held), settled_block
    )
    for b in want:
        if b.redemption_id in held:
            continue
        if requests[b.redemption_id].pending_shares != 0:
            report.differences.append(
                f"valid bid for redemption {b.redemption_id} is not on the registry (its request "
                "had shares pending)"
            )
        else:
            report.checks.append(
                f"bid for redemption {b.redemption_id} skipped by the registry (nothing pending)"
            )
    if posted:
        report.expect(
            "auction settled on the registry (AuctionSettled)", settlement is not None, True
        )


def _check_reorder(
    report: VerifyReport,
    chain: Chain,
    registry: Registry,
    posted: list[Bid],
    calls: list[ReorderCall],
) -> None:
    """Each reorder call against the draft's rules from the state before it, then the queue."""
    report.expect(
        "reorder calls cover every posted bid once", sum(c.count for c in calls), len(posted)
    )
    if not calls:
        return
    before_block = calls[0].block - 1
    requests_before = chain.requests((b.redemption_id for b in posted), before_block)
    pending = {b.redemption_id: requests_before[b.redemption_id].pending_shares for b in posted}
    fee_rate = registry.admin_fee_rate(before_block)
    recipient = registry.admin_fee_recipient(before_block)
    moved_all: list[Moved] = []
    at = 0
    for n, call in enumerate(calls, start=1):
        index = chain.queue_info(call.block - 1).index
        (moved,), (fee,) = draft_reorder(
            posted[at : at + call.count], pending, index, fee_rate, [call.count]
        )
        report.expect(
            f"reorder call {n}: bids moved (request, id, pending, burnt, rest)",
            list(call.moved),
            moved,
        )
        report.expect(f"reorder call {n}: fee on the call's sum", call.fee, fee)
        report.expect(
            f"reorder call {n}: net burnt", call.net_burnt, sum(m.burnt for m in moved) - fee
        )
        report.expect(
            f"reorder call {n}: fee minted to the fee recipient",
            _minted(chain, call.tx_hash, recipient),
            fee,
        )
        for m in moved:
            pending[m.redemption_id] = m.remaining if m.remaining is not None else m.pending_shares
        moved_all.extend(moved)
        at += call.count
    front = [m.queue_id for m in moved_all]
    whole = {m.redemption_id for m in moved_all if m.remaining is None}
    before = [r.redemption_id for r in chain.queue(before_block)]
    after = [r.redemption_id for r in chain.queue(calls[-1].block)]
    report.expect(
        "queue after the reorder: the moved ids first, in bid order", after[: len(front)], front
    )
    rest = [rid for rid in before if rid not in whole]
    report.expect(
        "queue after the reorder: then the rest in its old order",
        after[len(front) : len(front) + len(rest)],
        rest,
    )
    index_before = chain.queue_info(before_block).index
    late = [rid for rid in after[len(front) + len(rest) :] if rid <= index_before or rid in front]
    report.expect("queue after the reorder: nothing else but newer requests", late, [])


def _minted(chain: Chain, tx: str, recipient: str) -> int:
    """sUSDai minted to ``recipient`` in ``tx`` (ERC-20 Transfer from the zero address)."""
    from web3.logs import DISCARD

    receipt = chain.w3.eth.get_transaction_receipt(tx)
    return sum(
        int(e["args"]["value"])
        for e in chain.vault.events.Transfer().process_receipt(receipt, errors=DISCARD)
        if int(e["args"]["from"], 16) == 0 and e["args"]["to"] == recipient
    )


__all__ = ["verify_registry_documents"]
