"""Two service processes on one PostgreSQL schema: one book, unique sequences, races resolved.

The auction is set to close a few seconds after the replicas start, so the published book
(``GET /book`` after close) is read from both replicas and checked against every receipt.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import pytest

from clearing.api.devserver import holder_key
from clearing.calendar import REDEMPTION_WINDOW
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import BidStatus
from loadtests.harness import (
    DevService,
    cancel_body,
    drive,
    drop_pg_schema,
    http_request,
    local_auction,
    pg_url,
    seal_many,
)
from tests.faults.conftest import pg_available, receipt_key

pytestmark = pytest.mark.skipif(not pg_available(), reason="PostgreSQL not on 127.0.0.1:5432")

SEED = "replicas"
PLAIN, RACE_REPLACE, RACE_CANCEL = range(0, 200), range(200, 240), range(240, 280)
CLOSE_IN = 15  # seconds from the test's start to the auction's close


def _both(ports_and_requests: list[tuple[int, list[bytes]]]) -> list[list]:
    """Drive several replicas at the same time (one event loop, many connections each)."""

    async def go() -> list[list]:
        return list(
            await asyncio.gather(*(drive(port, reqs, 16) for port, reqs in ports_and_requests))
        )

    return asyncio.run(go())


def test_two_replicas_one_consistent_book(tmp_path):
    close_at = int(time.time()) + CLOSE_IN
    genesis = close_at - 2 * REDEMPTION_WINDOW
    data = tmp_path / "data"
    auction = local_auction(data, genesis, close_at)
    t = close_at
    bids_path = f"/v1/auctions/{t}/bids"

    specs = [(i, i, 100 + i) for i in range(280)]  # first envelope of every pair
    specs += [(i, i, 2000 + i) for i in RACE_REPLACE]  # replacement sent to A
    specs += [(i, i, 3000 + i) for i in RACE_REPLACE]  # replacement sent to B
    specs += [(i, i, 4000 + i) for i in RACE_CANCEL]  # replacement racing the cancel
    sealed = seal_many(auction, SEED, specs)
    first = sealed[:280]
    rep_a, rep_b, rep_c = sealed[280:320], sealed[320:360], sealed[360:400]
    cancels = [
        cancel_body(auction, Signer(holder_key(SEED, i)), i, first[i].ciphertext_hash)
        for i in RACE_CANCEL
    ]

    schema = "qev_replicas_" + uuid.uuid4().hex[:10]
    store_url = pg_url(schema)
    a = DevService(store_url, data, genesis=genesis, seed=SEED, holders=400, log=tmp_path / "a")
    b = DevService(store_url, data, genesis=genesis, seed=SEED, holders=400, log=tmp_path / "b")
    try:
        a.spawn(), b.spawn()
        a.wait_ready(), b.wait_ready()
        for s in (a, b):  # both replicas serve the auction we sealed for
            doc = s.auction()
            assert (doc["auction_id"], doc["public_key"]) == (t, auction["public_key"])

        # 1. bidding through both: every bid acknowledged, sequences unique across replicas
        to_a = [http_request("POST", bids_path, first[i].body) for i in range(0, 280, 2)]
        to_b = [http_request("POST", bids_path, first[i].body) for i in range(1, 280, 2)]
        ra, rb = _both([(a.port, to_a), (b.port, to_b)])
        acks = [r for r in ra + rb if r.status == 201]
        assert len(acks) == 280, sorted({r.status for r in ra + rb})
        keys = [receipt_key(r.json()) for r in acks]
        assert len({seq for _, seq, _ in keys}) == 280, "duplicate sequence across replicas"

        # 2. the same pair replaced from both replicas at once: both acked, one live
        ra, rb = _both(
            [
                (a.port, [http_request("POST", bids_path, s.body) for s in rep_a]),
                (b.port, [http_request("POST", bids_path, s.body) for s in rep_b]),
            ]
        )
        assert [r.status for r in ra + rb] == [201] * 80
        seq_a = {receipt_key(r.json())[0]: receipt_key(r.json())[1] for r in ra}
        seq_b = {receipt_key(r.json())[0]: receipt_key(r.json())[1] for r in rb}

        # 3. a cancel (via B) racing a replacement (via A) of the same live bid
        ra, rb = _both(
            [
                (a.port, [http_request("POST", bids_path, s.body) for s in rep_c]),
                (
                    b.port,
                    [
                        http_request("DELETE", f"{bids_path}/{i}", c)
                        for i, c in zip(RACE_CANCEL, cancels, strict=True)
                    ],
                ),
            ]
        )
        assert [r.status for r in ra] == [201] * 40, [r.body[:120] for r in ra if r.status != 201]
        cancel_outcome = {}
        for i, r in zip(RACE_CANCEL, rb, strict=True):
            if r.status == 200:
                cancel_outcome[i] = "cancelled"
            else:  # the replacement won: the cancel names a hash that is no longer live
                assert r.status in (404, 409), r.body
                assert r.json()["code"] in ("stale_cancel", "not_found"), r.body
                cancel_outcome[i] = "refused"

        # after close: both replicas publish the same book, which is what the receipts say
        time.sleep(max(0.0, close_at - time.time() + 0.5))
        book_a = httpx.get(f"{a.url}/v1/auctions/{t}/book", timeout=30).json()
        book_b = httpx.get(f"{b.url}/v1/auctions/{t}/book", timeout=30).json()
    finally:
        a.stop(), b.stop()

    store = open_store(store_url)
    try:
        assert book_a == book_b, "replicas disagree on the book"
        live = {int(x["redemption_id"]): x for x in book_a["bids"]}
        assert len(live) == len(book_a["bids"]) == 280
        expected = {i: first[i].ciphertext_hash for i in PLAIN}
        for k, i in enumerate(RACE_REPLACE):  # the later of the two racing replacements
            expected[i] = (rep_a if seq_a[i] > seq_b[i] else rep_b)[k].ciphertext_hash
        for k, i in enumerate(RACE_CANCEL):  # both serial orders leave the replacement live
            expected[i] = rep_c[k].ciphertext_hash
        assert {i: bytes.fromhex(x["ciphertext_hash"][2:]) for i, x in live.items()} == expected
        sequences = [x["sequence"] for x in book_a["bids"]]
        assert len(set(sequences)) == len(sequences)

        for i in RACE_REPLACE:
            history = store.history(t, i)
            assert [h.status for h in history].count(BidStatus.LIVE) == 1
            assert len(history) == 3 and len({h.sequence for h in history}) == 3
            assert history[-1].status is BidStatus.LIVE  # the live one is the last in order
        for i in RACE_CANCEL:
            history = store.history(t, i)
            statuses = [h.status for h in history]
            if cancel_outcome[i] == "cancelled":  # serial order: cancel, then replacement
                assert statuses == [BidStatus.CANCELLED, BidStatus.LIVE], statuses
            else:  # serial order: replacement, then the (stale) cancel
                assert statuses == [BidStatus.SUPERSEDED, BidStatus.LIVE], statuses
        # every stored envelope from both replicas (live, superseded, cancelled): unique
        all_sequences = [h.sequence for i in range(280) for h in store.history(t, i)]
        assert len(set(all_sequences)) == len(all_sequences)
    finally:
        store.close()
        drop_pg_schema(schema)
    print(
        f"replicas: 280 pairs, 40 double replacements, cancel-vs-replace "
        f"{sum(v == 'cancelled' for v in cancel_outcome.values())} cancel-first / "
        f"{sum(v == 'refused' for v in cancel_outcome.values())} replace-first; "
        f"books equal ({orjson.dumps(book_a['bid_book_root']).decode()})"
    )
