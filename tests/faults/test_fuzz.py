"""schemathesis against the service's OpenAPI schema: >= 1,000 generated cases in total.

Positive and negative cases for every operation, over real HTTP (uvicorn in a thread), on a
store that holds an open auction with live bids, a cleared past auction (book, result,
allocation tree) and an older revealed one, so the publication routes answer 200 as well
as their problems. Every answer must be < 500, and every error an
``application/problem+json`` body with a known ``code`` whose ``status`` matches.
``QEV_FAULTS_LONG=1`` runs 500 examples per operation instead of 120.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from clearing.api.problems import KNOWN_CODES
from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.calendar import REDEMPTION_WINDOW
from clearing.keyfiles import create_key
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES
from clearing.redemptions import InMemoryRedemptions, RedemptionInfo
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import PutBid
from loadtests.harness import DevService, free_port, stable_genesis
from tests.conftest import make_key
from tests.faults.conftest import LONG
from tests.integration.conftest import AUCTION, GENESIS, SETTLEMENT, Clock

EXAMPLES = 500 if LONG else 120
MIN_CASES = 1000
PAST, OLDER = AUCTION - REDEMPTION_WINDOW, AUCTION - 2 * REDEMPTION_WINDOW
E18 = 10**18

_DATA = Path(tempfile.mkdtemp(prefix="qev-fuzz-"))
atexit.register(shutil.rmtree, _DATA, ignore_errors=True)
_HOLDERS = [Signer(make_key(f"fuzz-holder-{i}")) for i in range(4)]
_REDEMPTIONS = InMemoryRedemptions(
    {i: RedemptionInfo(i, h.address, 100 * E18, GENESIS) for i, h in enumerate(_HOLDERS)}
)
_SETTINGS = ServiceSettings(
    store_url=f"sqlite:///{_DATA / 'qev.db'}",
    chain_id=31337,
    settlement=SETTLEMENT,
    genesis=GENESIS,
    service_key_file=_DATA / "service.key",
    master_secret_file=_DATA / "master.key",
    client_rate=0,
    controller_rate=0,
)


def _seed_store() -> None:
    """Live bids now, a cleared past auction and a revealed older one (artifacts by hand)."""
    store = open_store(_SETTINGS.store())
    try:
        ops = []
        for t in (AUCTION, PAST, OLDER):
            for i, h in enumerate(_HOLDERS):
                ct = bytes([i + 1]) * 400
                ops.append(PutBid(t, i, h.address, ct, bytes([i + 7]) * 32, b"\x01" * 65, t - 9))
        store.apply(ops)
        for t in (PAST, OLDER):
            leaves = [(t, i, h.address, 10 * E18, E18, 9 * E18) for i, h in enumerate(_HOLDERS)]
            tree = StandardMerkleTree.of(leaves, ALLOCATION_LEAF_TYPES)
            result = {"auction_id": t, "allocation_root": "0x" + tree.root.hex(), "outcomes": {}}
            store.put_artifact(t, "allocation_tree", orjson.dumps(tree.dump()))
            store.put_artifact(t, "result", orjson.dumps(result))
        store.put_artifact(OLDER, "key", orjson.dumps({"auction_id": OLDER, "private_key": "0x"}))
    finally:
        store.close()


_seed_store()
create_key(_DATA / "master.key", "master secret")  # never created implicitly
create_key(_DATA / "service.key", "receipt signing key")
APP = build_app(_SETTINGS, _REDEMPTIONS, clock=Clock(AUCTION - 3600))
schema = schemathesis.openapi.from_dict(APP.openapi())
CASES: dict[str, int] = {}
STATUSES: dict[int, int] = {}


@pytest.fixture(scope="module")
def base_url():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(APP, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "service did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _steer(case) -> None:
    """Point 3 of 4 well-formed path ids at auctions and bids that exist (else mostly 404)."""
    params = case.path_parameters or {}
    t = params.get("auction_id")
    if type(t) is int and t >= 0 and t % 4:
        params["auction_id"] = (AUCTION, PAST, OLDER)[t % 4 - 1]
    rid = params.get("redemption_id")
    if isinstance(rid, str) and rid.isdigit() and int(rid) % 4:
        params["redemption_id"] = str(int(rid) % 6)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_no_server_errors_only_known_problems(case, base_url):
    label = case.operation.label
    CASES[label] = CASES.get(label, 0) + 1
    _steer(case)
    response = case.call(base_url=base_url, timeout=10)
    STATUSES[response.status_code] = STATUSES.get(response.status_code, 0) + 1
    assert response.status_code < 500, (label, response.status_code, response.text[:500])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", "")
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), (label, content_type)
        body = response.json()
        assert body["code"] in KNOWN_CODES, (label, body)
        assert body["status"] == response.status_code, (label, body)


def test_fuzz_case_count():
    """Runs after the fuzz tests (file order): the total is at least 1,000 cases."""
    operations = len(list(schema.get_all_operations()))
    if len(CASES) < operations:
        pytest.skip(f"only {len(CASES)} of {operations} operations were fuzzed in this session")
    total = sum(CASES.values())
    print(f"schemathesis: {total} cases over {len(CASES)} operations, statuses {STATUSES}")
    assert total >= MIN_CASES, CASES


_BIG = [0, 2**256 - 1, 2**256, 10**78 - 1]  # the path pattern admits up to 78 digits


@pytest.fixture(scope="module")
def dev_service(tmp_path_factory):
    """A dev service in its own process: a 500's traceback is formatted there, not in a
    thread of this process (CPython 3.11's ast.parse is not thread-safe; pytest parses too).
    """
    tmp = tmp_path_factory.mktemp("boundary")
    with DevService(
        f"sqlite:///{tmp / 'qev.db'}", tmp, genesis=stable_genesis(), seed="edge", holders=4
    ) as service:
        yield service


@pytest.mark.parametrize(
    ("route", "rid"),
    [pytest.param(route, rid) for route in ("bids", "allocations") for rid in _BIG],
)
@pytest.mark.parametrize("when", ["current", "past"])
def test_boundary_redemption_ids(dev_service, route, rid, when):
    """uint256 edges the generator rarely reaches: never a 5xx."""
    t = dev_service.auction()["auction_id"] - (REDEMPTION_WINDOW if when == "past" else 0)
    response = httpx.get(f"{dev_service.url}/v1/auctions/{t}/{route}/{rid}", timeout=10)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["code"] in KNOWN_CODES
