"""Every route and error code over real HTTP (uvicorn), on both stores, through the SDK."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from clearing.engine import ClearingParams, clear
from clearing.hexcodec import from_hex, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES, BID_BOOK_LEAF_TYPES, Bid, Envelope
from clearing.sealing import derive_auction_secret
from clearing.validation import AuctionContext, RequestSnapshot, validate_book
from qev.sdk import BidderClient, ServiceProblemError
from tests.integration.conftest import (
    AUCTION,
    E18,
    GENESIS,
    Service,
    envelope_body,
    problem_code,
)

WINDOW = 30 * 86_400


def _client(service: Service, i: int = 0) -> BidderClient:
    return BidderClient(service.url, service.holders[i], service_address=service.service_address)


def _problem(call) -> ServiceProblemError:
    with pytest.raises(ServiceProblemError) as info:
        call()
    body = info.value.body
    assert body["status"] == info.value.status and body["code"] == info.value.code
    assert body["type"].endswith(body["code"]) and body["detail"]
    return info.value


def test_auction_documents(service: Service):
    c = _client(service)
    current = c.auction()
    assert current["auction_id"] == AUCTION
    assert current["opens_at"] == AUCTION - WINDOW and current["closes_at"] == AUCTION
    assert current["status"] == "open"
    assert len(from_hex(current["public_key"], 32)) == 32
    assert current["settlement"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert current["eip712"] == {"name": "QEVSettlement", "version": "1"}
    previous = c.auction(AUCTION - WINDOW)
    assert previous["status"] == "closed"
    assert _problem(lambda: c.auction(AUCTION + 1)).code == "unknown_auction"
    assert _problem(lambda: c.auction(AUCTION + WINDOW)).code == "unknown_auction"
    assert _problem(lambda: c.auction(GENESIS)).code == "unknown_auction"


def test_bid_replace_identical_cancel_with_verified_receipts(service: Service):
    c = _client(service)
    first = c.bid(100, 5 * E18, 250)
    assert first.created and first.receipt.sequence == 1
    assert first.receipt.signer_address() == service.service_address
    assert first.receipt.received_at == service.clock.now
    # identical resubmission: 200, same receipt, no new sequence
    again = c.submit_envelope(first.envelope)
    assert not again.created and again.receipt == first.receipt
    # replacement: new sequence, the old one kept as superseded
    second = c.bid(100, 5 * E18, 400)
    assert second.created and second.receipt.sequence == 2
    status = c.status(AUCTION, 100)
    assert status["status"] == "live"
    assert status["receipt"]["ciphertext_hash"] == to_hex(second.envelope.ciphertext_hash)
    # another holder cannot cancel it, even with a valid signature of their own
    stranger = _client(service, 1)
    refused = _problem(lambda: stranger.cancel(AUCTION, 100, second.envelope.ciphertext_hash))
    assert (refused.status, refused.code) == (404, "not_found")
    assert c.status(AUCTION, 100)["status"] == "live"
    # cancelling the superseded one is refused; cancelling the live one works
    stale = _problem(lambda: c.cancel(AUCTION, 100, first.envelope.ciphertext_hash))
    assert stale.code == "stale_cancel" and stale.status == 409
    cancelled = c.cancel(AUCTION, 100, second.envelope.ciphertext_hash)
    assert cancelled.sequence == 3 and cancelled.kind == 1  # rev 2: its own sequence
    assert cancelled.ciphertext_hash == second.envelope.ciphertext_hash
    assert c.status(AUCTION, 100)["status"] == "cancelled"
    assert _problem(lambda: c.cancel(AUCTION, 100, second.envelope.ciphertext_hash)).code == (
        "not_found"
    )
    # a fresh bid after the cancel takes the next sequence
    assert c.bid(100, E18, 30).receipt.sequence == 4


def _post(service: Service, auction_id: int, body: dict, **kw) -> httpx.Response:
    return httpx.post(f"{service.url}/v1/auctions/{auction_id}/bids", json=body, **kw)


def test_refusals_have_stable_problem_codes(service: Service):
    c = _client(service)
    auction = c.auction()
    env = c.seal(auction, Bid(AUCTION, 100, E18, 100, 0))
    good = envelope_body(env)
    # malformed: bad hex, bad uint, missing field, extra field, not JSON
    for bad in (
        {**good, "ciphertext": "0xzz"},
        {**good, "redemption_id": "01"},
        {**good, "redemption_id": "-1"},
        {k: v for k, v in good.items() if k != "signature"},
        {**good, "extra": 1},
        {**good, "ciphertext": to_hex(env.ciphertext[:100])},
    ):
        r = _post(service, AUCTION, bad)
        assert (r.status_code, problem_code(r)) == (400, "malformed"), bad
    r = httpx.post(f"{service.url}/v1/auctions/{AUCTION}/bids", content=b"{not json")
    assert (r.status_code, problem_code(r)) == (400, "malformed")
    # bad signature: someone else's signature, and a high-s twin
    other = c.seal(auction, Bid(AUCTION, 101, E18, 100, 0))
    r = _post(service, AUCTION, {**good, "signature": to_hex(other.signature)})
    assert (r.status_code, problem_code(r)) == (400, "bad_signature")
    sig = env.signature
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high = (
        sig[:32]
        + (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
        + bytes([55 - sig[64]])
    )
    r = _post(service, AUCTION, {**good, "signature": to_hex(high)})
    assert (r.status_code, problem_code(r)) == (400, "bad_signature")
    # not the controller: holder 0 bidding on holder 1's request
    r = _post(service, AUCTION, envelope_body(c.seal(auction, Bid(AUCTION, 101, E18, 100, 0))))
    assert (r.status_code, problem_code(r)) == (403, "not_controller")
    # replay into another auction: the SealedBid signature names the auction
    r = _post(service, AUCTION - WINDOW, good)
    assert (r.status_code, problem_code(r)) == (409, "auction_closed")
    service.clock.now = AUCTION - WINDOW - 1  # make the previous auction open...
    r = _post(service, AUCTION - WINDOW, good)
    assert (r.status_code, problem_code(r)) == (400, "bad_signature")  # ...the replay still fails
    service.clock.now = AUCTION - 3600
    # unknown auction and oversized body
    r = _post(service, AUCTION + 7, good)
    assert (r.status_code, problem_code(r)) == (404, "unknown_auction")
    r = _post(service, AUCTION, {**good, "ciphertext": "0x" + "ab" * 5000})
    assert (r.status_code, problem_code(r)) == (413, "payload_too_large")
    # unknown route and method
    r = httpx.get(f"{service.url}/v1/nothing")
    assert (r.status_code, problem_code(r)) == (404, "not_found")
    r = httpx.put(f"{service.url}/v1/auctions/{AUCTION}/bids", json=good)
    assert (r.status_code, problem_code(r)) == (405, "method_not_allowed")
    assert "POST" in r.headers["allow"]
    # nothing of the refused requests was stored
    assert _problem(lambda: c.status(AUCTION, 100)).code == "not_found"


def test_window_edges(service: Service):
    c = _client(service)
    auction = c.auction()
    service.clock.now = AUCTION - WINDOW  # opens_at is inclusive
    assert c.submit_envelope(c.seal(auction, Bid(AUCTION, 100, E18, 100, 0))).created
    service.clock.now = AUCTION - 1
    assert c.submit_envelope(c.seal(auction, Bid(AUCTION, 100, E18, 200, 0))).created
    service.clock.now = AUCTION  # closes_at is exclusive
    late = c.seal(auction, Bid(AUCTION, 100, E18, 300, 0))
    assert _problem(lambda: c.submit_envelope(late)).code == "auction_closed"
    r = httpx.get(f"{service.url}/v1/auctions/{AUCTION}")
    assert r.json()["status"] == "closed"


def test_rate_limits_answer_429_with_retry_after(service: Service, monkeypatch):
    from clearing.api.ratelimit import TokenBuckets

    buckets = TokenBuckets(1.0, 2, lambda: 0.0)
    buckets.take("k", "controller")
    buckets.take("k", "controller")
    with pytest.raises(Exception) as info:
        buckets.take("k", "controller")
    assert info.value.code == "rate_limited" and info.value.retry_after == 1


def test_publication_after_close(service: Service):
    clients = [_client(service, i) for i in range(4)]
    auction = clients[0].auction()
    for i, c in enumerate(clients):
        c.bid(100 + i, (i + 1) * 10 * E18, 100 + 500 * i)
    # before close: book, result, allocations and key are not published
    for path, code in (
        ("book", "auction_not_closed"),
        ("result", "auction_not_closed"),
        ("allocations/100", "auction_not_closed"),
        ("key", "auction_not_closed"),
    ):
        r = httpx.get(f"{service.url}/v1/auctions/{AUCTION}/{path}")
        assert (r.status_code, problem_code(r)) == (409, code), path
    service.clock.now = AUCTION
    book = httpx.get(f"{service.url}/v1/auctions/{AUCTION}/book").json()
    assert [b["redemption_id"] for b in book["bids"]] == ["100", "101", "102", "103"]
    envelopes = [
        Envelope(
            AUCTION,
            int(b["redemption_id"]),
            from_hex(b["controller"]),
            from_hex(b["ciphertext"]),
            from_hex(b["signature"]),
        )
        for b in book["bids"]
    ]
    tree = StandardMerkleTree.of([e.book_leaf() for e in envelopes], BID_BOOK_LEAF_TYPES)
    assert book["bid_book_root"] == to_hex(tree.root)
    assert StandardMerkleTree.load(book["tree"]).root == tree.root
    for path, code in (
        ("result", "not_cleared"),
        ("allocations/100", "not_cleared"),
        ("key", "key_not_revealed"),
    ):
        r = httpx.get(f"{service.url}/v1/auctions/{AUCTION}/{path}")
        assert (r.status_code, problem_code(r)) == (409, code), path
    # the keeper's part (issue 6) done by hand: open with the key, clear, publish artifacts
    secret = derive_auction_secret(service.master_secret, AUCTION)
    ctx = AuctionContext(AUCTION, BidderClient.domain_of(auction), secret)
    snapshot = {
        100 + i: RequestSnapshot(100 + i, h.address, (i + 1) * 10 * E18, AUCTION - 86_400, 0)
        for i, h in enumerate(service.holders)
    }
    valid, excluded = validate_book(envelopes, ctx, snapshot)
    assert len(valid) == 4 and not excluded
    result = clear(AUCTION, valid, ClearingParams(E18, 45 * E18))
    # 40 shares at 16% pay 33.6; 30 at 11% would pay 26.7 > 11.4 left: partial; the rest unfilled
    assert result.winners == 2 and result.filled[1] < 30 * E18
    allocation = StandardMerkleTree.of(result.leaf_values(), ALLOCATION_LEAF_TYPES)
    outcomes = {
        str(o.bid.redemption_id): {"status": o.status.value, "payout": str(o.payout)}
        for o in result.outcomes()
    }
    published = {"allocation_root": to_hex(allocation.root), "outcomes": outcomes}
    store = service.store
    store.put_artifact(AUCTION, "result", orjson.dumps(published))
    store.put_artifact(AUCTION, "allocation_tree", orjson.dumps(allocation.dump()))
    assert httpx.get(f"{service.url}/v1/auctions/{AUCTION}/result").json() == published
    assert clients[0].auction(AUCTION)["status"] == "cleared"
    winner = result.ranked[0].redemption_id
    proof = clients[winner - 100].allocation(AUCTION, winner)  # the SDK verifies the proof
    assert proof["allocation_root"] == to_hex(allocation.root)
    assert proof["leaf"]["payout"] == str(result.payout[0])
    assert clients[winner - 100].status(AUCTION, winner)["outcome"]["payout"] == str(
        result.payout[0]
    )
    loser = result.ranked[-1].redemption_id
    assert _problem(lambda: clients[0].allocation(AUCTION, loser)).code == "not_found"
    store.put_artifact(
        AUCTION, "key", orjson.dumps({"auction_id": AUCTION, "private_key": to_hex(secret)})
    )
    assert httpx.get(f"{service.url}/v1/auctions/{AUCTION}/key").json()["private_key"] == to_hex(
        secret
    )
    assert clients[0].auction(AUCTION)["status"] == "revealed"


def test_health_readiness_and_metrics(service: Service):
    assert httpx.get(f"{service.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{service.url}/readyz").json() == {"status": "ready"}
    _client(service).bid(100, E18, 100)
    text = httpx.get(f"{service.url}/metrics").text
    assert 'qev_bids_total{outcome="created"} 1.0' in text
    assert (
        'qev_http_requests_total{route="/v1/auctions/{auction_id}/bids",status="201"} 1.0' in text
    )
    assert "qev_store_commit_seconds_count 1.0" in text


def test_openapi_describes_the_routes(service: Service):
    spec = httpx.get(f"{service.url}/openapi.json").json()
    paths = set(spec["paths"])
    for path in (
        "/v1/auctions/current",
        "/v1/auctions/{auction_id}",
        "/v1/auctions/{auction_id}/bids",
        "/v1/auctions/{auction_id}/bids/{redemption_id}",
        "/v1/auctions/{auction_id}/book",
        "/v1/auctions/{auction_id}/result",
        "/v1/auctions/{auction_id}/allocations/{redemption_id}",
        "/v1/auctions/{auction_id}/key",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    post = spec["paths"]["/v1/auctions/{auction_id}/bids"]["post"]
    assert {"201", "200", "400", "403", "404", "409", "413", "429"} <= set(post["responses"])


def test_replay_under_another_chain_or_contract_is_refused(service: Service):
    """A SealedBid signed for another chain id or settlement contract does not verify here."""
    c = _client(service)
    auction = c.auction()
    for other in (
        {**auction, "chain_id": 1},
        {**auction, "settlement": "0x000000000000000000000000000000000000dEaD"},
    ):
        env = c.seal(other, Bid(AUCTION, 100, E18, 100, 0))
        r = _post(service, AUCTION, envelope_body(env))
        assert (r.status_code, problem_code(r)) == (400, "bad_signature")


def test_rate_limited_controller_gets_429_with_retry_after(service: Service):
    from clearing.api.ratelimit import TokenBuckets

    app_limit = TokenBuckets(0.01, 2, time.monotonic)
    service.app.state.controller_limit = app_limit  # the route reads the live limiter
    c = _client(service)
    c.bid(100, E18, 100)
    c.bid(100, E18, 110)
    r = _post(service, AUCTION, envelope_body(c.seal(c.auction(), Bid(AUCTION, 100, E18, 120, 0))))
    assert (r.status_code, problem_code(r)) == (429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1


def test_bid_cli_submits_and_reads_status(service: Service, monkeypatch, capsys, tmp_path):
    """``qev bid`` pins the service to the chain (receipt signer, auction key, the request and
    its nonce): with no chain configured every subcommand refuses in one line, exit 2, before
    anything is sent or journalled. The flow on a chain: ``tests/ops/test_bid_cli.py``."""
    import os

    from qev.cli import main
    from tests.conftest import make_key

    for name in [n for n in os.environ if n.startswith("QEV_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("QEV_BIDDER_KEY", make_key("it-holder-2").hex())
    monkeypatch.setenv("QEV_JOURNAL_FILE", str(tmp_path / "journal.jsonl"))
    for action, extra in (
        ("submit", ["--shares", "3", "--bp", "777"]),
        ("status", []),
        ("cancel", []),
        ("proof", []),
        ("claim", []),
    ):
        argv = ["bid", action, "--service", service.url, "--redemption-id", "102", *extra]
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1
        assert captured.err.startswith("qev bid: missing setting rpc_url")
    assert _problem(lambda: _client(service, 2).status(AUCTION, 102)).code == "not_found"
    assert not (tmp_path / "journal.jsonl").exists()
