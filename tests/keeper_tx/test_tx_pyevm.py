"""TxSender against py-evm in process (EthereumTesterProvider): no sockets at all."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from keeper.errors import (
    ChainIdMismatchError,
    InsufficientFundsError,
    RetryableError,
    RevertedOnChainError,
    RpcUnavailableError,
    SimulationRevertError,
)
from keeper.fees import GWEI, FeePolicy, Fees
from keeper.tx import TxReceiptInfo, TxRequest, TxSender, log_context, log_fields

from .conftest import Chain, FakeClock

pytestmark = pytest.mark.usefixtures("no_sockets")


def make_sender(chain: Chain, clock: FakeClock, **kwargs: Any) -> TxSender:
    kwargs.setdefault("poll_interval", 0.5)
    return TxSender(
        chain.w3,
        chain.account,
        chain_id=chain.w3.eth.chain_id,
        clock=clock.clock,
        sleep=clock.sleep,
        **kwargs,
    )


def test_contract_call_confirmed(chain: Chain, fake_clock: FakeClock) -> None:
    sender = make_sender(chain, fake_clock)
    info = sender.send(chain.token.functions.mint(chain.other, 5), label="mint")
    assert isinstance(info, TxReceiptInfo)
    assert chain.token.functions.balanceOf(chain.other).call() == 5
    receipt = chain.w3.eth.get_transaction_receipt(info.tx_hash)
    assert info.block_number == receipt["blockNumber"]
    assert info.block_hash == "0x" + bytes(receipt["blockHash"]).hex()
    assert info.gas_used == receipt["gasUsed"]
    assert info.effective_gas_price == receipt["effectiveGasPrice"]
    assert (info.nonce, info.replacements, info.reorgs) == (0, 0, 0)
    assert info.sent_hashes == (info.tx_hash,)
    assert sender.in_flight == {}
    assert "raw_transaction" not in repr(info)


def test_simulation_revert_never_sends(chain: Chain, fake_clock: FakeClock) -> None:
    sender = make_sender(chain, fake_clock)
    head = chain.w3.eth.block_number
    with pytest.raises(SimulationRevertError) as caught:
        # the sender holds no tokens: ERC20InsufficientBalance(sender, 0, 5)
        sender.send(chain.token.functions.transfer(chain.other, 5), label="transfer")
    err = caught.value
    assert err.error_name == "ERC20InsufficientBalance"
    assert err.selector == "0xe450d38c"
    assert err.code == "simulation_reverted"
    assert chain.account.address in err.reason
    assert chain.w3.eth.get_transaction_count(chain.account.address, "pending") == 0
    assert chain.w3.eth.block_number == head
    assert sender.in_flight == {}


def test_gas_margin_applied(chain: Chain, fake_clock: FakeClock) -> None:
    sender = make_sender(chain, fake_clock, gas_margin_bps=2000)
    call = chain.token.functions.mint(chain.other, 7)
    estimate = chain.w3.eth.estimate_gas(
        {
            "from": chain.account.address,
            "to": chain.token.address,
            "data": call._encode_transaction_data(),
        }
    )
    info = sender.send(call, label="mint")
    tx = chain.w3.eth.get_transaction(info.tx_hash)
    assert tx["gas"] == -(-estimate * 12_000 // 10_000)
    assert info.gas_used <= estimate < tx["gas"]


def test_fee_fallback_without_fee_history(chain: Chain, fake_clock: FakeClock) -> None:
    # eth-tester answers eth_feeHistory with empty lists: latest base fee * 2 + node tip
    policy = FeePolicy(min_priority_fee=1, max_priority_fee_cap=3 * GWEI)
    sender = make_sender(chain, fake_clock, fee_policy=policy)
    base = chain.w3.eth.get_block("latest")["baseFeePerGas"]
    tip = min(chain.w3.eth.max_priority_fee, 3 * GWEI)
    assert sender.suggest_fees() == Fees(2 * base + tip, tip)
    info = sender.send((chain.other, b"", 123), label="transfer")
    tx = chain.w3.eth.get_transaction(info.tx_hash)
    assert tx["type"] == 2
    assert tx["maxPriorityFeePerGas"] == tip
    assert tx["maxFeePerGas"] == 2 * base + tip
    assert chain.w3.eth.get_balance(chain.other) == 123


class FakeEth:
    """Just enough of ``w3.eth`` for suggest_fees."""

    def __init__(self, history: Any) -> None:
        self.history = history

    def fee_history(self, count: int, newest: str, percentiles: list[float]) -> Any:
        if isinstance(self.history, Exception):
            raise self.history
        assert (count, newest, percentiles) == (10, "latest", [50.0])
        return self.history

    def get_block(self, ident: str) -> dict[str, int]:
        return {"baseFeePerGas": 7 * GWEI}

    @property
    def max_priority_fee(self) -> int:
        return 2 * GWEI


class FakeW3:
    def __init__(self, history: Any) -> None:
        self.eth = FakeEth(history)


def test_fees_from_fee_history(fake_clock: FakeClock) -> None:
    history = {
        "baseFeePerGas": [GWEI, 2 * GWEI, 3 * GWEI],
        "gasUsedRatio": [0.4, 0.6],
        "reward": [[GWEI], [3 * GWEI]],
    }
    sender = TxSender(FakeW3(history), Account.create(), chain_id=1)  # type: ignore[arg-type]
    assert sender.suggest_fees() == Fees(6 * GWEI + GWEI, GWEI)  # median_low of [1, 3] gwei
    capped = TxSender(FakeW3(history), Account.create(), chain_id=1, max_priority_fee_cap=GWEI // 2)  # type: ignore[arg-type]
    assert capped.suggest_fees() == Fees(6 * GWEI + GWEI // 2, GWEI // 2)


def test_fee_history_unsupported_falls_back(fake_clock: FakeClock) -> None:
    from web3.exceptions import MethodUnavailable

    sender = TxSender(FakeW3(MethodUnavailable("no feeHistory")), Account.create(), chain_id=1)  # type: ignore[arg-type]
    assert sender.suggest_fees() == Fees(14 * GWEI + 2 * GWEI, 2 * GWEI)
    down = TxSender(FakeW3(ConnectionRefusedError("down")), Account.create(), chain_id=1)  # type: ignore[arg-type]
    with pytest.raises(RpcUnavailableError):
        down.suggest_fees()


def test_chain_id_mismatch_sends_nothing(chain: Chain, fake_clock: FakeClock) -> None:
    sender = TxSender(
        chain.w3, chain.account, chain_id=1, clock=fake_clock.clock, sleep=fake_clock.sleep
    )
    with pytest.raises(ChainIdMismatchError):
        sender.send(chain.token.functions.mint(chain.other, 1))
    assert chain.w3.eth.get_transaction_count(chain.account.address) == 0


def test_insufficient_funds_is_fatal(chain: Chain, fake_clock: FakeClock) -> None:
    sender = make_sender(chain, fake_clock)
    with pytest.raises(InsufficientFundsError):
        sender.send((chain.other, b"", 10**30), label="too much")
    assert sender.in_flight == {}


def test_status_zero_receipt_is_fatal(
    chain: Chain, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = make_sender(chain, fake_clock)
    # bypass the pre-flight checks to get a revert mined on-chain
    monkeypatch.setattr(sender, "simulate", lambda *a, **k: b"")
    monkeypatch.setattr(sender, "estimate_gas", lambda *a, **k: 100_000)
    with pytest.raises(RevertedOnChainError) as caught:
        sender.send(chain.token.functions.transfer(chain.other, 5), label="transfer")
    assert caught.value.code == "reverted_onchain"
    receipt = chain.w3.eth.get_transaction_receipt(caught.value.tx_hash)
    assert receipt["status"] == 0
    assert sender.in_flight == {}


def test_fee_bump_below_12_5_percent_refused(chain: Chain) -> None:
    with pytest.raises(ValueError, match=r"12\.5"):
        TxSender(chain.w3, chain.account, chain_id=1, fee_bump_bps=1000)


def test_send_with_retry_backoff(
    chain: Chain, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = make_sender(chain, fake_clock)
    real_send = sender.send
    failures = iter([RpcUnavailableError("refused")] * 5)

    def flaky(*args: Any, **kwargs: Any) -> TxReceiptInfo:
        err = next(failures, None)
        if err is not None:
            raise err
        return real_send(*args, **kwargs)

    monkeypatch.setattr(sender, "send", flaky)
    info = sender.send_with_retry(
        chain.token.functions.mint(chain.other, 1),
        label="mint",
        attempts=6,
        backoff=1.0,
        max_backoff=4.0,
    )
    assert fake_clock.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, capped
    assert info.nonce == 0


def test_send_with_retry_gives_up_and_does_not_retry_fatal(
    chain: Chain, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = make_sender(chain, fake_clock)
    monkeypatch.setattr(
        sender, "send", lambda *a, **k: (_ for _ in ()).throw(RpcUnavailableError("x"))
    )
    with pytest.raises(RpcUnavailableError):
        sender.send_with_retry(TxRequest(chain.other), attempts=3, backoff=0.5)
    assert fake_clock.sleeps == [0.5, 1.0]
    fake_clock.sleeps.clear()
    with pytest.raises(SimulationRevertError):
        make_sender(chain, fake_clock).send_with_retry(
            chain.token.functions.transfer(chain.other, 5), attempts=3
        )
    assert fake_clock.sleeps == []


class FlakyProvider(EthereumTesterProvider):
    """The same in-process chain, but chosen requests fail with a connection error."""

    def __init__(self, chain: Chain) -> None:
        super().__init__(ethereum_tester=chain.w3.provider.ethereum_tester)  # type: ignore[attr-defined]
        self.refuse_next = 0  # refuse this many requests before they reach the chain
        self.lose_response_of: set[str] = set()  # forward once, then raise (lost response)
        self.calls: list[str] = []

    def make_request(self, method: Any, params: Any) -> Any:
        self.calls.append(method)
        if self.refuse_next > 0:
            self.refuse_next -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        response = super().make_request(method, params)
        if method in self.lose_response_of:
            self.lose_response_of.discard(method)
            raise TimeoutError("read timed out")
        return response


def test_refused_rpc_retried(chain: Chain, fake_clock: FakeClock) -> None:
    flaky = FlakyProvider(chain)
    w3 = Web3(flaky)
    sender = TxSender(
        w3,
        chain.account,
        chain_id=chain.w3.eth.chain_id,
        clock=fake_clock.clock,
        sleep=fake_clock.sleep,
    )
    flaky.refuse_next = 3
    info = sender.send_with_retry(
        chain.token.functions.mint(chain.other, 9), label="mint", backoff=0.25
    )
    assert fake_clock.sleeps[:3] == [0.25, 0.5, 1.0]
    assert info.nonce == 0
    assert chain.token.functions.balanceOf(chain.other).call() == 9


def test_lost_response_retry_resimulates_and_surfaces_done_step(
    chain: Chain, fake_clock: FakeClock
) -> None:
    """The send reached the node but its answer was lost; the retry re-simulates first.

    Burning the whole balance twice reverts, so the retry reports the revert instead of
    sending a duplicate: the caller reads it as "already done".
    """
    sender0 = TxSender(chain.w3, chain.account, chain_id=chain.w3.eth.chain_id)
    sender0.send(chain.token.functions.mint(chain.account.address, 5), label="mint")
    flaky = FlakyProvider(chain)
    sender = TxSender(
        Web3(flaky),
        chain.account,
        chain_id=chain.w3.eth.chain_id,
        clock=fake_clock.clock,
        sleep=fake_clock.sleep,
    )
    flaky.lose_response_of = {"eth_sendRawTransaction"}
    with pytest.raises(SimulationRevertError) as caught:
        sender.send_with_retry(
            chain.token.functions.burn(chain.account.address, 5), label="burn", backoff=1.0
        )
    assert caught.value.error_name == "ERC20InsufficientBalance"
    assert fake_clock.sleeps[0] == 1.0
    assert flaky.calls.count("eth_sendRawTransaction") == 1
    assert chain.token.functions.balanceOf(chain.account.address).call() == 0
    assert chain.w3.eth.get_transaction_count(chain.account.address) == 2  # mint + one burn


def test_retryable_error_is_qev_error() -> None:
    from clearing.errors import QevError

    assert issubclass(RetryableError, QevError)


def test_progress_records_while_confirming(
    chain: Chain, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Three confirmations, a block every 15 s or so: a record at send and one every 10 s,
    each with the hash, nonce, lane, confirmations had and needed, the seconds waited, and
    the caller's log context; the pending age grows meanwhile and is 0 once confirmed."""
    tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    sender = make_sender(chain, fake_clock, confirmations=3, poll_interval=1.0, lane="urgent")
    ages: list[float] = []

    def on_sleep(now: float) -> None:
        ages.append(sender.oldest_pending_age())
        if now in (14.0, 24.0):
            tester.mine_blocks(1)

    fake_clock.on_sleep = on_sleep
    caplog.set_level(logging.INFO, logger="qev.keeper.tx")
    with log_context(auction_id=1_767_225_600, duty="close"):
        info = sender.send(chain.token.functions.mint(chain.other, 5), label="mint")
    waits = [r for r in caplog.records if r.getMessage().startswith("waiting for confirmations")]
    assert [(r.confirmations, r.needed, r.waited_s) for r in waits] == [  # type: ignore[attr-defined]
        (0, 3, 0.0),  # at send
        (1, 3, 10.0),  # mined at once, one block
        (2, 3, 20.0),
    ]
    for r in waits:
        assert (r.name, r.levelno) == ("qev.keeper.tx", logging.INFO)
        assert (r.tx_hash, r.nonce, r.lane, r.label) == (info.tx_hash, 0, "urgent", "mint")  # type: ignore[attr-defined]
        assert (r.auction_id, r.duty) == (1_767_225_600, "close")  # type: ignore[attr-defined]
    assert waits[2].getMessage() == (
        f"waiting for confirmations 2/3 after 20 s: mint {info.tx_hash} nonce=0"
    )
    assert fake_clock.now == 25.0  # confirmed at the third block
    assert ages[0] == 0.0 and ages[-1] == 24.0  # since the broadcast, by the sender's clock
    assert sender.oldest_pending_age() == 0.0  # nothing in flight any more
    (done,) = [r for r in caplog.records if "confirmed" in r.getMessage()]
    assert (done.auction_id, done.lane, done.tx_hash) == (1_767_225_600, "urgent", info.tx_hash)  # type: ignore[attr-defined]


def test_context_outside_log_context_is_empty(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="qev.keeper.tx")
    logging.getLogger("qev.keeper.tx").info("plain")
    with log_context(auction_id=5, duty="open"), log_context(duty="close"):
        logging.getLogger("qev.keeper.tx").info("inner")
        assert log_fields(step="x") == {"auction_id": 5, "duty": "close", "step": "x"}
    plain, inner = caplog.records
    assert not hasattr(plain, "auction_id")
    assert (inner.auction_id, inner.duty) == (5, "close")  # type: ignore[attr-defined]
    assert log_fields() == {}
