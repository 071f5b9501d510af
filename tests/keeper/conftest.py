"""Keeper fixtures: the network guard and one small month on py-evm, reset for every test.

The month is built once per session (deploy, requests over two windows, deployed
liquidity, key commitment, sealed bids, time past T) and the chain is reverted to that
snapshot before each test; each test gets its own SQLite store file with the bids in it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from clearing.store.base import BidStore

from .month import Month, build_month


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return isinstance(address, str | bytes)  # AF_UNIX paths stay on this machine


@pytest.fixture(autouse=True)
def network_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here reaches the network: every connect off the loopback interface fails.

    py-evm runs in process (no socket at all); anvil listens on 127.0.0.1.
    """
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise OSError(f"network blocked in keeper tests: connect to {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            raise OSError(f"network blocked in keeper tests: connect to {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


def one_shot_gas_estimate(state: Any, transaction: Any) -> int:
    """py-evm's default estimator bisects (about 13 EVM runs per estimate); this node runs the
    call once at the block gas limit and answers intrinsic + 1.5 x execution gas, which
    covers the 63/64 call rule and refunds. Only the test node's answer changes: the keeper
    still estimates, adds its margin and signs as it would against any node."""
    from eth.vm.spoof import SpoofTransaction

    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(
            SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0)
        )
        if computation.is_error:
            raise computation.error
        used = computation.get_gas_used()
    finally:
        state.revert(snapshot)
    return int(min(state.gas_limit, transaction.intrinsic_gas + used * 3 // 2))


@dataclass
class PyEvmMonth:
    """The session's month and how to rewind it."""

    month: Month
    tester: Any
    snapshot: int


@pytest.fixture(scope="session")
def _pyevm_month(tmp_path_factory: pytest.TempPathFactory) -> PyEvmMonth:
    provider = EthereumTesterProvider()
    w3 = Web3(provider)
    tester: Any = provider.ethereum_tester
    tester.backend.chain.gas_estimator = one_shot_gas_estimate
    keys = tester.backend.account_keys
    urgent = Account.from_key(keys[1].to_bytes())
    house = Account.from_key(keys[2].to_bytes())

    def advance_to(timestamp: int) -> None:
        tester.time_travel(timestamp)
        tester.mine_blocks(1)

    accounts = list(w3.eth.accounts)
    month = build_month(
        w3,
        accounts[0],
        urgent,
        house,
        accounts[3],  # the fee recipient holds nothing else
        advance_to,
        tmp_path_factory.mktemp("setup") / "setup.db",
    )
    return PyEvmMonth(month, tester, tester.take_snapshot())


@dataclass
class Env:
    """One test's view: the month on a rewound chain and a store file of its own."""

    month: Month
    tester: Any
    db: Path
    stores: list[BidStore]

    def store(self) -> BidStore:
        """A new store object on the test's SQLite file (a restarted keeper's)."""
        from clearing.store import open_store

        s = open_store(f"sqlite:///{self.db}")
        self.stores.append(s)
        return s


@pytest.fixture
def env(_pyevm_month: PyEvmMonth, tmp_path: Path) -> Iterator[Env]:
    """The month at close time (chain rewound), bids in a fresh SQLite store."""
    _pyevm_month.tester.revert_to_snapshot(_pyevm_month.snapshot)
    db = tmp_path / "qev.db"
    first = _pyevm_month.month.open_store(db)
    e = Env(_pyevm_month.month, _pyevm_month.tester, db, [first])
    yield e
    for s in e.stores:
        s.close()


# --- the registry target's month (additions) ---------------------------------------------------


@pytest.fixture(scope="session")
def _pyevm_registry_month(tmp_path_factory: pytest.TempPathFactory) -> PyEvmMonth:
    """The registry month on a py-evm chain of its own, snapshotted just after T."""
    from .month import build_registry_month

    provider = EthereumTesterProvider()
    w3 = Web3(provider)
    tester: Any = provider.ethereum_tester
    tester.backend.chain.gas_estimator = one_shot_gas_estimate
    keys = tester.backend.account_keys
    urgent = Account.from_key(keys[1].to_bytes())
    house = Account.from_key(keys[2].to_bytes())

    def advance_to(timestamp: int) -> None:
        tester.time_travel(timestamp)
        tester.mine_blocks(1)

    accounts = list(w3.eth.accounts)
    month = build_registry_month(
        w3,
        accounts[0],
        urgent,
        house,
        accounts[3],
        advance_to,
        tmp_path_factory.mktemp("registry-setup") / "setup.db",
    )
    return PyEvmMonth(month, tester, tester.take_snapshot())


@pytest.fixture
def renv(_pyevm_registry_month: PyEvmMonth, tmp_path: Path) -> Iterator[Env]:
    """The registry month at close time (chain rewound), bids in a fresh SQLite store."""
    _pyevm_registry_month.tester.revert_to_snapshot(_pyevm_registry_month.snapshot)
    db = tmp_path / "qev.db"
    first = _pyevm_registry_month.month.open_store(db)
    e = Env(_pyevm_registry_month.month, _pyevm_registry_month.tester, db, [first])
    yield e
    for s in e.stores:
        s.close()
