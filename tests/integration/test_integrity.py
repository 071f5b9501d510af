"""Close integrity over real HTTP (DESIGN 2 and 4, rev 2), on both stores.

Each test reproduces one finding of the review against the code before revision 2:
1. a bid admitted before T whose controller lookup was slow got a 201 and a signed receipt
   after the keeper had frozen the book, and was absent from it (here with two service
   replicas sharing one store, one of them slow);
4. re-posting a superseded envelope made it live again, and re-posting a cancelled one
   undid the cancel;
5. a cancel's receipt was byte-identical to the bid's receipt.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import uvicorn

from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.bidding import seal_bid, sign_cancel
from clearing.documents import entry_receipt
from clearing.eip712 import Eip712Domain
from clearing.hexcodec import from_hex, parse_address, to_checksum_address, to_hex
from clearing.keyfiles import create_key
from clearing.model import Bid, Envelope
from clearing.receipts import Receipt, ReceiptKind
from clearing.redemptions import RedemptionInfo
from clearing.sealing import derive_auction_secret, public_key_of
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import BidStore
from tests.conftest import make_key
from tests.integration.conftest import (
    AUCTION,
    E18,
    GENESIS,
    SETTLEMENT,
    Clock,
    _drop_schema,
    _store_url,
    envelope_body,
    problem_code,
    start_server,
)

DOMAIN = Eip712Domain("QEVSettlement", "1", 31337, parse_address(SETTLEMENT))
HOLDERS = [Signer(make_key(f"integrity-{i}")) for i in range(3)]
SLOW_RID = 500


class GatedRedemptions:
    """A chain reader (blocking, like web3) whose read of ``SLOW_RID`` waits for a gate."""

    blocking = True

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        if redemption_id == SLOW_RID:
            self.entered.set()
            assert self.gate.wait(20), "the test never opened the gate"
        holder = HOLDERS[redemption_id % len(HOLDERS)]
        return RedemptionInfo(redemption_id, holder.address, 10 * E18, AUCTION - 86_400)


@dataclass
class Replica:
    url: str
    clock: Clock
    server: uvicorn.Server
    thread: threading.Thread


@dataclass
class Deployment:
    store_url: str
    replicas: list[Replica]
    reader: GatedRedemptions
    keeper_store: BidStore
    service_address: bytes
    public_key: bytes


def _start(app: object, clock: Clock) -> Replica:
    url, server, thread = start_server(app)
    return Replica(url, clock, server, thread)


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Two service replicas on one store (one slow chain reader), and the keeper's store."""
    url, schema = _store_url(request.param, tmp_path)
    create_key(tmp_path / "master.key", "master secret")
    create_key(tmp_path / "service.key", "receipt signing key")
    reader = GatedRedemptions()
    settings = ServiceSettings(
        store_url=url,
        chain_id=31337,
        settlement=SETTLEMENT,
        genesis=GENESIS,
        service_key_file=tmp_path / "service.key",
        master_secret_file=tmp_path / "master.key",
        controller_rate=1000.0,
        controller_burst=1000,
        client_rate=1000.0,
        client_burst=1000,
        chain_read_timeout=30.0,
        controller_cache_ttl=0,
    )
    replicas = [
        _start(build_app(settings, reader, clock=clock), clock)
        for clock in (Clock(AUCTION - 60), Clock(AUCTION - 60))
    ]
    keeper_store = open_store(url)
    master = bytes.fromhex((tmp_path / "master.key").read_text().strip())
    service_address = Signer(bytes.fromhex((tmp_path / "service.key").read_text())).address
    try:
        yield Deployment(
            url,
            replicas,
            reader,
            keeper_store,
            service_address,
            public_key_of(derive_auction_secret(master, AUCTION)),
        )
    finally:
        reader.gate.set()
        for r in replicas:
            r.server.should_exit = True
        for r in replicas:
            r.thread.join(timeout=10)
        keeper_store.close()
        if schema:
            _drop_schema(schema)


def _sealed(d: Deployment, rid: int, bp: int) -> Envelope:
    """The request's controller (holder ``rid % 3``) seals and signs a bid."""
    return seal_bid(HOLDERS[rid % 3], Bid(AUCTION, rid, 5 * E18, bp, 0), DOMAIN, d.public_key)


def _cancel_body(rid: int, ciphertext_hash: bytes) -> dict[str, str]:
    signer = HOLDERS[rid % 3]
    return {
        "controller": to_checksum_address(signer.address),
        "ciphertext_hash": to_hex(ciphertext_hash),
        "signature": to_hex(sign_cancel(signer, DOMAIN, AUCTION, rid, ciphertext_hash)),
    }


def _receipt(raw: dict[str, object]) -> Receipt:
    return Receipt(
        int(str(raw["auction_id"])),
        int(str(raw["redemption_id"])),
        parse_address(str(raw["controller"])),
        from_hex(str(raw["ciphertext_hash"]), 32),
        int(str(raw["sequence"])),
        int(str(raw["received_at"])),
        ReceiptKind(int(str(raw["kind"]))),
        from_hex(str(raw["service_signature"]), 65),
    )


def test_a_slow_bid_admitted_before_t_is_refused_once_the_book_is_frozen(
    deployment: Deployment,
) -> None:
    """Finding 1: the freeze fence refuses, atomically, a write that outlived the freeze."""
    d = deployment
    fast, slow = d.replicas
    on_time = _sealed(d, SLOW_RID + 1, 300)
    assert (
        httpx.post(
            f"{fast.url}/v1/auctions/{AUCTION}/bids", json=envelope_body(on_time)
        ).status_code
        == 201
    )
    late = _sealed(d, SLOW_RID, 700)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            httpx.post,
            f"{slow.url}/v1/auctions/{AUCTION}/bids",
            json=envelope_body(late),
            timeout=30,
        )
        assert d.reader.entered.wait(10)  # admitted at T-60, now waiting for the chain
        freeze = d.keeper_store.freeze(AUCTION, AUCTION)  # the keeper, at T
        d.reader.gate.set()
        answer = pending.result(timeout=30)
    # the slow replica's clock still says T-60: only the fence can refuse it
    assert slow.clock() < AUCTION
    assert (answer.status_code, problem_code(answer)) == (409, "auction_closed")
    book = d.keeper_store.live_bids(AUCTION)
    assert [b.redemption_id for b in book] == [SLOW_RID + 1]
    assert max(b.sequence for b in book) == freeze.last_sequence == 1
    # every later write to that auction, on either replica, is refused the same way
    for replica, env in (
        (fast, _sealed(d, SLOW_RID + 4, 100)),
        (slow, _sealed(d, SLOW_RID + 1, 900)),
    ):
        r = httpx.post(f"{replica.url}/v1/auctions/{AUCTION}/bids", json=envelope_body(env))
        assert (r.status_code, problem_code(r)) == (409, "auction_closed")
    r = httpx.request(
        "DELETE",
        f"{fast.url}/v1/auctions/{AUCTION}/bids/{SLOW_RID + 1}",
        json=_cancel_body(SLOW_RID + 1, on_time.ciphertext_hash),
    )
    assert (r.status_code, problem_code(r)) == (409, "auction_closed")
    assert d.keeper_store.live_bids(AUCTION) == book
    # the auction reads as closed on both replicas, though their clocks say T-60
    for replica in (fast, slow):
        assert httpx.get(f"{replica.url}/v1/auctions/{AUCTION}").json()["status"] == "closed"


def test_superseded_and_cancelled_envelopes_never_come_back(deployment: Deployment) -> None:
    """Finding 4: replays of dead envelopes are refused ``stale_envelope`` for good."""
    d = deployment
    url = d.replicas[0].url + f"/v1/auctions/{AUCTION}/bids"
    rid = SLOW_RID + 3
    first, second = _sealed(d, rid, 200), _sealed(d, rid, 400)
    assert httpx.post(url, json=envelope_body(first)).status_code == 201
    assert httpx.post(url, json=envelope_body(second)).status_code == 201
    assert httpx.post(url, json=envelope_body(second)).status_code == 200  # identical: live
    replay = httpx.post(url, json=envelope_body(first))
    assert (replay.status_code, problem_code(replay)) == (409, "stale_envelope")
    live = d.keeper_store.live_bid(AUCTION, rid)
    assert live is not None and live.ciphertext_hash == second.ciphertext_hash
    cancel = httpx.request("DELETE", f"{url}/{rid}", json=_cancel_body(rid, second.ciphertext_hash))
    assert cancel.status_code == 200
    for env in (second, first):
        replay = httpx.post(url, json=envelope_body(env))
        assert (replay.status_code, problem_code(replay)) == (409, "stale_envelope")
    assert d.keeper_store.live_bid(AUCTION, rid) is None
    # a fresh seal of the same bid is a new ciphertext: accepted
    assert httpx.post(url, json=envelope_body(_sealed(d, rid, 400))).status_code == 201


def test_cancel_receipts_are_kind_1_with_their_own_sequence(deployment: Deployment) -> None:
    """Finding 5: a cancel's receipt can never pass for the bid's; the signer is published."""
    d = deployment
    base = d.replicas[0].url + f"/v1/auctions/{AUCTION}"
    doc = httpx.get(base).json()
    assert doc["receipt_signer"] == to_checksum_address(d.service_address)
    rid = SLOW_RID + 6
    env = _sealed(d, rid, 250)
    bid = _receipt(httpx.post(f"{base}/bids", json=envelope_body(env)).json()["receipt"])
    answer = httpx.request(
        "DELETE", f"{base}/bids/{rid}", json=_cancel_body(rid, env.ciphertext_hash)
    )
    cancel = _receipt(answer.json()["receipt"])
    assert (bid.kind, cancel.kind) == (ReceiptKind.BID, ReceiptKind.CANCEL)
    assert cancel.ciphertext_hash == bid.ciphertext_hash == env.ciphertext_hash
    assert cancel.sequence == bid.sequence + 1
    assert bid.signer_address() == cancel.signer_address() == d.service_address
    assert cancel.service_signature != bid.service_signature
    # the bid receipt's signature does not verify as a cancel, nor the other way round
    as_cancel = replace(bid, kind=ReceiptKind.CANCEL)
    assert as_cancel.signer_address() != d.service_address
    status = httpx.get(f"{base}/bids/{rid}").json()
    assert status["status"] == "cancelled"
    assert _receipt(status["receipt"]) == bid and _receipt(status["cancel_receipt"]) == cancel


def test_book_history_publishes_the_audit_trail_after_the_freeze(deployment: Deployment) -> None:
    """Rev 2: superseded and cancelled envelopes are public after close, with receipts."""
    d = deployment
    base = d.replicas[0].url + f"/v1/auctions/{AUCTION}"
    rid_a, rid_b = SLOW_RID + 9, SLOW_RID + 12
    old, new, gone = _sealed(d, rid_a, 100), _sealed(d, rid_a, 200), _sealed(d, rid_b, 300)
    for env in (old, new, gone):
        assert httpx.post(f"{base}/bids", json=envelope_body(env)).status_code == 201
    httpx.request("DELETE", f"{base}/bids/{rid_b}", json=_cancel_body(rid_b, gone.ciphertext_hash))
    early = httpx.get(f"{base}/book/history")
    assert (early.status_code, problem_code(early)) == (409, "auction_not_closed")
    d.keeper_store.freeze(AUCTION, AUCTION)
    history = httpx.get(f"{base}/book/history").json()
    assert history["receipt_signer"] == to_checksum_address(d.service_address)
    entries = {e["ciphertext_hash"]: e for e in history["envelopes"]}
    assert set(entries) == {to_hex(old.ciphertext_hash), to_hex(gone.ciphertext_hash)}
    superseded, cancelled = (
        entries[to_hex(old.ciphertext_hash)],
        entries[to_hex(gone.ciphertext_hash)],
    )
    assert (superseded["status"], superseded["cancel"]) == ("superseded", None)
    assert (superseded["sequence"], cancelled["sequence"], cancelled["cancel"]["sequence"]) == (
        1,
        3,
        4,
    )
    assert cancelled["status"] == "cancelled" and cancelled["cancel"]["kind"] == 1
    for entry in history["envelopes"]:
        assert entry_receipt(AUCTION, entry).signer_address() == d.service_address
    assert httpx.get(f"{base}/book/history").content == httpx.get(f"{base}/book/history").content
