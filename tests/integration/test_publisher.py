"""The service builds a settled auction's ``/book`` ahead of its first request, once among its
workers, with the same bytes a request would get (real uvicorn, both store backends)."""

from __future__ import annotations

import time

import httpx
import orjson

from clearing.api.service import ClearingService
from clearing.documents import book_document
from clearing.hexcodec import from_hex, to_hex
from clearing.model import Envelope
from clearing.store.artifacts import BOOK, HISTORY, PUBLISHED_BOOK, PUBLISHING, SETTLEMENT
from qev.sdk import BidderClient
from tests.integration.conftest import AUCTION, E18, Service


def _wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while (value := check()) is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


def test_the_published_book_is_built_once_settled(service: Service) -> None:
    store = service.store
    clients = [
        BidderClient(service.url, h, service_address=service.service_address)
        for h in service.holders
    ]
    submitted = [c.bid(100 + i, (i + 1) * E18, 200 + i) for i, c in enumerate(clients)]
    # the keeper's freeze, by hand: the fence, then the frozen book document
    service.clock.now = AUCTION
    store.freeze(AUCTION, AUCTION)
    bids = store.live_bids(AUCTION)
    envelopes = [
        Envelope(AUCTION, b.redemption_id, b.controller, b.ciphertext, b.signature) for b in bids
    ]
    book = book_document(
        AUCTION, envelopes, [b.sequence for b in bids], [b.received_at for b in bids]
    )
    store.put_artifact(AUCTION, BOOK, orjson.dumps(book, option=orjson.OPT_SORT_KEYS))
    time.sleep(0.3)  # several publisher ticks: nothing is built before the settlement
    assert store.get_artifact(AUCTION, PUBLISHED_BOOK) is None

    store.put_artifact(AUCTION, SETTLEMENT, orjson.dumps({"status": "settled"}))
    published = _wait_for(lambda: store.get_artifact(AUCTION, PUBLISHED_BOOK))
    assert store.get_artifact(AUCTION, PUBLISHING) is not None  # the lease of the builder
    assert store.get_artifact(AUCTION, HISTORY) is not None
    served = httpx.get(f"{service.url}/v1/auctions/{AUCTION}/book")
    assert served.content == published
    doc = orjson.loads(published)
    assert doc["bid_book_root"] == book["bid_book_root"]
    # each entry carries the very receipt signature its bidder got at intake
    signatures = {int(b["redemption_id"]): b["service_signature"] for b in doc["bids"]}
    assert signatures == {
        s.envelope.redemption_id: to_hex(s.receipt.service_signature) for s in submitted
    }
    assert [from_hex(b["ciphertext"]) for b in doc["bids"]] == [e.ciphertext for e in envelopes]

    # another worker on the same store finds the lease taken and builds nothing
    other = ClearingService(service.app.state.service.d)
    assert other.publish_settled("other-worker") == []
    assert store.get_artifact(AUCTION, PUBLISHED_BOOK) == published
