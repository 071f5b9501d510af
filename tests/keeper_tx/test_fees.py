"""EIP-1559 fees from a fake fee history, and replacement bumps (pure, no network)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keeper.fees import GWEI, FeePolicy, Fees, bump, fees_from_history

pytestmark = pytest.mark.usefixtures("no_sockets")

POLICY = FeePolicy(min_priority_fee=1, max_priority_fee_cap=50 * GWEI)


def history(base: list[int], rewards: list[int], ratios: list[float]) -> dict[str, object]:
    return {
        "oldestBlock": 100,
        "baseFeePerGas": base,
        "gasUsedRatio": ratios,
        "reward": [[r] for r in rewards],
    }


def test_next_base_fee_times_two_plus_median_tip() -> None:
    h = history(
        [10 * GWEI, 11 * GWEI, 12 * GWEI, 13 * GWEI], [1 * GWEI, 3 * GWEI, 2 * GWEI], [0.5] * 3
    )
    fees = fees_from_history(h, POLICY)
    # the last base fee is the next block's; tip = median of the rewards
    assert fees == Fees(2 * 13 * GWEI + 2 * GWEI, 2 * GWEI)


def test_empty_blocks_ignored_for_tip() -> None:
    h = history([GWEI] * 4, [0, 7 * GWEI, 0], [0.0, 0.9, 0.0])
    assert fees_from_history(h, POLICY) == Fees(2 * GWEI + 7 * GWEI, 7 * GWEI)


def test_tip_floor_and_caps() -> None:
    quiet = history([GWEI] * 3, [0, 0], [0.0, 0.0])
    policy = FeePolicy(min_priority_fee=GWEI // 10, max_priority_fee_cap=2 * GWEI)
    assert fees_from_history(quiet, policy) == Fees(2 * GWEI + GWEI // 10, GWEI // 10)
    hot = history([GWEI] * 3, [90 * GWEI, 80 * GWEI], [1.0, 1.0])
    assert fees_from_history(hot, policy) == Fees(4 * GWEI, 2 * GWEI)
    capped = FeePolicy(min_priority_fee=0, max_priority_fee_cap=2 * GWEI, max_fee_cap=3 * GWEI)
    assert fees_from_history(hot, capped) == Fees(3 * GWEI, 2 * GWEI)


def test_missing_history_gives_none() -> None:
    assert fees_from_history({"baseFeePerGas": [], "reward": []}, POLICY) is None
    assert fees_from_history({}, POLICY) is None


def test_bump_raises_both_fields_by_at_least_12_5_percent() -> None:
    assert bump(Fees(100, 8), 1250, POLICY) == Fees(113, 9)
    assert bump(Fees(0, 0), 1250, POLICY) == Fees(1, 1)  # strictly higher even from zero


def test_bump_refused_beyond_caps() -> None:
    assert bump(Fees(10 * GWEI, 2 * GWEI), 1250, FeePolicy(max_priority_fee_cap=2 * GWEI)) is None
    capped = FeePolicy(max_priority_fee_cap=50 * GWEI, max_fee_cap=10 * GWEI)
    assert bump(Fees(10 * GWEI, GWEI), 1250, capped) is None


def test_policy_rejects_floor_above_cap() -> None:
    with pytest.raises(ValueError, match="min_priority_fee"):
        FeePolicy(min_priority_fee=2, max_priority_fee_cap=1)


@given(
    max_fee=st.integers(0, 10**15),
    tip=st.integers(0, 10**15),
    bps=st.integers(1250, 10_000),
)
def test_bump_property(max_fee: int, tip: int, bps: int) -> None:
    tip = min(tip, max_fee)
    policy = FeePolicy(min_priority_fee=0, max_priority_fee_cap=10**18)
    new = bump(Fees(max_fee, tip), bps, policy)
    assert new is not None
    # geth's replacement rule, in integers: new * 10000 >= old * (10000 + bps), on both
    assert new.max_fee_per_gas * 10_000 >= max_fee * (10_000 + bps)
    assert new.max_priority_fee_per_gas * 10_000 >= tip * (10_000 + bps)
    assert new.max_fee_per_gas > max_fee and new.max_priority_fee_per_gas > tip
    assert new.max_priority_fee_per_gas <= new.max_fee_per_gas


def test_nonstandard_history_shape_falls_back() -> None:
    # eth-tester lists base fees newest first and without the next block's: not trusted
    h = {"baseFeePerGas": [3, 2, 1], "gasUsedRatio": [0.1, 0.1, 0.0], "reward": []}
    assert fees_from_history(h, POLICY) is None
