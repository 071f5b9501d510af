"""TxSender against a real node: anvil from the npm package, loopback only, bounded in time."""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import TransactionNotFound

from keeper.errors import DeadlineExceededError, RpcUnavailableError
from keeper.fees import GWEI, FeePolicy
from keeper.tx import TxSender

from .conftest import ANVIL_CHAIN_ID, Anvil, FakeClock, deploy_token, free_port

pytestmark = pytest.mark.node

LOW_TIP = FeePolicy(min_priority_fee=1, max_priority_fee_cap=2 * GWEI)


def hx(value: Any) -> str:
    return "0x" + bytes(value).hex()


def sender_for(anvil: Anvil, clock: FakeClock, url: str | None = None, **kwargs: Any) -> TxSender:
    kwargs.setdefault("poll_interval", 1.0)
    kwargs.setdefault("deadline", 120.0)
    return TxSender(
        anvil.w3(url, timeout=kwargs.pop("timeout", 5.0)),
        kwargs.pop("account", None) or anvil.funded_account(),
        chain_id=ANVIL_CHAIN_ID,
        clock=clock.clock,
        sleep=clock.sleep,
        **kwargs,
    )


def pause(_: float) -> None:
    time.sleep(0.005)  # fake seconds pass instantly; give anvil a breath


def test_contract_call_with_confirmations(anvil: Anvil, fake_clock: FakeClock) -> None:
    w3 = anvil.w3()
    sender = sender_for(anvil, fake_clock, confirmations=3)
    token = deploy_token(w3, w3.eth.accounts[0], sender.address)
    fake_clock.on_sleep = lambda now: (anvil.rpc("evm_mine"), pause(now))  # type: ignore[func-returns-value]
    info = sender.send(token.functions.mint(w3.eth.accounts[1], 10**18), label="mint")
    assert token.functions.balanceOf(w3.eth.accounts[1]).call() == 10**18
    assert w3.eth.block_number >= info.block_number + 2  # included + 2 on top
    receipt = w3.eth.get_transaction_receipt(info.tx_hash)
    assert (receipt["status"], hx(receipt["blockHash"])) == (1, info.block_hash)
    assert info.effective_gas_price == receipt["effectiveGasPrice"]
    tx = w3.eth.get_transaction(info.tx_hash)
    assert tx["type"] == 2 and tx["chainId"] == ANVIL_CHAIN_ID
    # fees from eth_feeHistory: next base fee * 2 + tip
    assert tx["maxFeePerGas"] >= 2 * w3.eth.get_block(info.block_number)["baseFeePerGas"]


def test_plain_transfer_one_confirmation(anvil: Anvil, fake_clock: FakeClock) -> None:
    sender = sender_for(anvil, fake_clock)
    info = sender.send(("0x" + "22" * 20, b"", 12345), label="transfer")
    w3 = anvil.w3()
    assert w3.eth.get_balance("0x" + "22" * 20) == 12345
    assert info.gas_used == 21000
    assert fake_clock.sleeps == []  # automine: found on the first poll, nothing to wait for


class MempoolWatch:
    """Records the fees of every pending transaction seen while the sender sleeps."""

    def __init__(self, anvil: Anvil) -> None:
        self.anvil = anvil
        self.seen: dict[str, tuple[int, int, int, int]] = {}  # hash -> (nonce, maxFee, tip, gas)

    def snapshot(self) -> None:
        for by_nonce in self.anvil.rpc("txpool_content")["pending"].values():
            for tx in by_nonce.values():
                self.seen[tx["hash"]] = (
                    int(tx["nonce"], 16),
                    int(tx["maxFeePerGas"], 16),
                    int(tx["maxPriorityFeePerGas"], 16),
                    int(tx["gas"], 16),
                )


def test_stuck_transaction_replaced_with_fee_bump(anvil: Anvil, fake_clock: FakeClock) -> None:
    w3 = anvil.w3()
    sender = sender_for(anvil, fake_clock, fee_policy=LOW_TIP, stuck_after=3.0, deadline=60.0)
    anvil.rpc("evm_setAutomine", False)  # nothing is mined unless we say so
    watch = MempoolWatch(anvil)

    def on_sleep(now: float) -> None:
        watch.snapshot()
        if now >= 5.0:  # well after the first replacement (at 3 s)
            anvil.rpc("evm_mine")
        pause(now)

    fake_clock.on_sleep = on_sleep
    info = sender.send(("0x" + "33" * 20, b"", 1), label="stuck")
    first, *rest = info.sent_hashes
    assert info.replacements == len(rest) >= 1
    assert info.tx_hash == info.sent_hashes[-1] != first
    # the original sat in the pool with a low tip, and was dropped for the replacement
    nonce0, max_fee0, tip0, _ = watch.seen[first]
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(first)
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction(first)
    mined = w3.eth.get_transaction(info.tx_hash)
    assert mined["nonce"] == nonce0 == info.nonce
    assert mined["maxFeePerGas"] >= math.ceil(max_fee0 * 1.125)
    assert mined["maxPriorityFeePerGas"] >= math.ceil(tip0 * 1.125)
    assert w3.eth.get_transaction_count(sender.address) == 1


def test_unaffordable_bump_keeps_waiting_on_the_original(
    anvil: Anvil, fake_clock: FakeClock
) -> None:
    w3 = anvil.w3()
    sender = sender_for(anvil, fake_clock, fee_policy=LOW_TIP, stuck_after=2.0, deadline=60.0)
    anvil.rpc("evm_setAutomine", False)
    watch = MempoolWatch(anvil)

    def on_sleep(now: float) -> None:
        if not watch.seen:
            watch.snapshot()
            ((_, max_fee, _, gas),) = watch.seen.values()
            # exactly enough for the original (gas * max fee + 1 wei), not for a bump
            anvil.rpc("anvil_setBalance", sender.address, hex(gas * max_fee + 1))
        if now >= 6.0:
            anvil.rpc("evm_mine")
        pause(now)

    fake_clock.on_sleep = on_sleep
    info = sender.send(("0x" + "3a" * 20, b"", 1), label="tight")
    assert info.replacements == 0 and info.sent_hashes == (info.tx_hash,)
    assert info.tx_hash in watch.seen
    assert w3.eth.get_balance(Web3.to_checksum_address("0x" + "3a" * 20)) == 1


def test_deadline_then_next_send_reuses_the_nonce(anvil: Anvil, fake_clock: FakeClock) -> None:
    """A transaction given up on is superseded by the next send: only one of them lands."""
    w3 = anvil.w3()
    sender = sender_for(
        anvil, fake_clock, fee_policy=LOW_TIP, stuck_after=2.0, deadline=5.0, max_replacements=1
    )
    anvil.rpc("evm_setAutomine", False)
    fake_clock.on_sleep = pause
    with pytest.raises(DeadlineExceededError) as caught:
        sender.send(("0x" + "44" * 20, b"", 1), label="abandoned")
    assert caught.value.nonce == 0 and len(caught.value.tx_hashes) == 2
    assert sender.in_flight == {0: caught.value.tx_hashes}
    # still in the pool (automine stays off; the next poll mines whatever the pool holds)
    assert anvil.rpc("txpool_content")["pending"]
    fake_clock.on_sleep = lambda now: (anvil.rpc("evm_mine"), pause(now))  # type: ignore[func-returns-value]
    info = sender.send(("0x" + "55" * 20, b"", 2), label="next")
    assert info.nonce == 0
    assert w3.eth.get_balance("0x" + "55" * 20) == 2
    assert w3.eth.get_balance("0x" + "44" * 20) == 0  # the abandoned transfer never landed
    assert w3.eth.get_transaction_count(sender.address) == 1
    assert sender.in_flight == {}


def test_reorg_during_confirmations_reincludes(anvil: Anvil, fake_clock: FakeClock) -> None:
    w3 = anvil.w3()
    sender = sender_for(anvil, fake_clock, confirmations=3)
    state: dict[str, int] = {}

    def on_sleep(now: float) -> None:
        if "reorged" not in state and w3.eth.get_transaction_count(sender.address) == 1:
            head = w3.eth.block_number
            state.setdefault("included", head)
            if head > state["included"]:  # one block on top: drop both, re-mine empty ones
                anvil.rpc("anvil_reorg", head - state["included"] + 1, [])
                state["reorged"] = head
        anvil.rpc("evm_mine")
        pause(now)

    fake_clock.on_sleep = on_sleep
    info = sender.send(("0x" + "66" * 20, b"", 7), label="settle")
    assert "reorged" in state
    assert info.reorgs == 1
    assert info.sent_hashes == (info.tx_hash,)  # the same signed bytes, re-sent
    assert info.block_number > state["included"]
    receipt = w3.eth.get_transaction_receipt(info.tx_hash)
    assert hx(receipt["blockHash"]) == info.block_hash
    assert w3.eth.get_block(info.block_number)["hash"] == receipt["blockHash"]
    assert w3.eth.block_number >= info.block_number + 2
    assert w3.eth.get_balance("0x" + "66" * 20) == 7


def test_recheck_after_a_reorg_that_came_later(anvil: Anvil, fake_clock: FakeClock) -> None:
    w3 = anvil.w3()
    sender = sender_for(anvil, fake_clock)
    info = sender.send(("0x" + "77" * 20, b"", 3), label="settle")
    assert sender.recheck(info) == info  # nothing happened: unchanged
    anvil.rpc("evm_mine")
    anvil.rpc("anvil_reorg", w3.eth.block_number - info.block_number + 1, [])
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(info.tx_hash)
    again = sender.recheck(info)
    assert again.tx_hash == info.tx_hash and again.nonce == info.nonce
    assert again.block_hash != info.block_hash and again.reorgs == 1
    assert w3.eth.get_balance("0x" + "77" * 20) == 3


# --- RPC refused / timeouts ------------------------------------------------------------


class FlakyProxy:
    """Loopback TCP proxy to anvil: the first ``fail`` connections are dropped or stalled."""

    def __init__(self, target_port: int, fail: int, mode: str) -> None:
        self.target_port, self.fail, self.mode = target_port, fail, mode
        self.failed = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.held: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.failed < self.fail:
                self.failed += 1
                if self.mode == "drop":
                    client.close()  # the client sees a reset / closed connection
                else:
                    self.held.append(client)  # accepted, never answered: a read timeout
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for s in self.held:
            s.close()


@pytest.fixture
def proxies() -> Iterator[list[FlakyProxy]]:
    made: list[FlakyProxy] = []
    yield made
    for p in made:
        p.close()


@pytest.mark.parametrize("mode", ["drop", "stall"])
def test_refused_and_timed_out_rpc_retried(
    anvil: Anvil, fake_clock: FakeClock, proxies: list[FlakyProxy], mode: str
) -> None:
    proxy = FlakyProxy(anvil.port, fail=3, mode=mode)
    proxies.append(proxy)
    account = anvil.funded_account()
    sender = sender_for(anvil, fake_clock, url=proxy.url, account=account, timeout=0.5)
    fake_clock.on_sleep = pause
    info = sender.send_with_retry(("0x" + "88" * 20, b"", 5), label="retry", backoff=1.0)
    assert proxy.failed == 3
    assert fake_clock.sleeps[:3] == [1.0, 2.0, 4.0]
    assert info.nonce == 0
    assert anvil.w3().eth.get_balance("0x" + "88" * 20) == 5


def test_dead_port_gives_up_after_attempts(anvil: Anvil, fake_clock: FakeClock) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sender = sender_for(anvil, fake_clock, url=dead, timeout=0.5)
    with pytest.raises(RpcUnavailableError) as caught:
        sender.send_with_retry(("0x" + "99" * 20, b"", 1), attempts=4, backoff=0.5, max_backoff=1.0)
    assert caught.value.code == "rpc_unavailable"
    assert fake_clock.sleeps == [0.5, 1.0, 1.0]
