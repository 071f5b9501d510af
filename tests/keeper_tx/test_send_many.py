"""TxSender.send_many against anvil: several transactions in flight, gas scaled by size,
a revert in the middle leaves no nonce behind."""

from __future__ import annotations

from typing import Any

import pytest

from keeper.errors import SimulationRevertError
from keeper.tx import SCALED_GAS_MARGIN_BPS, TxSender

from .conftest import Anvil, FakeClock, deploy_token
from .test_anvil import pause, sender_for

pytestmark = pytest.mark.node
BPS = 10_000


def _mints(token: Any, to: list[str], amount: int) -> list[tuple[Any, str]]:
    return [(token.functions.mint(a, amount), f"mint {i}") for i, a in enumerate(to)]


def test_depth_transactions_in_flight_at_consecutive_nonces(
    anvil: Anvil, fake_clock: FakeClock
) -> None:
    w3 = anvil.w3()
    sender = sender_for(anvil, fake_clock)
    token = deploy_token(w3, w3.eth.accounts[0], sender.address)
    anvil.rpc("evm_setAutomine", False)
    pooled: list[int] = []

    def mine(now: float) -> None:  # each poll: note what waits in the pool, then mine it
        pooled.append(int(anvil.rpc("txpool_status")["pending"], 16))
        anvil.rpc("evm_mine")
        pause(now)

    fake_clock.on_sleep = mine
    holders = [f"0x{i:040x}" for i in range(1, 8)]
    start = w3.eth.get_transaction_count(sender.address)
    infos = sender.send_many(_mints(token, holders, 5 * 10**18), depth=3)
    assert [i.nonce for i in infos] == list(range(start, start + 7))
    assert [i.label for i in infos] == [f"mint {i}" for i in range(7)]
    assert max(pooled) == 3  # three in flight at once, never more
    for info in infos:
        receipt = w3.eth.get_transaction_receipt(info.tx_hash)
        assert receipt["status"] == 1
        assert "0x" + bytes(receipt["blockHash"]).hex() == info.block_hash
    assert [token.functions.balanceOf(h).call() for h in holders] == [5 * 10**18] * 7
    assert sender.in_flight == {}


def test_scaled_gas_estimates_every_nth_call_only(anvil: Anvil, fake_clock: FakeClock) -> None:
    w3 = anvil.w3()
    sender = sender_for(anvil, fake_clock)
    token = deploy_token(w3, w3.eth.accounts[0], sender.address)
    fake_clock.on_sleep = pause
    estimates: list[int] = []
    real = TxSender.estimate_gas

    def counting(self: TxSender, call: Any, *, value: int = 0) -> int:
        gas = real(self, call, value=value)
        estimates.append(gas)
        return gas

    sender.estimate_gas = counting.__get__(sender)  # type: ignore[method-assign]
    holders = [f"0x{i:040x}" for i in range(0x100, 0x105)]
    sizes = [1, 2, 3, 4, 5]
    calls = _mints(token, holders, 10**18)
    infos = sender.send_many(calls, depth=3, sizes=sizes, estimate_every=2)
    assert len(estimates) == 3  # calls 0, 2 and 4
    gas = [int(w3.eth.get_transaction(i.tx_hash)["gas"]) for i in infos]
    assert gas[0] == estimates[0] and gas[2] == estimates[1] and gas[4] == estimates[2]
    unit = -(-estimates[0] // 1)  # the largest gas per unit seen before call 1
    assert gas[1] == -(-unit * 2 * (BPS + SCALED_GAS_MARGIN_BPS) // BPS)
    unit = max(unit, -(-estimates[1] // 3))
    assert gas[3] == -(-unit * 4 * (BPS + SCALED_GAS_MARGIN_BPS) // BPS)
    assert all(w3.eth.get_transaction_receipt(i.tx_hash)["status"] == 1 for i in infos)


def test_a_revert_in_the_middle_lands_what_was_sent_and_raises(
    anvil: Anvil, fake_clock: FakeClock
) -> None:
    w3 = anvil.w3()
    sender = sender_for(anvil, fake_clock)
    token = deploy_token(w3, w3.eth.accounts[0], sender.address)
    anvil.rpc("evm_setAutomine", False)
    fake_clock.on_sleep = lambda now: (anvil.rpc("evm_mine"), pause(now))  # type: ignore[func-returns-value]
    calls = _mints(token, ["0x" + "11" * 20, "0x" + "22" * 20], 10**18)
    stranger = token.functions.transfer("0x" + "33" * 20, 1)  # the sender holds no token yet
    calls.insert(2, (stranger, "transfer"))
    calls.append((token.functions.mint("0x" + "44" * 20, 10**18), "late mint"))
    start = w3.eth.get_transaction_count(sender.address)
    with pytest.raises(SimulationRevertError):
        sender.send_many(calls, depth=4)
    assert sender.in_flight == {}  # the two sent before the revert were waited for
    assert w3.eth.get_transaction_count(sender.address) == start + 2
    assert token.functions.balanceOf("0x" + "22" * 20).call() == 10**18
    assert token.functions.balanceOf("0x" + "44" * 20).call() == 0  # never sent
