"""The web page's tests: a real service (uvicorn) serving the committed bundle.

``web_app`` builds the service as ``qev serve`` does (``build_app``) on SQLite with an
in-memory redemption reader, and serves the page with ``install_webpage``, which is how
``clearing.api.server.build_app`` is to wire it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.api.webpage import install_webpage
from clearing.keyfiles import create_key
from clearing.redemptions import InMemoryRedemptions, RedemptionInfo
from clearing.signing import Signer
from tests.conftest import make_key
from tests.integration.conftest import AUCTION, GENESIS, SETTLEMENT, Clock, start_server

E18 = 10**18


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item (the browser fixture reports failures)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives Debian's headless Chromium (scripts/install-chromium)"
    )


@dataclass
class WebService:
    url: str
    app: Any
    clock: Clock
    holder: Signer
    holder_key: bytes
    redemptions: InMemoryRedemptions
    master_key_file: Path


def service_settings(tmp_path: Path, **extra: Any) -> ServiceSettings:
    create_key(tmp_path / "service.key", "receipt signing key")
    create_key(tmp_path / "master.key", "master secret")
    return ServiceSettings(
        store_url=f"sqlite:///{tmp_path / 'qev.db'}",
        chain_id=31337,
        settlement=SETTLEMENT,
        genesis=GENESIS,
        service_key_file=tmp_path / "service.key",
        master_secret_file=tmp_path / "master.key",
        **extra,
    )


@pytest.fixture
def web_app(tmp_path: Path) -> Iterator[Callable[..., WebService]]:
    """``web_app(cors_origins=..., web_rpc_url=...)``: a running service with the page."""
    servers: list[Any] = []

    def start(**web: Any) -> WebService:
        native = {k: v for k, v in web.items() if k in ServiceSettings.model_fields}
        settings = service_settings(tmp_path / f"s{len(servers)}", **native)
        holder_key = make_key("web-holder")
        holder = Signer(holder_key)
        redemptions = InMemoryRedemptions()
        redemptions.add(RedemptionInfo(7, holder.address, 100 * E18, AUCTION - 86_400))
        clock = Clock(AUCTION - 3600)
        app = build_app(settings, redemptions, clock=clock, access_log=False)
        if getattr(app.state, "web_bundle_sha256", None) is None:  # build_app does not wire it yet
            # the settings the page reads (until ServiceSettings has them: getattr defaults)
            install_webpage(app, SimpleNamespace(**web))
        url, server, thread = start_server(app)
        servers.append((server, thread))
        assert settings.master_secret_file is not None
        return WebService(
            url, app, clock, holder, holder_key, redemptions, settings.master_secret_file
        )

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


from tests.keeper_tx.conftest import anvil  # noqa: E402, F401 - the shared anvil fixture
