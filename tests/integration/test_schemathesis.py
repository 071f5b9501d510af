"""schemathesis against the service's own OpenAPI schema: no 5xx, every error a known problem."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from clearing.api.problems import KNOWN_CODES
from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.keyfiles import create_key
from clearing.redemptions import InMemoryRedemptions, RedemptionInfo
from clearing.signing import Signer
from tests.conftest import make_key
from tests.integration.conftest import AUCTION, GENESIS, SETTLEMENT, Clock, _free_port

_DATA = Path(tempfile.mkdtemp(prefix="qev-schemathesis-"))
_HOLDER = Signer(make_key("st-holder"))
_REDEMPTIONS = InMemoryRedemptions({7: RedemptionInfo(7, _HOLDER.address, 10**19, GENESIS)})
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
create_key(_DATA / "master.key", "master secret")  # never created implicitly
create_key(_DATA / "service.key", "receipt signing key")
APP = build_app(_SETTINGS, _REDEMPTIONS, clock=Clock(AUCTION - 3600))
schema = schemathesis.openapi.from_dict(APP.openapi())
EXAMPLES = int(os.environ.get("QEV_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def base_url():
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(APP, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_only_known_problems(case, base_url):
    response = case.call(base_url=base_url)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        content_type = response.headers["content-type"]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), content_type
        body = response.json()
        assert body["code"] in KNOWN_CODES, body
        assert body["status"] == response.status_code
