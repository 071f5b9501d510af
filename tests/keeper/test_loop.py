"""The keeper loop on py-evm: one tick opens the current auction and closes the past one; the
loop counts a failed RPC as retryable and carries on; its gauges (lane balances, pending
transaction age, next close, close steps and duration) and its log records (auction, duty,
progress while a transaction waits, next close) after a tick."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import pytest

from clearing.calendar import AuctionCalendar
from clearing.errors import ChainReadError
from clearing.hashing import keccak256
from clearing.sealing import derive_auction_secret, public_key_of
from keeper.jobs import Keeper
from keeper.loop import KeeperMetrics, run, tick
from keeper.senders import make_sender

from .conftest import Env
from .month import MASTER, PUBLIC_KEY, STEPS, W, check_closed

POLL = 60.0


def sample(metrics: KeeperMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def assert_next_auction_opened(env: Env, keeper: Keeper) -> None:
    m = env.month
    nxt = m.auction_id + W
    secret = derive_auction_secret(MASTER, nxt)
    state = m.chain.key_state(nxt)
    assert (state.public_key, state.commitment, state.revealed) == (
        public_key_of(secret),
        keccak256(secret),
        False,
    )
    assert keeper.store.get_artifact(nxt, PUBLIC_KEY) == public_key_of(secret)


def test_tick_opens_the_current_auction_and_closes_the_past_one(env: Env) -> None:
    m = env.month
    calendar = AuctionCalendar(m.genesis)
    keeper = m.keeper(env.store())
    assert not m.chain.key_state(m.auction_id + W).committed
    assert keeper.pending_closes(m.genesis, W) == [m.auction_id]

    assert tick(keeper, calendar, lookback=3) == [m.auction_id]
    assert_next_auction_opened(env, keeper)
    check_closed(m, keeper.store)
    assert keeper.pending_closes(m.genesis, W) == []

    # the next tick has nothing to do: the key is committed, the close is done
    blocks = m.w3.eth.block_number
    assert tick(keeper, calendar, lookback=3) == []
    assert m.w3.eth.block_number == blocks  # not one transaction sent


class FlakyLatestBlock:
    """``Chain.latest_block`` whose first call made from function ``caller`` fails."""

    def __init__(self, real: Any, caller: str) -> None:
        self.real, self.caller, self.failed = real, caller, 0

    def __call__(self) -> tuple[int, int]:
        if not self.failed and sys._getframe(1).f_code.co_name == self.caller:
            self.failed += 1
            raise ChainReadError("get_block failed: connection refused")
        result: tuple[int, int] = self.real()
        return result


def test_run_counts_a_failed_rpc_and_carries_on(env: Env) -> None:
    m = env.month
    keeper = m.keeper(env.store())
    flaky = FlakyLatestBlock(keeper.chain.latest_block, "tick")  # the very first read
    keeper.chain.latest_block = flaky  # type: ignore[method-assign]
    metrics = KeeperMetrics()
    sleeps: list[float] = []
    run(
        keeper,
        AuctionCalendar(m.genesis),
        poll_seconds=POLL,
        lookback=3,
        metrics=metrics,
        sleep=sleeps.append,
        iterations=2,
    )
    assert sample(metrics, "qev_keeper_ticks_total") == 2
    assert sample(metrics, "qev_keeper_errors_total", code="chain_unavailable") == 1
    assert sample(metrics, "qev_keeper_closes_total") == 1
    assert sample(metrics, "qev_keeper_last_success_timestamp") > 0
    assert flaky.failed == 1
    assert sleeps == [POLL, POLL]  # the next boundary is a month away: poll
    assert_next_auction_opened(env, keeper)
    check_closed(m, keeper.store)


def test_run_survives_an_rpc_failure_while_computing_the_sleep(env: Env) -> None:
    m = env.month
    keeper = m.keeper(env.store())
    # the read run() makes after the tick, to compute how long to sleep
    keeper.chain.latest_block = FlakyLatestBlock(keeper.chain.latest_block, "run")  # type: ignore[method-assign]
    metrics = KeeperMetrics()
    sleeps: list[float] = []
    run(
        keeper,
        AuctionCalendar(m.genesis),
        poll_seconds=POLL,
        lookback=3,
        metrics=metrics,
        sleep=sleeps.append,
        iterations=2,
    )
    assert sample(metrics, "qev_keeper_errors_total", code="chain_unavailable") == 1
    assert sample(metrics, "qev_keeper_closes_total") == 1


class RefusedOnce:
    """The node refuses the first ``eth_call`` of ``selector`` (connection refused)."""

    def __init__(self, provider: Any, selector: str) -> None:
        self.inner, self.selector, self.fired = provider.make_request, selector, False

    def __call__(self, method: Any, params: Any) -> Any:
        if (
            method == "eth_call"
            and not self.fired
            and str(params[0].get("data", "")).startswith(self.selector)
        ):
            self.fired = True
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        return self.inner(method, params)


def test_run_survives_a_refused_rpc_inside_the_close(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = env.month
    keeper = m.keeper(env.store())
    selector = "0x" + keccak256(b"adminFeeBps()")[:4].hex()
    refused = RefusedOnce(m.w3.provider, selector)
    monkeypatch.setattr(m.w3.provider, "make_request", refused)
    monkeypatch.setattr(m.w3.provider, "_request_func_cache", (None, None))  # web3 caches it
    metrics = KeeperMetrics()
    run(
        keeper,
        AuctionCalendar(m.genesis),
        poll_seconds=POLL,
        lookback=3,
        metrics=metrics,
        sleep=lambda _: None,
        iterations=2,
    )
    assert refused.fired
    assert sample(metrics, "qev_keeper_errors_total", code="chain_unavailable") == 1
    assert sample(metrics, "qev_keeper_closes_total") == 1


# --- gauges and log records -------------------------------------------------------------


def records(caplog: pytest.LogCaptureFixture, start: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(start)]


def test_run_exports_gauges_and_logs_each_duty(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    m = env.month
    jobs_log = logging.getLogger("qev.keeper")
    keeper = m.keeper(env.store(), log=jobs_log.info)  # as keeper.factory wires it
    metrics = KeeperMetrics()
    caplog.set_level(logging.INFO, logger="qev.keeper")
    started = time.time()
    run(
        keeper,
        AuctionCalendar(m.genesis),
        poll_seconds=POLL,
        lookback=3,
        metrics=metrics,
        sleep=lambda _: None,
        iterations=1,
    )
    finished = time.time()
    check_closed(m, keeper.store)
    t, nxt = m.auction_id, m.auction_id + W

    # lanes named after the keeper's attributes; balances read after the tick
    assert (keeper.urgent.lane, keeper.housekeeping.lane) == ("urgent", "housekeeping")  # type: ignore[attr-defined]
    for lane, account in (("urgent", m.urgent_account), ("housekeeping", m.house_account)):
        balance = m.w3.eth.get_balance(account.address)
        assert 0 < balance < 10**24
        assert sample(metrics, "qev_keeper_account_balance_wei", lane=lane) == float(balance)
        assert sample(metrics, "qev_keeper_oldest_pending_tx_age_seconds", lane=lane) == 0.0
    assert sample(metrics, "qev_keeper_next_close_timestamp") == nxt

    # every close step, in order, between the start and the end of the run
    at = [sample(metrics, "qev_keeper_close_step_timestamp", auction=str(t), step=s) for s in STEPS]
    assert started <= at[0] and at == sorted(at) and at[-1] <= finished
    assert sample(metrics, "qev_keeper_close_duration_seconds_count") == 1
    duration = sample(metrics, "qev_keeper_close_duration_seconds_sum")
    assert 0 < duration <= at[-1] - started
    assert sample(metrics, "qev_keeper_close_duration_seconds_bucket", le="+Inf") == 1

    # log records: each duty's records carry the auction and the duty, the lane for a tx
    (commit,) = [r for r in records(caplog, "commitAuctionKey") if "sending" in r.getMessage()]
    assert (commit.auction_id, commit.duty, commit.lane) == (nxt, "open", "urgent")  # type: ignore[attr-defined]
    frozen = records(caplog, f"auction {t}: book frozen")
    assert [(r.name, r.auction_id, r.duty) for r in frozen] == [("qev.keeper", t, "close")]  # type: ignore[attr-defined]
    waits = records(caplog, "waiting for confirmations")
    lanes = {r.lane for r in waits}  # type: ignore[attr-defined]
    assert lanes == {"urgent", "housekeeping"}
    close_waits = [r for r in waits if r.auction_id == t]  # type: ignore[attr-defined]
    # commitBook, settle, claims, queue, reveal: one record each, at send (py-evm mines at once)
    assert len(close_waits) == 5
    for r in close_waits:
        assert r.name == "qev.keeper.tx" and r.levelno == logging.INFO
        assert (r.duty, r.confirmations, r.needed, r.waited_s) == ("close", 0, 1, 0.0)  # type: ignore[attr-defined]
        assert r.tx_hash.startswith("0x") and isinstance(r.nonce, int)  # type: ignore[attr-defined]
    (closed,) = records(caplog, f"auction {t} closed in")
    assert (closed.auction_id, closed.duty, closed.done) == (t, "close", STEPS)  # type: ignore[attr-defined]
    (nxt_log,) = records(caplog, "next close")
    _, now = m.chain.latest_block()
    assert (nxt_log.auction_id, nxt_log.at, nxt_log.in_s) == (nxt, nxt, nxt - now)  # type: ignore[attr-defined]


class FakeClock:
    """Monotonic time that moves only when the senders sleep (no test sleeps for real)."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_stuck_transaction_shows_its_age_and_progress(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """The node stops mining: the key commitment waits, says so every 10 s, hits its
    deadline; the age gauge shows how long it has been out. Mining again, the next run
    finds it mined and closes the auction."""
    m = env.month
    fake = FakeClock()

    def lane(account: Any) -> Any:
        return make_sender(
            m.w3, account, poll_interval=1.0, deadline=25, clock=fake.clock, sleep=fake.sleep
        )

    keeper = m.keeper(env.store(), urgent=lane(m.urgent_account), house=lane(m.house_account))
    metrics = KeeperMetrics()
    caplog.set_level(logging.INFO, logger="qev.keeper")
    calendar = AuctionCalendar(m.genesis)
    env.tester.disable_auto_mine_transactions()
    try:
        run(keeper, calendar, poll_seconds=POLL, lookback=3, metrics=metrics,
            sleep=lambda _: None, iterations=1)  # fmt: skip
        assert sample(metrics, "qev_keeper_errors_total", code="deadline_exceeded") == 1
        assert sample(metrics, "qev_keeper_closes_total") == 0
        age = sample(metrics, "qev_keeper_oldest_pending_tx_age_seconds", lane="urgent")
        assert age == fake.now == 25.0
        assert sample(metrics, "qev_keeper_oldest_pending_tx_age_seconds", lane="housekeeping") == 0
        fake.now += 100  # the gauge is read at scrape time: it keeps growing
        age = sample(metrics, "qev_keeper_oldest_pending_tx_age_seconds", lane="urgent")
        assert age == 125.0

        nxt = m.auction_id + W
        waits = records(caplog, "waiting for confirmations")
        (sent,) = [r for r in records(caplog, "commitAuctionKey") if "sending" in r.getMessage()]
        assert [(r.waited_s, r.confirmations, r.needed) for r in waits] == [  # type: ignore[attr-defined]
            (0.0, 0, 1),
            (10.0, 0, 1),
            (20.0, 0, 1),
        ]
        for r in waits:
            assert (r.name, r.levelno, r.lane) == ("qev.keeper.tx", logging.INFO, "urgent")  # type: ignore[attr-defined]
            assert (r.tx_hash, r.nonce) == (sent.tx_hash, sent.nonce)  # type: ignore[attr-defined]
            assert (r.auction_id, r.duty) == (nxt, "open")  # type: ignore[attr-defined]
        assert waits[1].getMessage() == (
            f"waiting for confirmations 0/1 after 10 s: commitAuctionKey({nxt}) "
            f"{sent.tx_hash} nonce={sent.nonce}"  # type: ignore[attr-defined]
        )
        (failed,) = records(caplog, "needs attention")
        assert (failed.auction_id, failed.duty, failed.code) == (nxt, "open", "deadline_exceeded")  # type: ignore[attr-defined]
    finally:
        env.tester.enable_auto_mine_transactions()  # mines the waiting commitment

    run(keeper, calendar, poll_seconds=POLL, lookback=3, metrics=metrics,
        sleep=lambda _: None, iterations=1)  # fmt: skip
    assert sample(metrics, "qev_keeper_closes_total") == 1
    assert sample(metrics, "qev_keeper_oldest_pending_tx_age_seconds", lane="urgent") == 0
    assert_next_auction_opened(env, keeper)
    check_closed(m, keeper.store)
