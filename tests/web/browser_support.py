"""A whole stack for the browser tests: anvil, ``qev deploy --dev``, a holder, the keeper,
the service with its page, and headless Chromium with an injected EIP-1193 wallet.

``Browser`` drives ``browser_driver.mjs`` (playwright-core on Debian's /usr/bin/chromium)
one JSON command at a time, so the test interleaves page actions with chain and keeper
steps written in Python.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from clearing.hexcodec import to_hex
from clearing.keyfiles import Passphrase, create_key, create_keystore
from tests.conftest import make_key
from tests.integration.conftest import start_server

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("browser_driver.mjs")
CHROMIUM = Path(os.environ.get("QEV_CHROMIUM", "/usr/bin/chromium"))
PASSPHRASE = "a browser test passphrase"
FAST_SCRYPT = 2**10
E18 = 10**18


def require_browser() -> str:
    """node, playwright-core and Chromium, or a failure naming the install step."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "playwright-core").is_dir():
        pytest.fail("Node and `npm ci` (playwright-core) are required for the browser tests")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-chromium")
    return node


class BrowserError(AssertionError):
    """A driver command failed (the page did not do what the test expected)."""


class Browser:
    """One headless Chromium with the test wallet, driven over the driver's stdin/stdout."""

    def __init__(self, artifacts: Path) -> None:
        self.artifacts = artifacts
        self.proc = subprocess.Popen(
            [require_browser(), str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "QEV_ROOT": str(ROOT), "QEV_CHROMIUM": str(CHROMIUM)},
        )
        self.shots: list[Path] = []

    def __call__(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise BrowserError(f"the browser driver died during {op}: {err[-3000:]}")
        answer = json.loads(line)
        if not answer["ok"]:
            self.screenshot(f"failed-{op}")
            raise BrowserError(f"{op} {args}: {answer['error']}")
        return answer["value"]

    def screenshot(self, name: str) -> Path | None:
        try:
            self.proc.stdin.write(json.dumps({"op": "screenshot", "name": name}) + "\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
            answer = json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]
        except (OSError, ValueError):
            return None
        if not answer.get("ok"):
            return None
        path = Path(answer["value"])
        self.shots.append(path)
        return path

    def open(self, url: str, key: bytes, rpc: str, chain_id: int) -> None:
        self(
            "open",
            url=url,
            key=to_hex(key),
            rpc=rpc,
            chainId=chain_id,
            artifactsDir=str(self.artifacts),
        )

    def message(self, timeout: int = 120_000) -> dict[str, str]:
        return dict(self("message", timeout=timeout))

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError, ValueError):
            self("close")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class MovableClock:
    """The service clock: real time until a test moves it."""

    def __init__(self) -> None:
        self.fixed: int | None = None

    def __call__(self) -> int:
        return self.fixed if self.fixed is not None else int(time.time())


@dataclass
class Stack:
    """A deployed dev chain, a served page, a keeper and a holder with redemption requests."""

    anvil: Any
    w3: Web3
    chain: Any
    url: str
    auction: int
    holder_key: bytes
    holder: str
    clock: MovableClock
    keeper: Any
    settings: Any
    server: Any
    thread: Any
    requests: list[int] = field(default_factory=list)

    def stop_service(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def move_past(self, timestamp: int) -> None:
        """Chain time and service clock to ``timestamp`` (one block mined there)."""
        self.anvil.rpc("evm_setNextBlockTimestamp", hex(timestamp))
        self.anvil.rpc("evm_mine")
        self.clock.fixed = timestamp

    def holder_tx(self, fn: Any) -> Any:
        """Send ``fn`` from the holder's own key (outside the page, as another tool would)."""
        account = Account.from_key(self.holder_key)
        tx = fn.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address),
                "chainId": self.w3.eth.chain_id,
            }
        )
        signed = account.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction), timeout=30
        )
        assert receipt["status"] == 1
        return receipt


def build_stack(
    tmp_path: Path, anvil: Any, monkeypatch: pytest.MonkeyPatch, holds: int = 1
) -> Stack:
    """anvil + ``qev deploy --dev`` + ``holds`` requests of one holder + keeper + the service."""
    from clearing.api.server import build_app
    from clearing.api.webpage import install_webpage
    from keeper.factory import build_keeper
    from keeper.redemptions import Web3Redemptions
    from keeper.settings import KeeperSettings
    from qev.cli import main
    from qev.commands.common import settings_of
    from qev.commands.serve import resolved_settings

    pw = Passphrase(value=PASSPHRASE)
    keys = tmp_path / "keys"
    for name in ("service", "urgent", "housekeeping"):
        create_keystore(keys / f"{name}.json", pw, scrypt_n=FAST_SCRYPT)
    create_key(keys / "master.key", "master secret")
    holder_key = make_key("browser-holder")
    holder_file = keys / "holder.key"
    holder_file.write_text(holder_key.hex() + "\n")
    holder_file.chmod(0o600)
    config = tmp_path / "qev.toml"
    config.write_text(
        f'[chain]\nrpc_url = "{anvil.url}"\ndeployment_file = "{tmp_path / "deployment.json"}"\n'
        f'store_url = "sqlite:///{tmp_path / "qev.db"}"\n'
        f'[service]\nservice_key_file = "{keys / "service.json"}"\n'
        f'[keeper]\nmaster_secret_file = "{keys / "master.key"}"\n'
        f'urgent_key_file = "{keys / "urgent.json"}"\n'
        f'housekeeping_key_file = "{keys / "housekeeping.json"}"\n'
        "confirmations = 1\n"
        "[deploy]\nfirst_auction_in = 7200\n"
    )
    monkeypatch.setenv("QEV_CONFIG", str(config))
    monkeypatch.setenv("QEV_KEYSTORE_PASSPHRASE", PASSPHRASE)
    assert main(["deploy", "--dev", "--fund", "5"]) == 0
    for _ in range(holds):
        assert main(["devchain", "holder", "--file", str(holder_file), "--usdai", "1000"]) == 0

    keeper, calendar = build_keeper(settings_of(None, KeeperSettings))
    clock = MovableClock()
    keeper.service_clock = clock
    _, chain_now = keeper.chain.latest_block()
    auction = calendar.current(chain_now)
    assert keeper.open_auction(auction)  # commits auctionKey(T) on-chain

    settings, chain = resolved_settings(None)
    app = build_app(settings, Web3Redemptions(chain), clock=clock, access_log=False)
    install_webpage(app, settings)  # a no-op once build_app wires the page itself
    url, server, thread = start_server(app)
    holder = Account.from_key(holder_key).address
    ids = [int(i) for i in chain.vault.functions.redemptionIds(holder).call()]
    return Stack(
        anvil=anvil,
        w3=chain.w3,
        chain=chain,
        url=url,
        auction=auction,
        holder_key=holder_key,
        holder=holder,
        clock=clock,
        keeper=keeper,
        settings=settings,
        server=server,
        thread=thread,
        requests=ids,
    )
