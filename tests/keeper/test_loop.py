"""The keeper loop on py-evm: one tick opens the current auction and closes the past one; the
loop counts a failed RPC as retryable and carries on."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from clearing.calendar import AuctionCalendar
from clearing.hashing import keccak256
from clearing.sealing import derive_auction_secret, public_key_of
from keeper.jobs import Keeper
from keeper.loop import KeeperMetrics, run, tick
from qev.errors import ChainReadError

from .conftest import Env
from .month import MASTER, PUBLIC_KEY, W, check_closed

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
