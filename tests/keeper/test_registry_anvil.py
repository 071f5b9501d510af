"""The registry month on anvil (npm ``@foundry-rs/anvil``, loopback only): the same close to
the wei as on py-evm, ``qev verify`` through the CLI against the RPC, and a reorg that drops a
``postBids`` batch after its confirmations (``anvil_reorg``): the keeper finds the bids gone and
posts them again, ending in the same chain state with exactly one more transaction."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from clearing.store.base import BidStore
from qev.cli import main

from .month import (
    REGISTRY_STEPS,
    RegistryMonth,
    build_registry_month,
    key,
    published_registry_documents,
    write_documents,
)
from .test_anvil_month import ANVIL, CHAIN_ID, RPC_TIMEOUT, AnvilMonth, _free_port
from .test_registry_close import Hooked, check_registry_closed, registry_fingerprint

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def anvil_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilMonth]:
    if not ANVIL.exists() or shutil.which("node") is None:
        pytest.skip("anvil (npm @foundry-rs/anvil) not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(CHAIN_ID)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        probe = AnvilMonth(url, None, "")  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while True:
            try:
                if int(probe.rpc("eth_chainId"), 16) == CHAIN_ID:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("anvil did not start")
            time.sleep(0.05)
        w3 = Web3(
            Web3.HTTPProvider(
                url, request_kwargs={"timeout": RPC_TIMEOUT}, exception_retry_configuration=None
            )
        )
        urgent = Account.from_key(key("anvil-registry-urgent"))
        house = Account.from_key(key("anvil-registry-housekeeping"))
        for lane in (urgent, house):
            probe.rpc("anvil_setBalance", lane.address, hex(10**20))

        def advance_to(timestamp: int) -> None:
            probe.rpc("evm_setNextBlockTimestamp", timestamp)
            probe.rpc("evm_mine")

        month = build_registry_month(
            w3,
            w3.eth.accounts[0],
            urgent,
            house,
            Account.from_key(key("anvil-registry-fee-recipient")).address,
            advance_to,
            tmp_path_factory.mktemp("anvil-registry-setup") / "setup.db",
        )
        yield AnvilMonth(url, month, probe.rpc("evm_snapshot"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class AnvilRegistryEnv:
    a: AnvilMonth
    db: Path
    stores: list[BidStore] = field(default_factory=list)

    @property
    def month(self) -> RegistryMonth:
        return self.a.month  # type: ignore[return-value]

    def store(self) -> BidStore:
        from clearing.store import open_store

        s = open_store(f"sqlite:///{self.db}")
        self.stores.append(s)
        return s


@pytest.fixture
def anvil(anvil_registry: AnvilMonth, tmp_path: Path) -> Iterator[AnvilRegistryEnv]:
    anvil_registry.rewind()
    env = AnvilRegistryEnv(anvil_registry, tmp_path / "qev.db")
    env.stores.append(anvil_registry.month.open_store(env.db))
    yield env
    for s in env.stores:
        s.close()


def test_registry_month_on_anvil(anvil: AnvilRegistryEnv, tmp_path: Path) -> None:
    a, m = anvil.a, anvil.month
    store = anvil.store()
    report = m.keeper(store).close_auction(m.auction_id)
    assert report.done == REGISTRY_STEPS
    state, _ = check_registry_closed(m, store)
    a.reference.update(state=state)
    assert state["urgent_nonce"] == 1 + 2 + 3 + 1 + 3 + 1
    assert m.keeper(anvil.store()).close_auction(m.auction_id).done == []

    # an outside auditor: the published files and the chain, through the CLI
    docs = published_registry_documents(m, store, tmp_path)
    folder = write_documents(tmp_path / "published", docs)
    args = ["verify", "--dir", str(folder), "--rpc", a.url]
    args += ["--vault", m.deployment.vault, "--settlement", m.deployment.settlement]
    assert main(args) == 0


def test_reorg_drops_a_post_batch_and_the_keeper_posts_it_again(anvil: AnvilRegistryEnv) -> None:
    a, m = anvil.a, anvil.month
    if not a.reference:
        pytest.skip("needs test_registry_month_on_anvil's reference state (run the module)")
    t = m.auction_id
    reg = m.registry_contract()
    keeper = m.keeper(anvil.store())
    dropped: dict[str, int] = {}

    def reorg() -> None:
        dropped["before"] = reg.functions.auction(t).call()[0]
        a.rpc("anvil_reorg", 1, [])  # the block with the second batch is replaced by an empty one
        dropped["after"] = reg.functions.auction(t).call()[0]

    recorder = Hooked(keeper.urgent, "registry.postBids", {2: reorg})
    keeper.urgent = recorder
    report = keeper.close_auction(t)
    assert dropped == {"before": 8, "after": 4}  # the batch of bids 5..8 was dropped
    posts = [x for x in recorder.labels if x.startswith("registry.postBids")]
    assert posts == [
        f"registry.postBids({t}) bids 1..4",
        f"registry.postBids({t}) bids 5..8",
        f"registry.postBids({t}) bids 5..8",  # posted again from the chain's count
        f"registry.postBids({t}) bids 9..9",
    ]
    assert report.done == REGISTRY_STEPS
    state, _ = check_registry_closed(m, anvil.store())
    # the same chain state, nonces included: the dropped transaction is gone from the chain
    # and its nonce carried the batch again
    assert state == a.reference["state"]
    assert registry_fingerprint(m) == state
