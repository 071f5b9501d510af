"""The whole month on anvil (npm ``@foundry-rs/anvil``, loopback only, bounded in time).

Deployed from anvil's unlocked dev account 0; the keeper signs locally from two fresh
accounts funded with ``anvil_setBalance``. One anvil per module; each test rewinds it to the
moment after T with ``evm_snapshot``/``evm_revert`` and gets its own SQLite store.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from clearing.hexcodec import to_hex
from clearing.store.base import BidStore
from keeper.errors import SimulationRevertError
from qev.cli import main

from .crash import CRASHES, Crash, CrashAfterSend, skipped_on_restart
from .month import (
    RESULT,
    SETTLEMENT,
    STEPS,
    Month,
    artifact,
    build_month,
    check_closed,
    key,
    published_documents,
    write_documents,
)

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
CHAIN_ID = 31337
RPC_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AnvilMonth:
    url: str
    month: Month
    snapshot: str
    reference: dict[str, Any] = field(default_factory=dict)

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def rewind(self) -> None:
        """Back to just after T (anvil consumes a snapshot when reverting: take a new one)."""
        assert self.rpc("evm_revert", self.snapshot) is True
        self.snapshot = self.rpc("evm_snapshot")


@pytest.fixture(scope="module")
def anvil_month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilMonth]:
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
                url,
                request_kwargs={"timeout": RPC_TIMEOUT},
                exception_retry_configuration=None,
            )
        )
        urgent = Account.from_key(key("anvil-urgent-lane"))
        house = Account.from_key(key("anvil-housekeeping-lane"))
        for lane in (urgent, house):
            probe.rpc("anvil_setBalance", lane.address, hex(10**20))

        def advance_to(timestamp: int) -> None:
            probe.rpc("evm_setNextBlockTimestamp", timestamp)
            probe.rpc("evm_mine")

        month = build_month(
            w3,
            w3.eth.accounts[0],
            urgent,
            house,
            Account.from_key(key("anvil-fee-recipient")).address,
            advance_to,
            tmp_path_factory.mktemp("anvil-setup") / "setup.db",
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
class AnvilEnv:
    a: AnvilMonth
    db: Path
    stores: list[BidStore] = field(default_factory=list)

    @property
    def month(self) -> Month:
        return self.a.month

    def store(self) -> BidStore:
        """A new store object on the test's SQLite file (a restarted keeper's)."""
        from clearing.store import open_store

        s = open_store(f"sqlite:///{self.db}")
        self.stores.append(s)
        return s


@pytest.fixture
def anvil(anvil_month: AnvilMonth, tmp_path: Path) -> Iterator[AnvilEnv]:
    anvil_month.rewind()
    env = AnvilEnv(anvil_month, tmp_path / "qev.db")
    env.stores.append(anvil_month.month.open_store(env.db))
    yield env
    for s in env.stores:
        s.close()


def test_full_month_on_anvil(anvil: AnvilEnv, tmp_path: Path) -> None:
    a, m = anvil.a, anvil.month
    store = anvil.store()
    keeper = m.keeper(store)
    assert keeper.urgent.address == m.urgent_account.address  # type: ignore[attr-defined]
    report = keeper.close_auction(m.auction_id)
    assert report.done == STEPS
    result, state = check_closed(m, store)
    a.reference.update(state=state, result=result)
    # the keeper's two lanes sent exactly their own transactions
    w3 = m.w3
    # commit, commitBook, settle, reveal
    assert w3.eth.get_transaction_count(m.urgent_account.address) == 4
    assert w3.eth.get_transaction_count(m.house_account.address) == 2  # claims, service
    assert m.keeper(anvil.store()).close_auction(m.auction_id).done == []

    # an outside auditor: the published files and the chain, through the CLI
    docs = published_documents(m, store, tmp_path)
    folder = write_documents(tmp_path / "published", docs)
    args = ["verify", "--dir", str(folder), "--rpc", a.url]
    args += ["--vault", m.deployment.vault, "--settlement", m.deployment.settlement]
    assert main(args) == 0


def _reference(a: AnvilMonth) -> dict[str, Any]:
    if not a.reference:
        pytest.skip("needs test_full_month_on_anvil's reference state (run the whole module)")
    return a.reference


def test_reorg_after_settlement_converges(anvil: AnvilEnv) -> None:
    a, m = anvil.a, anvil.month
    ref = _reference(a)
    store = anvil.store()
    assert m.keeper(store).close_auction(m.auction_id).done == STEPS
    (first,) = m.settled_events()
    head = m.w3.eth.block_number
    # drop every block from the settlement on (settle, claims, service, reveal)
    a.rpc("anvil_reorg", head - first["blockNumber"] + 1, [])
    assert m.w3.eth.block_number == head
    assert not m.chain.is_settled(m.auction_id)
    assert m.settled_events() == []
    assert not m.chain.key_state(m.auction_id).revealed
    assert all(m.usdai(h.address) == 0 for h in m.holders)
    assert artifact(store, m.auction_id, SETTLEMENT)["tx"] == to_hex(first["transactionHash"])

    store = anvil.store()  # the restarted keeper's
    report = m.keeper(store).close_auction(m.auction_id)
    assert report.done == ["settle", "claims", "service", "reveal"]
    assert report.skipped == ["freeze", "clear"]  # the persisted result is settled again
    result, state = check_closed(m, store)
    assert state == ref["state"]
    assert result["allocation_root"] == ref["result"]["allocation_root"]
    assert result["bid_book_root"] == ref["result"]["bid_book_root"]
    (again,) = m.settled_events()  # one settlement on the canonical chain
    assert artifact(store, m.auction_id, SETTLEMENT)["tx"] == to_hex(again["transactionHash"])
    assert artifact(store, m.auction_id, RESULT)["settlement_tx"] == to_hex(
        again["transactionHash"]
    )


def test_reorg_while_pushing_claims_then_restart(anvil: AnvilEnv) -> None:
    """The settlement is confirmed, then a reorg drops it before the claims go out: the claim
    simulation reverts (AuctionNotSettled) and nothing is sent; a restart settles again."""
    a, m = anvil.a, anvil.month
    ref = _reference(a)
    keeper = m.keeper(anvil.store())

    def reorg() -> None:
        a.rpc("anvil_reorg", 1, [])

    keeper.urgent = CrashAfterSend(keeper.urgent, "settleAuction", then=reorg)
    with pytest.raises(SimulationRevertError, match="AuctionNotSettled"):
        keeper.close_auction(m.auction_id)
    assert not m.chain.is_settled(m.auction_id)
    assert m.w3.eth.get_transaction_count(m.house_account.address) == 0

    store = anvil.store()
    report = m.keeper(store).close_auction(m.auction_id)
    assert report.done == ["settle", "claims", "service", "reveal"]
    _, state = check_closed(m, store)
    assert state == ref["state"]


@pytest.mark.parametrize("crash", list(CRASHES))
def test_killed_and_restarted_on_anvil(anvil: AnvilEnv, crash: str) -> None:
    a, m = anvil.a, anvil.month
    ref = _reference(a)
    arm, redo = CRASHES[crash]
    first = m.keeper(anvil.store())
    arm(first)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    assert len(m.settled_events()) == int(crash not in ("after-freeze", "after-clear"))
    store = anvil.store()
    report = m.keeper(store).close_auction(m.auction_id)
    assert report.done == redo
    assert report.skipped == skipped_on_restart(redo)
    result, state = check_closed(m, store)
    assert state == ref["state"]
    assert result["allocation_root"] == ref["result"]["allocation_root"]
    assert m.keeper(anvil.store()).close_auction(m.auction_id).done == []


def test_qev_serve_workers_read_controllers_from_the_chain(anvil: AnvilEnv, tmp_path: Path) -> None:
    """``qev serve --workers 2`` on anvil: bids are checked against the vault's requests."""
    import httpx

    from clearing.keyfiles import create_key, load_or_create_key
    from clearing.signing import Signer
    from qev.sdk import BidderClient, ServiceProblemError

    a, m = anvil.a, anvil.month
    port = _free_port()
    keys = tmp_path / "keys"
    create_key(keys / "master.key", "master secret")  # the service never creates it
    create_key(keys / "service.key", "receipt signing key")  # nor its receipt key
    env = {
        **os.environ,
        "QEV_RPC_URL": a.url,
        "QEV_VAULT": m.deployment.vault,
        "QEV_SETTLEMENT": m.deployment.settlement,
        "QEV_CHAIN_ID": str(CHAIN_ID),
        "QEV_GENESIS": str(m.genesis),
        "QEV_STORE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "QEV_SERVICE_KEY_FILE": str(keys / "service.key"),
        "QEV_MASTER_SECRET_FILE": str(keys / "master.key"),
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qev", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "qev serve did not become ready"
            time.sleep(0.1)
        service = Signer(load_or_create_key(keys / "service.key")).address
        rid = m.rids[0]
        # a new client (connection) each time, so the two workers' sockets both get some
        for holder in m.holders[1:9]:
            stranger = BidderClient(url, holder, service_address=service)
            with pytest.raises(ServiceProblemError) as refused:
                stranger.bid(rid, m.sizes[rid], 250)
            stranger.close()
            assert (refused.value.status, refused.value.code) == (403, "not_controller")
        owner = BidderClient(url, m.holders[0], service_address=service)
        submitted = owner.bid(rid, m.sizes[rid], 250)  # the receipt is verified by the SDK
        assert submitted.created and submitted.receipt.sequence == 1
        status = owner.status(submitted.receipt.auction_id, rid)
        owner.close()
        assert status["receipt"]["sequence"] == 1 and status["status"] == "live"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def test_readers_over_json_rpc_send_calls_as_they_are_and_match_the_views(
    anvil: AnvilEnv,
) -> None:
    """Over HTTP the readers send single calls and JSON-RPC batches without web3's call
    formatting; both give what the vault's and the settlement's views give one at a time,
    and a node's error is one ``ChainReadError``."""
    from clearing.errors import ChainReadError
    from keeper.chain import Chain

    m = anvil.month
    block = m.w3.eth.block_number
    index = m.chain.queue_info().index
    ids = [*range(1, index + 1), index + 5]
    expected = {}
    for rid in ids:
        controller, ts, pending = m.chain.vault.functions.qevRedemptionInfo(rid).call(
            block_identifier=block
        )
        nonce = m.chain.settlement.functions.nonce(m.auction_id, rid).call(block_identifier=block)
        expected[rid] = (bytes.fromhex(controller[2:]), int(ts), int(pending), int(nonce))
    assert any(e[0] != bytes(20) for e in expected.values())

    def read(per_call: int) -> tuple[dict[int, Any], int]:
        chain = Chain(m.w3, m.deployment.vault, m.deployment.settlement)
        assert chain.reader._raw  # an HTTP provider: raw JSON-RPC
        chain.reader.requests_per_call = per_call
        snap = chain.snapshot_requests(m.auction_id, ids, block)
        got = {
            r: (s.controller, s.redemption_timestamp, s.pending_shares, s.nonce)
            for r, s in snap.items()
        }
        return got, chain.reader.calls

    assert read(len(ids)) == (expected, 1)  # one call: sent alone
    assert read(2) == (expected, -(-len(ids) // 2))  # many: in JSON-RPC batches

    chain = Chain(m.w3, m.deployment.vault, m.deployment.settlement)
    with pytest.raises(ChainReadError, match="batched read failed"):
        chain.snapshot_requests(m.auction_id, ids, block + 10**6)  # a block anvil lacks
