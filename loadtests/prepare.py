"""Data the locust users replay: pre-sealed intake flows, and a cleared past auction.

Intake: every holder gets a scripted flow (new bid, and for some a status read, an identical
resubmission, a replacement, a cancel) with every envelope sealed and signed here, so locust
only sends bytes. A few deliberate bad requests carry the problem code they must get.

Claims: a past auction (closed by the service's clock) is bid, validated, cleared and
published into the store exactly as the keeper would (book, result, allocation tree).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from clearing.api.devserver import holder_key
from clearing.calendar import REDEMPTION_WINDOW
from clearing.documents import Provenance, book_document, result_document
from clearing.engine import ClearingParams, clear
from clearing.hexcodec import from_hex, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES, Envelope
from clearing.sealing import derive_auction_secret
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import PutBid
from clearing.validation import AuctionContext, RequestSnapshot, validate_book
from loadtests.harness import E18, cancel_body, domain_of, http_request, seal_many

#: holders past the bidding pool, kept for deliberate bad requests (never bid)
RESERVED = 1000


def holders_needed(pool: int) -> int:
    """The dev service's ``--holders`` for an intake pool of ``pool`` flows."""
    return pool + RESERVED


def _flow_shape(i: int) -> dict[str, bool]:
    return {
        "status": i % 4 == 0,  # 25 %: read the receipt back
        "replace": i % 4 == 1,  # 25 %: a second envelope for the pair
        "identical": i % 25 == 3,  # 4 %: the same envelope again (200)
        "cancel": i % 12 == 5,  # 8 %: signed cancel of the live (replacement) envelope
    }


def _bad_requests(auction: dict[str, Any], seed: str, pool: int, count: int) -> list[list[Any]]:
    """``[name, method, path, body, status, code]`` requests that must get their problem."""
    t = int(auction["auction_id"])
    base = pool  # reserved holders: pool .. pool + RESERVED - 1, never bid
    sealed = seal_many(auction, seed, [(base + k, base + k, 500) for k in range(count)], 1)
    bad: list[list[Any]] = []
    for k, s in enumerate(sealed):
        body = orjson.loads(s.body)
        kind = k % 6
        if kind == 0:  # a signature by someone else: recovers to another address
            other = orjson.loads(sealed[(k + 1) % len(sealed)].body)
            body["signature"] = other["signature"]
            bad.append(
                ["bad: signature", "POST", f"/v1/auctions/{t}/bids", body, 400, "bad_signature"]
            )
        elif kind == 1:  # a correctly signed envelope for a request the signer does not control
            other = seal_many(auction, seed, [(base + k, base + RESERVED + 10**6 + k, 500)], 1)[0]
            bad.append(
                [
                    "bad: not controller",
                    "POST",
                    f"/v1/auctions/{t}/bids",
                    orjson.loads(other.body),
                    403,
                    "not_controller",
                ]
            )
        elif kind == 2:  # after close: the previous auction
            path = f"/v1/auctions/{t - REDEMPTION_WINDOW}/bids"
            bad.append(["bad: closed auction", "POST", path, body, 409, "auction_closed"])
        elif kind == 3:
            body["ciphertext"] = "0xzz"
            bad.append(["bad: malformed", "POST", f"/v1/auctions/{t}/bids", body, 400, "malformed"])
        elif kind == 4:  # properly signed cancel, but there is no live bid to cancel
            signer = Signer(holder_key(seed, base + k))
            cb = orjson.loads(cancel_body(auction, signer, base + k, s.ciphertext_hash))
            path = f"/v1/auctions/{t}/bids/{base + k}"
            bad.append(["bad: cancel unknown", "DELETE", path, cb, 404, "not_found"])
        else:
            body["ciphertext"] = "0x" + "00" * 4096
            bad.append(
                ["bad: too large", "POST", f"/v1/auctions/{t}/bids", body, 413, "payload_too_large"]
            )
    return bad


def prepare_intake(
    auction: dict[str, Any], seed: str, pool: int, out: Path, processes: int = 2
) -> dict[str, Any]:
    """Seal ``pool`` bidder flows for ``auction`` into ``out`` (JSON); returns a summary.

    ``out`` is reused when it already holds this exact pool (same auction key and seed).
    """
    tag = hashlib.sha256(
        orjson.dumps([auction["auction_id"], auction["public_key"], seed, pool, 2])
    ).hexdigest()[:16]
    if out.exists():
        try:
            head = orjson.loads(out.read_bytes())
        except orjson.JSONDecodeError:
            head = {}
        if head.get("tag") == tag:
            return dict(head["summary"])
    t = int(auction["auction_id"])
    shapes = [_flow_shape(i) for i in range(pool)]
    specs = [(i, i, 10 + (i * 7919) % 9990) for i in range(pool)]
    replace_ids = [i for i in range(pool) if shapes[i]["replace"]]
    specs += [(i, i, 10 + (i * 104_729) % 9990) for i in replace_ids]
    sealed = seal_many(auction, seed, specs, processes)
    first, second = sealed[:pool], dict(zip(replace_ids, sealed[pool:], strict=True))
    flows: list[list[list[str]]] = []
    counts = dict.fromkeys(("new", "status", "identical", "replace", "cancel"), 0)
    for i in range(pool):
        shape = shapes[i]
        bid_path, one = f"/v1/auctions/{t}/bids", f"/v1/auctions/{t}/bids/{i}"
        steps = [["new", "POST", bid_path, first[i].body.decode()]]
        if shape["status"]:
            steps.append(["status", "GET", one, ""])
        if shape["identical"]:
            steps.append(["identical", "POST", bid_path, first[i].body.decode()])
        live = first[i]
        if shape["replace"]:
            live = second[i]
            steps.append(["replace", "POST", bid_path, live.body.decode()])
        if shape["cancel"]:
            cb = cancel_body(auction, Signer(holder_key(seed, i)), i, live.ciphertext_hash)
            steps.append(["cancel", "DELETE", one, cb.decode()])
        for s in steps:
            counts[s[0]] += 1
        flows.append(steps)
    bad = _bad_requests(auction, seed, pool, 60)
    summary = {"auction_id": t, "pool": pool, "requests": counts, "bad": len(bad)}
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f"intake-{seed}-*.json"):  # earlier days' auctions
        if str(t) not in stale.name:
            stale.unlink(missing_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")  # atomic: concurrent runs never see half
    tmp.write_bytes(orjson.dumps({"tag": tag, "summary": summary, "flows": flows, "bad": bad}))
    os.replace(tmp, out)
    return summary


def prepare_claims(
    store_url: str,
    service: Any,
    *,
    seed: str,
    count: int,
    out: Path,
    processes: int = 2,
) -> dict[str, Any]:
    """Clear a past auction with ``count`` bids into the store; readers' data into ``out``.

    ``service`` is a running ``DevService`` (its clock decides what is past; its master
    key, in its data dir, is the auction key's source, as the keeper's would be).
    """
    current = service.auction()
    past_id = int(current["auction_id"]) - REDEMPTION_WINDOW
    past = service.auction(past_id)
    domain = domain_of(past)
    sealed = seal_many(
        past, seed, [(i, i, 10 + (i * 7919) % 9990) for i in range(count)], processes
    )
    envelopes = []
    for s in sealed:
        body = orjson.loads(s.body)
        envelopes.append(
            Envelope(
                past_id,
                s.redemption_id,
                from_hex(body["controller"]),
                from_hex(body["ciphertext"]),
                from_hex(body["signature"]),
            )
        )
    store = open_store(store_url)
    try:  # the bids as the service stored them before close (statuses read them back)
        for i in range(0, len(envelopes), 500):
            store.apply(
                [
                    PutBid(
                        past_id,
                        e.redemption_id,
                        e.controller,
                        e.ciphertext,
                        e.ciphertext_hash,
                        e.signature,
                        past_id - 3600,
                    )
                    for e in envelopes[i : i + 500]
                ]
            )
        live = store.live_bids(past_id)
        master = bytes.fromhex((Path(service.data) / "master.key").read_text().strip())
        secret = derive_auction_secret(master, past_id)
        snapshot = {
            e.redemption_id: RequestSnapshot(e.redemption_id, e.controller, 1000 * E18, past_id, 0)
            for e in envelopes
        }
        ctx = AuctionContext(past_id, domain, secret)
        book_envelopes = [
            Envelope(past_id, b.redemption_id, b.controller, b.ciphertext, b.signature)
            for b in live
        ]
        valid, excluded = validate_book(book_envelopes, ctx, snapshot)
        # ~ 84 % of the bids win: each forgoes its discount on 10 shares at price 1
        result = clear(past_id, valid, ClearingParams(E18, count * 7 * E18 // 2))
        book = book_document(
            past_id, book_envelopes, [b.sequence for b in live], [b.received_at for b in live]
        )
        tree = StandardMerkleTree.of(result.leaf_values(), ALLOCATION_LEAF_TYPES)
        doc = result_document(
            result,
            excluded,
            provenance=Provenance(
                chain_id=domain.chain_id,
                vault=bytes(20),
                settlement=domain.verifying_contract,
                genesis=past_id % REDEMPTION_WINDOW,
                snapshot_block=1,
                snapshot_block_hash=bytes(32),
                snapshot_timestamp=past_id,
                free_liquidity=count * 7 * E18 // 2,
                liquidity_bps=10_000,
            ),
            bid_book_root=book["bid_book_root"],
            allocation_root=to_hex(tree.root),
            requests=snapshot,
        )
        dump = orjson.OPT_SORT_KEYS  # as the keeper writes them (keeper/jobs.py)
        store.put_artifact(past_id, "book", orjson.dumps(book, option=dump))
        store.put_artifact(past_id, "allocation_tree", orjson.dumps(tree.dump(), option=dump))
        store.put_artifact(past_id, "result", orjson.dumps(doc, option=dump))
    finally:
        store.close()
    winners = sorted(int(v[1]) for v in tree.values)
    losers = sorted(set(range(count)) - set(winners))
    data = {
        "auction_id": past_id,
        "future_auction_id": int(current["auction_id"]) + REDEMPTION_WINDOW,
        "winners": winners,
        "losers": losers,
        "allocation_root": to_hex(tree.root),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(data))
    return {"auction_id": past_id, "bids": count, "winners": len(winners)}


def raw_requests(flows: list[list[list[str]]]) -> list[bytes]:
    """The intake flows' bid writes (new and replacement POSTs) as raw HTTP requests."""
    return [
        http_request(method, path, body.encode())
        for steps in flows
        for name, method, path, body in steps
        if name in ("new", "replace")
    ]


__all__ = ["RESERVED", "holders_needed", "prepare_claims", "prepare_intake", "raw_requests"]
