"""Locust users for the clearing service: bidders before close, claimants after settlement.

Run through ``loadtests/run`` (it prepares the data and starts the service); by hand:

    QEV_LOAD_DATA=intake.json locust -f loadtests/locustfile.py --headless -u 32 -r 32 \
        -t 30s --host http://127.0.0.1:8000 Bidder

``QEV_LOAD_DATA`` is the file ``loadtests/prepare.py`` wrote: pre-sealed, pre-signed bidder
flows (``Bidder``) or a cleared past auction (``Claimant``, or ``ProofReader`` for proofs
alone). ``HealthUser`` is the baseline.
Deliberate bad requests count as successes only when they get their exact problem code.
``QEV_LOAD_REPORT`` (optional) receives a JSON summary when the test stops.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import orjson
from locust import FastHttpUser, constant, events, task

_DATA: dict[str, Any] = (
    orjson.loads(Path(os.environ["QEV_LOAD_DATA"]).read_bytes())
    if os.environ.get("QEV_LOAD_DATA")
    else {}
)
_FLOWS: Iterator[list[list[str]]] = iter(_DATA.get("flows", ()))
_STATE = {"flows_started": 0, "exhausted": False, "bad_sent": 0}
#: step -> (HTTP status, the stored bid's status the receipt response must report)
_EXPECTED = {
    "new": (201, "live"),
    "replace": (201, "live"),
    "identical": (200, "live"),
    "cancel": (200, "cancelled"),
    "status": (200, None),
}
_JSON = {"Content-Type": "application/json"}
_USER_SEEDS = itertools.count()


def _check(
    response: Any, status: int, code: str | None = None, bid_status: str | None = None
) -> None:
    """Success iff ``status`` and, if given, the problem ``code`` or the receipt's bid status."""
    if response.status_code != status:
        response.failure(f"expected {status}, got {response.status_code}: {response.text[:200]}")
        return
    if bid_status is not None:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = {}
        if body.get("status") != bid_status or "service_signature" not in body.get("receipt", {}):
            response.failure(f"expected a signed receipt of a {bid_status} bid: {body}")
            return
    if code is not None:
        try:
            got = orjson.loads(response.content).get("code")
        except orjson.JSONDecodeError:
            got = None
        ctype = response.headers.get("content-type", "")
        if got != code or not ctype.startswith("application/problem+json"):
            response.failure(f"expected problem {code}, got {got} ({ctype})")
            return
    response.success()


class _User(FastHttpUser):
    """No think time, the same timeouts for every user class."""

    abstract = True
    wait_time = constant(0)
    network_timeout = 10.0
    connection_timeout = 5.0

    def _get(self, path: str, name: str, status: int, code: str | None = None) -> None:
        """GET ``path``; a success only with ``status`` (and the problem ``code``)."""
        with self.client.get(path, name=name, catch_response=True) as r:
            _check(r, status, code)


class _AuctionReader(_User):
    """Reads the cleared auction of ``QEV_LOAD_DATA``."""

    abstract = True

    def on_start(self) -> None:
        """Per-user random stream (deterministic by start order)."""
        self.rng = random.Random(next(_USER_SEEDS))  # noqa: S311
        self.t = _DATA["auction_id"]

    def _proof(self) -> None:
        """A random winner's allocation leaf and Merkle proof."""
        rid = self.rng.choice(_DATA["winners"])
        self._get(f"/v1/auctions/{self.t}/allocations/{rid}", "GET allocation proof", 200)


class Bidder(_User):
    """Replays pre-sealed holder flows: new bid, status read, identical resubmission,
    replacement, cancel; every 50th flow also sends one deliberate bad request."""

    @task
    def holder_flow(self) -> None:
        """One holder's scripted flow, request after request on one connection."""
        steps = next(_FLOWS, None)
        if steps is None:  # pool used up: stop rather than measure something else
            if not _STATE["exhausted"]:
                _STATE["exhausted"] = True
                gevent.spawn(self.environment.runner.quit)
            gevent.sleep(1.0)  # until quit() stops this user
            return
        n = _STATE["flows_started"]
        _STATE["flows_started"] = n + 1
        bad = _DATA["bad"]
        if n % 50 == 10 and bad:
            name, method, path, body, status, code = bad[_STATE["bad_sent"] % len(bad)]
            _STATE["bad_sent"] += 1
            with self.client.request(
                method,
                path,
                data=orjson.dumps(body).decode(),
                headers=_JSON,
                name=name,
                catch_response=True,
            ) as r:
                _check(r, status, code)
        for kind, method, path, body in steps:
            name = f"{method} bid ({kind})" if kind != "status" else "GET bid status"
            with self.client.request(
                method,
                path,
                data=body or None,
                headers=_JSON if body else None,
                name=name,
                catch_response=True,
            ) as r:
                _check(r, _EXPECTED[kind][0], bid_status=_EXPECTED[kind][1])


class Claimant(_AuctionReader):
    """Reads a cleared auction: allocation proofs mostly, the result, statuses, the book."""

    @task(500)
    def proof(self) -> None:
        """A winner's allocation leaf and Merkle proof."""
        self._proof()

    @task(15)
    def status(self) -> None:
        """A bidder's receipt and outcome after clearing."""
        rid = self.rng.choice(_DATA["winners"])
        self._get(f"/v1/auctions/{self.t}/bids/{rid}", "GET bid status+outcome", 200)

    @task(10)
    def result(self) -> None:
        """The clearing summary."""
        self._get(f"/v1/auctions/{self.t}/result", "GET result", 200)

    @task(1)
    def book(self) -> None:
        """The frozen book (large: every envelope and the OZ tree dump)."""
        self._get(f"/v1/auctions/{self.t}/book", "GET book", 200)

    @task(5)
    def loser_proof(self) -> None:
        """Deliberate: a bid that did not win has no allocation (404 not_found)."""
        if not _DATA["losers"]:
            return
        rid = self.rng.choice(_DATA["losers"])
        path = f"/v1/auctions/{self.t}/allocations/{rid}"
        self._get(path, "bad: proof of a loser", 404, "not_found")

    @task(2)
    def key_not_revealed(self) -> None:
        """Deliberate: the key before reveal (409 key_not_revealed)."""
        path = f"/v1/auctions/{self.t}/key"
        self._get(path, "bad: key before reveal", 409, "key_not_revealed")

    @task(2)
    def unknown_auction(self) -> None:
        """Deliberate: an auction that does not exist yet (404 unknown_auction)."""
        path = f"/v1/auctions/{_DATA['future_auction_id']}/result"
        self._get(path, "bad: future auction", 404, "unknown_auction")


class ProofReader(_AuctionReader):
    """Allocation proofs only (``--scenario proofs``): the proof-read target in isolation."""

    @task
    def proof(self) -> None:
        """A winner's allocation leaf and Merkle proof."""
        self._proof()


class HealthUser(_User):
    """The baseline: ``GET /healthz`` with the same users and time."""

    @task
    def healthz(self) -> None:
        """Liveness, the cheapest route."""
        self._get("/healthz", "GET /healthz", 200)


@events.test_stop.add_listener
def _report(environment: Any, **_: Any) -> None:
    path = os.environ.get("QEV_LOAD_REPORT")
    if path:
        Path(path).write_bytes(orjson.dumps(_STATE))
