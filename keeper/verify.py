"""``qev verify``: re-run an auction from public data only, as an outside auditor would.

Inputs are the published documents (auction, book, book history, key, result, allocation
tree) from the service or a directory, and, when an RPC is given, the chain (DESIGN 7,
rev 2): the chain id, vault, settlement contract, genesis and receipt signer; the committed
key; the settled roots and totals; the snapshot block, which must be the first block at or
after T (or the last ``abandoned`` record's retry block, each abandoned settle re-simulated
to revert the same way); and every request, nonce, price and free liquidity read again there.
Every SealedBid, CancelBid and receipt signature is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clearing.documents import (
    allocation_tree,
    book_tree,
    entry_receipt,
    envelopes_of,
    requests_of,
    root_of,
)
from clearing.eip712 import Eip712Domain
from clearing.engine import ClearingParams, Mode, clear
from clearing.errors import InvalidTreeError, QevError
from clearing.gcpause import gc_paused
from clearing.hashing import keccak256
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import Envelope, cancel_digest
from clearing.parallel import map_ranges, shared_input, validate_book_parallel
from clearing.receipts import Receipt, ReceiptKind
from clearing.sealing import public_key_of
from clearing.signing import eip191_digest, recover_address
from clearing.validation import AuctionContext
from keeper.chain import Chain, Snapshot
from keeper.errors import SimulationRevertError
from keeper.verify_threshold import (
    check_book_commitment,
    check_threshold,
    fetch_threshold_documents,
    is_threshold,
)

DOCUMENT_FILES = {  # the published documents and their file names in a ``--out`` directory
    "auction": "auction.json",
    "book": "book.json",
    "history": "history.json",
    "key": "key.json",
    "result": "result.json",
    "allocation-tree": "allocation-tree.json",
}
DOCUMENTS = tuple(DOCUMENT_FILES)
BPS = 10_000


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
    """Check the documents against each other, against a re-run, and against the chain.

    A result of the ``registry`` target (``result.target``) is verified by its own rules
    (``keeper.targets.registry_verify``): the bids on the registry and the reorder.
    """
    with gc_paused():  # a 100k book re-opened and re-cleared: millions of objects
        return _verify_documents(docs, chain)


def _verify_documents(docs: dict[str, Any], chain: Chain | None) -> VerifyReport:
    if (docs.get("result") or {}).get("target") == "registry":
        from keeper.targets.registry_verify import verify_registry_documents

        return verify_registry_documents(docs, chain)
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
    _check_signatures(
        report,
        t,
        domain=domain,
        auction=auction,
        book=book,
        history=history,
        envelopes=envelopes,
    )
    requests = requests_of(result["requests"])
    onchain: list[Snapshot] = []  # the chain's snapshot, read while the book is re-opened

    def read_chain() -> None:
        if chain is not None:
            onchain.append(chain.snapshot(t, requests, int(result["snapshot"]["block"])))

    valid, excluded = validate_book_parallel(
        envelopes, AuctionContext(t, domain, secret), requests, meanwhile=read_chain
    )
    report.expect(
        "exclusions (redemption, reason)",
        sorted((int(e["redemption_id"]), e["reason"]) for e in result["excluded"]),
        sorted((e.redemption_id, e.reason.value) for e in excluded),
    )
    report.expect(
        "result.liquidity = free_liquidity * liquidity_bps / 10000",
        result["liquidity"],
        str(int(result["free_liquidity"]) * int(result["liquidity_bps"]) // BPS),
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
    outcomes = list(cleared.outcomes())  # built once: 100k outcome objects at 100k bids
    report.expect(
        "outcomes (redemption ids)",
        sorted(int(r) for r in result["outcomes"]),
        sorted(o.bid.redemption_id for o in outcomes),
    )
    for o in outcomes:
        published = result["outcomes"].get(str(o.bid.redemption_id), {})
        report.expect(
            f"outcome of redemption {o.bid.redemption_id}",
            (published.get("shares_filled"), published.get("payout")),
            (str(o.shares_filled), str(o.payout)),
        )
    rebuilt = allocation_tree(cleared)
    allocation_root = root_of(rebuilt)
    report.expect("allocation root (re-cleared)", result["allocation_root"], allocation_root)
    if docs.get("allocation-tree") is not None:
        _check_tree_dump(report, docs["allocation-tree"], rebuilt, allocation_root)
    if chain is not None:
        check_book_commitment(report, chain, t, book)
        _check_chain(
            report,
            chain,
            t=t,
            secret=secret,
            result=result,
            book_root=book_root,
            allocation_root=allocation_root,
            requests=requests,
            onchain=onchain[0],
            receipt_signer=auction.get("receipt_signer"),
            threshold=is_threshold(docs),
            reclear=lambda block: _reclear(
                chain,
                t,
                domain=domain,
                secret=secret,
                envelopes=envelopes,
                params=params,
                result=result,
                block=block,
            ),
        )
    if is_threshold(docs):
        check_threshold(report, docs, chain)
    return report


def _check_tree_dump(
    report: VerifyReport,
    dump: Any,
    rebuilt: StandardMerkleTree | None,
    allocation_root: str | None,
) -> None:
    """The published allocation tree dump has the re-cleared root (and is a valid tree).

    A dump equal to the rebuilt tree's, node for node, is that tree: no re-hashing (~2 s of
    a 100k verify). Any other dump is loaded and validated in full, then its root compared.
    """
    if rebuilt is not None and dump == rebuilt.dump():
        report.expect("allocation tree dump root", to_hex(rebuilt.root), allocation_root)
        return
    try:
        tree = StandardMerkleTree.load(dump)
    except InvalidTreeError as e:
        report.checks.append("allocation tree dump")
        report.differences.append(f"allocation tree dump: not a valid tree ({e})")
    else:
        report.expect("allocation tree dump root", to_hex(tree.root), allocation_root)


def _reclear(
    chain: Chain,
    t: int,
    *,
    domain: Eip712Domain,
    secret: bytes,
    envelopes: list[Envelope],
    params: ClearingParams,
    result: dict[str, Any],
    block: int,
) -> tuple[Any, str | None]:
    """Clear the book again from the chain's state at ``block`` (an abandoned snapshot)."""
    snap = chain.snapshot(t, (e.redemption_id for e in envelopes), block)
    valid, _ = validate_book_parallel(envelopes, AuctionContext(t, domain, secret), snap.requests)
    cleared = clear(
        t,
        valid,
        ClearingParams(
            snap.price,
            snap.free_liquidity * int(result["liquidity_bps"]) // BPS,
            params.mode,
            params.min_fill,
            snap.admin_fee_bps,
        ),
    )
    return cleared, root_of(allocation_tree(cleared))


def _signature(value: str | None) -> bytes:
    """A hex signature's bytes (empty if malformed: it then recovers to nobody)."""
    try:
        return from_hex(value or "0x")
    except QevError:
        return b""


def _recovers(digest: bytes, signature: str | None) -> bytes | None:
    """The signer of ``digest`` by the hex ``signature``, or None if it does not recover."""
    return _recovers_bytes(digest, _signature(signature))


def _recovers_bytes(digest: bytes, signature: bytes) -> bytes | None:
    """The signer of ``digest`` by ``signature``, or None if it does not recover."""
    try:
        return recover_address(digest, signature)
    except QevError:
        return None


def _book_signers(start: int, end: int) -> list[tuple[bytes | None, bytes | None]]:
    """The SealedBid and receipt signers of book entries ``start..end`` (a worker's chunk
    of ``map_ranges``)."""
    t, domain = shared_input("t"), shared_input("domain")
    entries, envelopes = shared_input("entries"), shared_input("envelopes")
    out = []
    for entry, env in zip(entries[start:end], envelopes[start:end], strict=True):
        receipt = entry_receipt(t, entry)
        sealed_by = _recovers_bytes(env.digest(domain), _signature(entry.get("signature")))
        receipt_by = _recovers_bytes(eip191_digest(receipt.digest()), receipt.service_signature)
        out.append((sealed_by, receipt_by))
    return out


def _check_signatures(
    report: VerifyReport,
    t: int,
    *,
    domain: Eip712Domain,
    auction: dict[str, Any],
    book: dict[str, Any],
    history: dict[str, Any] | None,
    envelopes: list[Envelope],
) -> None:
    """Every SealedBid, CancelBid and receipt signature (DESIGN 4 and 7, rev 2)."""
    signer = auction.get("receipt_signer")
    report.expect(
        "book.receipt_signer = auction.receipt_signer", book.get("receipt_signer"), signer
    )
    pinned = parse_address(signer) if signer else None
    sequences: list[int] = []
    if len(book["bids"]) != len(envelopes):
        raise ValueError("the book's entries and envelopes differ in number")
    # the digests and signers of the book's entries on every CPU
    shared = {"t": t, "domain": domain, "entries": book["bids"], "envelopes": envelopes}
    signers = map_ranges(_book_signers, len(envelopes), shared)
    for entry, env, (sealed_by, receipt_by) in zip(book["bids"], envelopes, signers, strict=True):
        rid = env.redemption_id
        if sealed_by != env.controller:
            report.differences.append(
                f"SealedBid signature of redemption {rid}: not the controller"
            )
        if pinned is None or receipt_by != pinned:
            report.differences.append(
                f"receipt of redemption {rid}: not signed by the receipt signer"
            )
        report.expect(f"receipt kind of redemption {rid}", entry.get("kind"), 0)
        sequences.append(int(entry["sequence"]))
    report.checks.append("every SealedBid signature in the book recovers to its controller")
    if history is not None:
        report.expect(
            "history.receipt_signer = auction.receipt_signer", history.get("receipt_signer"), signer
        )
        for entry in history["envelopes"]:
            env = envelopes_of({"auction_id": t, "bids": [entry]})[0]
            rid, what = env.redemption_id, f"history envelope {entry['ciphertext_hash']}"
            if _recovers(env.digest(domain), entry.get("signature")) != env.controller:
                report.differences.append(f"{what}: SealedBid signature is not the controller's")
            _check_receipt(report, entry_receipt(t, entry), pinned, f"receipt of {what}")
            sequences.append(int(entry["sequence"]))
            cancel = entry.get("cancel")
            if entry.get("status") == "cancelled" and cancel is None:
                report.differences.append(f"{what}: cancelled without a cancel record")
            if cancel is None:
                continue
            digest = cancel_digest(domain, t, rid, env.ciphertext_hash)
            if _recovers(digest, cancel.get("signature")) != env.controller:
                report.differences.append(f"{what}: CancelBid signature is not the controller's")
            receipt = Receipt(
                t,
                rid,
                env.controller,
                env.ciphertext_hash,
                int(cancel["sequence"]),
                int(cancel["received_at"]),
                ReceiptKind(int(cancel["kind"])),
                from_hex(cancel["service_signature"]),
            )
            report.expect(f"{what}: cancel receipt kind", cancel.get("kind"), 1)
            _check_receipt(report, receipt, pinned, f"cancel receipt of {what}")
            sequences.append(int(cancel["sequence"]))
        report.checks.append("every history signature (SealedBid, CancelBid, receipts)")
    report.checks.append("receipt sequences unique")
    if len(set(sequences)) != len(sequences):
        report.differences.append("receipt sequences unique: a sequence is used twice")


def _check_receipt(report: VerifyReport, receipt: Receipt, pinned: bytes | None, what: str) -> None:
    try:
        recovered = receipt.signer_address()
    except QevError:
        recovered = None
    if pinned is None or recovered != pinned:
        report.differences.append(f"{what}: not signed by the receipt signer")


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
    onchain: Snapshot,
    receipt_signer: str | None,
    reclear: Any,
    threshold: bool = False,
) -> None:
    zero = "0x" + "00" * 32
    report.expect("chain id", result.get("chain_id"), chain.chain_id())
    # web3 contract addresses are EIP-55 strings already
    report.expect("vault", result.get("vault"), chain.vault.address)
    onchain_vault = chain._call(chain.settlement.functions.vault())
    report.expect("the settlement contract's vault", chain.vault.address, onchain_vault)
    report.expect("settlement contract", result.get("settlement"), chain.settlement.address)
    report.expect("genesis (the vault's)", result.get("genesis"), chain.genesis())
    report.expect(
        "receipt signer (on-chain receiptSigner())",
        receipt_signer,
        to_checksum_address(chain.receipt_signer()),
    )
    key = chain.key_state(t)
    if not threshold:  # threshold mode: the transcript hash (check_threshold)
        report.expect("on-chain key commitment", to_hex(key.commitment), to_hex(keccak256(secret)))
    report.expect("on-chain public key", to_hex(key.public_key), to_hex(public_key_of(secret)))
    settled = chain.settled(t)
    report.expect(
        "on-chain allocation root", to_hex(settled.allocation_root), allocation_root or zero
    )
    report.expect("on-chain bid-book root", to_hex(settled.bid_book_root), book_root or zero)
    for name in ("total_shares", "total_burnt", "total_payout"):
        report.expect(f"on-chain {name}", str(getattr(settled, name)), result[name])
    snapshot = result["snapshot"]
    block = int(snapshot["block"])
    _check_snapshot_block(report, chain, t, result, reclear)
    _, block_hash, timestamp = chain.block_info(block)
    report.expect("snapshot block hash", snapshot["block_hash"], to_hex(block_hash))
    report.expect("snapshot block timestamp", snapshot["timestamp"], timestamp)
    report.expect("request snapshot at the published block", requests, onchain.requests)
    report.expect("share price at the snapshot block", result["price"], str(onchain.price))
    report.expect(
        "free liquidity at the snapshot block",
        result["free_liquidity"],
        str(onchain.free_liquidity),
    )
    report.expect("admin fee at the snapshot block", result["admin_fee_bps"], onchain.admin_fee_bps)


def _check_snapshot_block(
    report: VerifyReport, chain: Chain, t: int, result: dict[str, Any], reclear: Any
) -> None:
    """The snapshot is the first block >= T, or the retry block of the last abandoned try.

    Each ``abandoned`` record must start where the previous one retried, and its settle,
    re-simulated at its retry block from the keeper's account, must revert.
    """
    first = chain.first_block_at_or_after(t)
    expected = None if first is None else first[0]
    abandoned = result.get("abandoned") or []
    for i, record in enumerate(abandoned):
        report.expect(f"abandoned[{i}].snapshot_block", record["snapshot_block"], expected)
        error = _resimulate_abandoned(chain, t, result, record, reclear)
        report.checks.append(f"abandoned[{i}] re-simulated at block {record['retry_block']}")
        if error is None or error.split("(")[0] != str(record.get("error")).split("(")[0]:
            report.differences.append(
                f"abandoned[{i}]: settling its result at block {record['retry_block']} "
                f"does not revert with {record.get('error')} (got {error})"
            )
        expected = int(record["retry_block"])
    report.expect(
        "snapshot block (first block >= T, or the last retry)",
        result["snapshot"]["block"],
        expected,
    )


def _resimulate_abandoned(
    chain: Chain, t: int, result: dict[str, Any], record: dict[str, Any], reclear: Any
) -> str | None:
    """The revert of the abandoned settle at its retry block, or None if it would succeed.

    Only the abandoned result's root is published: its totals are re-derived by clearing the
    same book at the abandoned snapshot block (``reclear(block)``), whose root must match.
    """
    cleared, root = reclear(int(record["snapshot_block"]))
    if root != record.get("allocation_root"):
        return None
    tx = result.get("settlement_tx")
    sender = chain.transaction_sender(tx) if tx else None
    zero = bytes(32)
    fn = chain.settlement.functions.settleAuction(
        t,
        from_hex(root, 32) if root else zero,
        from_hex(result["bid_book_root"], 32) if result.get("bid_book_root") else zero,
        cleared.total_shares,
        cleared.total_burnt,
        cleared.total_payout,
    )
    try:
        chain.simulate(fn, sender, int(record["retry_block"]))
    except SimulationRevertError as e:
        return e.reason
    return None


def fetch_documents(
    get: Callable[[str], Any], auction_id: int, *, concurrent: int = 1
) -> dict[str, Any]:
    """The documents of ``auction_id`` through ``get(path) -> JSON`` (service or directory);
    ``concurrent`` > 1 fetches them on that many threads (``get`` must be thread-safe)."""
    base = f"/v1/auctions/{auction_id}"
    paths = {
        "auction": base,
        "book": f"{base}/book",
        "history": f"{base}/book/history",
        "key": f"{base}/key",
        "result": f"{base}/result",
        "allocation-tree": f"{base}/allocation-tree",
    }
    if concurrent > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(concurrent) as pool:
            docs = dict(zip(paths, pool.map(get, paths.values()), strict=True))
    else:
        docs = {name: get(path) for name, path in paths.items()}
    fetch_threshold_documents(get, auction_id, docs)  # threshold mode: transcript, shares
    return docs


__all__ = ["DOCUMENTS", "DOCUMENT_FILES", "VerifyReport", "fetch_documents", "verify_documents"]
