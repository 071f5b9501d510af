"""PostgreSQL stopped mid-load (a throwaway cluster): 503 problems, readiness false, recovery.

The server is stopped in ``immediate`` mode (crash-like) while bids stream in. Requests
during the outage must get ``503`` ``application/problem+json`` with code
``store_unavailable``, ``/readyz`` must not be 200, and after the restart intake resumes and
every bid acknowledged before, during or after the outage is in the store.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from clearing.store import open_store
from loadtests.harness import DevService, http_request, run_drive, seal_many, stable_genesis
from tests.faults.conftest import receipt_key
from tests.faults.pgcluster import ThrowawayPostgres, postgres_bindir

pytestmark = [
    pytest.mark.pgstop,
    pytest.mark.skipif(postgres_bindir() is None, reason="no PostgreSQL server binaries"),
]

SEED = "pgstop"


def _problem_code(reply) -> str | None:
    try:
        return reply.json().get("code")
    except ValueError:
        return None


@pytest.fixture
def pg():
    """A throwaway cluster, always stopped and removed afterwards."""
    cluster = ThrowawayPostgres()
    try:
        cluster.init().start()
        yield cluster
    finally:
        cluster.destroy()


def test_postgres_outage_mid_load(tmp_path, pg):
    store_url = f"{pg.dsn}?schema=qev_pgstop"
    genesis = stable_genesis()
    service = DevService(
        store_url, tmp_path / "data", genesis=genesis, seed=SEED, holders=1200,
        log=tmp_path / "service.log",
    )  # fmt: skip
    acked: list[tuple[int, int, bytes]] = []
    counts = {"acked": 0, "503": 0, "not sent": 0, "other": 0}
    try:
        service.start()
        auction = service.auction()
        t = auction["auction_id"]
        sealed = seal_many(auction, SEED, [(i, i, 10 + i) for i in range(1000)])
        post = [http_request("POST", f"/v1/auctions/{t}/bids", s.body) for s in sealed]

        def tally(replies) -> list:
            others = []
            for r in replies:
                if r.status in (200, 201):
                    acked.append(receipt_key(r.json()))
                    counts["acked"] += 1
                elif r.status == 503 and _problem_code(r) == "store_unavailable":
                    counts["503"] += 1
                elif r.status == 0:
                    counts["not sent"] += 1  # past the phase deadline
                else:
                    counts["other"] += 1
                    others.append((r.status, r.body[:200]))
            return others

        # before: all acknowledged
        before = run_drive(service.port, post[:200], 16)
        assert {r.status for r in before} == {201}
        tally(before)

        # mid-load: stop PostgreSQL (crash-like) once 100 more receipts came back
        stopper = threading.Thread(target=pg.stop, daemon=True)
        acks = {"n": 0}

        def on_reply(_: int, reply) -> None:
            if reply.status == 201:
                acks["n"] += 1
                if acks["n"] == 100:
                    stopper.start()

        during = run_drive(
            service.port, post[200:700], 16, timeout=20.0,
            deadline=time.monotonic() + 8.0, on_reply=on_reply,
        )  # fmt: skip
        stopper.join(timeout=40)
        assert acks["n"] >= 100 and not stopper.is_alive(), "PostgreSQL was not stopped"
        assert tally(during) == [], "outage answers other than 503 store_unavailable"

        # while it is down: every bid gets a 503 store_unavailable problem
        probe = run_drive(service.port, post[700:716], 16, timeout=30.0)
        assert [r.status for r in probe] == [503] * 16, [r.body[:120] for r in probe]
        assert tally(probe) == []
        problem = probe[0].json()
        assert problem["status"] == 503 and problem["type"].endswith("store_unavailable")
        waits = sorted(r.latency for r in during + probe if r.status == 503)
        outage_503 = len(waits)
        # only a probe waits for the pool's timeout; the rest are refused at once
        assert waits[len(waits) // 2] < 0.5, waits

        # readiness is false while the store is down
        ready = httpx.get(f"{service.url}/readyz", timeout=30)
        assert ready.status_code != 200, ready.text
        assert ready.headers["content-type"].startswith("application/problem+json")
        assert ready.json()["code"] == "store_unavailable"

        # restart: readiness comes back and intake resumes
        pg.start()
        deadline = time.monotonic() + 60
        while httpx.get(f"{service.url}/readyz", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "readiness did not come back"
            time.sleep(0.2)
        unsent = [post[200 + i] for i, r in enumerate(during) if r.status != 201]
        after = run_drive(service.port, unsent + post[700:], 16, timeout=20.0)  # probe again
        assert tally(after) == []
        assert all(r.status in (200, 201) for r in after)  # refused ones are accepted now
    finally:
        service.stop()

    lost = 0
    store = open_store(store_url)
    try:
        for rid, seq, h in acked:
            stored = {(b.sequence, b.ciphertext_hash) for b in store.history(t, rid)}
            lost += (seq, h) not in stored
        assert len(store.live_bids(t)) == 1000
    finally:
        store.close()
    print(
        f"postgres outage: {counts}, 503 during the outage {outage_503} (answered after "
        f"{waits[0]:.1f}-{waits[-1]:.1f} s, median {waits[len(waits) // 2] * 1000:.0f} ms), "
        f"readyz {ready.status_code}, lost {lost}"
    )
    assert lost == 0
