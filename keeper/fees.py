"""EIP-1559 fee suggestion from ``eth_feeHistory`` and same-nonce replacement bumps."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GWEI = 10**9
BPS = 10_000


@dataclass(frozen=True)
class Fees:
    """The two EIP-1559 fee fields of a type-2 transaction, in wei."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def at_least(self, other: Fees) -> Fees:
        """Field-wise maximum of ``self`` and ``other``."""
        return Fees(
            max(self.max_fee_per_gas, other.max_fee_per_gas),
            max(self.max_priority_fee_per_gas, other.max_priority_fee_per_gas),
        )


@dataclass(frozen=True)
class FeePolicy:
    """How fees are derived: max fee = base fee of the next block * multiplier + priority fee.

    The priority fee is the median, over the last ``history_blocks`` non-empty blocks, of the
    ``reward_percentile`` reward, floored at ``min_priority_fee`` and capped at
    ``max_priority_fee_cap``. ``max_fee_cap`` (optional) caps the max fee.
    """

    history_blocks: int = 10
    reward_percentile: float = 50.0
    base_fee_multiplier: int = 2
    min_priority_fee: int = GWEI // 10
    max_priority_fee_cap: int = 5 * GWEI
    max_fee_cap: int | None = None

    def __post_init__(self) -> None:
        if self.min_priority_fee > self.max_priority_fee_cap:
            raise ValueError("min_priority_fee exceeds max_priority_fee_cap")

    def apply(self, base_fee: int, priority: int) -> Fees:
        """Fees for ``base_fee`` (next block) and a raw priority fee, with floor and caps."""
        tip = min(max(priority, self.min_priority_fee), self.max_priority_fee_cap)
        max_fee = base_fee * self.base_fee_multiplier + tip
        if self.max_fee_cap is not None:
            max_fee = min(max_fee, self.max_fee_cap)
            tip = min(tip, max_fee)
        return Fees(max_fee, tip)


def fees_from_history(history: Mapping[str, Any], policy: FeePolicy) -> Fees | None:
    """Fees from an ``eth_feeHistory`` answer asked with ``[policy.reward_percentile]``.

    ``baseFeePerGas`` has one entry more than the blocks asked for: the last one is the base
    fee of the next block. Blocks with ``gasUsedRatio == 0`` carry no reward information and
    are skipped. Returns None when the answer has no base fees or not one more base fee than
    blocks (a node without usable EIP-1559 history); the caller then falls back.
    """
    base_fees: Sequence[int] = history.get("baseFeePerGas") or []
    rewards: Sequence[Sequence[int]] = history.get("reward") or []
    ratios: Sequence[float] = history.get("gasUsedRatio") or []
    if not base_fees or len(base_fees) != len(ratios) + 1:
        return None  # missing, or not the standard shape (eth-tester omits the next block)
    next_base = int(base_fees[-1])
    tips = [
        int(r[0]) for i, r in enumerate(rewards) if r and (i >= len(ratios) or float(ratios[i]) > 0)
    ]
    priority = int(statistics.median_low(tips)) if tips else 0
    return policy.apply(next_base, priority)


def bump(fees: Fees, bps: int, policy: FeePolicy) -> Fees | None:
    """Fees for a replacement at the same nonce: both fields raised by at least ``bps``.

    Nodes accept a replacement only if the max fee *and* the priority fee each rise by their
    threshold (geth 10%); we round up and add at least 1 wei. Returns None if a cap forbids
    a valid bump (the caller then keeps waiting instead of replacing).
    """
    tip = max(
        -(-fees.max_priority_fee_per_gas * (BPS + bps) // BPS), fees.max_priority_fee_per_gas + 1
    )
    max_fee = max(-(-fees.max_fee_per_gas * (BPS + bps) // BPS), fees.max_fee_per_gas + 1)
    if tip > policy.max_priority_fee_cap:
        return None
    if policy.max_fee_cap is not None and max_fee > policy.max_fee_cap:
        return None
    return Fees(max(max_fee, tip), tip)


__all__ = ["GWEI", "FeePolicy", "Fees", "bump", "fees_from_history"]
