"""Fixtures for the transaction pipeline tests: socket guards, py-evm chain, anvil, fake clock."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3

from keeper.artifacts import artifact

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
ANVIL_CHAIN_ID = 31337


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return isinstance(address, str | bytes)  # AF_UNIX paths stay local


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test in this folder: any connection off the loopback interface fails."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise OSError(f"network blocked in tests: connect to {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests: opening any connection at all fails (py-evm runs in process)."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("sockets are blocked in unit tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@dataclass
class FakeClock:
    """Monotonic time that only moves when ``sleep`` is called; ``on_sleep`` runs first."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[float], None] | None = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(self.now)
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


# --- py-evm -------------------------------------------------------------------------


@dataclass
class Chain:
    w3: Web3
    account: LocalAccount  # the sender's fresh key, funded, MINTER of the token
    token: Any  # MockUSDai contract bound at its address
    other: str


def deploy_token(w3: Web3, deployer: str, admin: str) -> Any:
    art = artifact("MockUSDai")
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx_hash = factory.constructor(admin).transact({"from": deployer})
    address = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["contractAddress"]
    return w3.eth.contract(address=address, abi=art["abi"])


@pytest.fixture
def chain(no_sockets: None) -> Chain:
    w3 = Web3(EthereumTesterProvider())
    funder = w3.eth.accounts[0]
    account = Account.create()
    w3.eth.send_transaction({"from": funder, "to": account.address, "value": 10**20})
    token = deploy_token(w3, funder, account.address)
    return Chain(w3, account, token, Account.create().address)


# --- anvil --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: list[Any], timeout: float = 5.0) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


@dataclass
class Anvil:
    url: str
    port: int

    def rpc(self, method: str, *params: Any) -> Any:
        return rpc(self.url, method, list(params))

    def w3(self, url: str | None = None, timeout: float = 5.0) -> Web3:
        provider = Web3.HTTPProvider(
            url or self.url,
            request_kwargs={"timeout": timeout},
            exception_retry_configuration=None,  # retries are the sender's job here
        )
        return Web3(provider)

    def funded_account(self, wei: int = 10**20) -> LocalAccount:
        account: LocalAccount = Account.create()
        self.rpc("anvil_setBalance", account.address, hex(wei))
        return account


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    """A fresh anvil per test on a free loopback port, killed at teardown."""
    if not ANVIL.exists() or shutil.which("node") is None:
        pytest.skip("anvil (npm @foundry-rs/anvil) not installed")
    port = free_port()
    args = ["--host", "127.0.0.1", "--port", str(port), "--chain-id", str(ANVIL_CHAIN_ID)]
    proc = subprocess.Popen(
        [str(ANVIL), *args, "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if int(rpc(url, "eth_chainId", [], timeout=1), 16) == ANVIL_CHAIN_ID:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("anvil did not start")
            time.sleep(0.05)
        yield Anvil(url, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
