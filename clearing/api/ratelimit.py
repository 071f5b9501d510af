"""Token buckets per client address and per controller, and the per-client budget of chain
reads for controller look-ups (in process, per replica)."""

from __future__ import annotations

import math
from collections.abc import Callable

from clearing.errors import RateLimitedError


class TokenBuckets:
    """``rate`` tokens per second up to ``burst`` per key; ``take`` raises when empty."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float], max_keys: int = 100_000
    ):
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_keys = max_keys

    def take(self, key: str, what: str) -> None:
        """Spend one token for ``key`` or raise ``RateLimitedError`` with a Retry-After."""
        if self._rate <= 0:
            return
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            retry = max(1, math.ceil((1.0 - tokens) / self._rate))
            raise RateLimitedError(f"too many requests for this {what}", retry_after=retry)
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()  # bounded memory: forget everyone rather than grow forever
        self._buckets[key] = (tokens - 1.0, now)


class LookupBudget:
    """At most ``budget`` chain reads per client address per auction (never refilled).

    Intake reads a request's controller from the chain when it is not cached; a bid for a
    request that does not exist (or a throwaway key's) always misses the cache, so without
    a budget every such bid costs an RPC call. Memory is bounded: past ``max_keys`` entries
    those of earlier auctions are dropped, then everything (as ``TokenBuckets`` does).
    """

    def __init__(self, budget: int, max_keys: int = 100_000) -> None:
        self._budget, self._max_keys = budget, max_keys
        self._spent: dict[tuple[str, int], int] = {}

    def charge(self, client: str, auction_id: int, retry_after: int) -> None:
        """Spend one read of ``client`` for ``auction_id`` or raise ``RateLimitedError``."""
        key = (client, auction_id)
        spent = self._spent.get(key, 0)
        if spent >= self._budget:
            raise RateLimitedError(
                f"chain read budget of this client for auction {auction_id} spent "
                f"({self._budget} look-ups of uncached redemption requests)",
                retry_after=max(1, retry_after),
            )
        if spent == 0 and len(self._spent) >= self._max_keys:
            self._spent = {k: v for k, v in self._spent.items() if k[1] >= auction_id}
            if len(self._spent) >= self._max_keys:
                self._spent.clear()
        self._spent[key] = spent + 1

    def spent(self, client: str, auction_id: int) -> int:
        """Reads charged to ``client`` for ``auction_id`` so far."""
        return self._spent.get((client, auction_id), 0)


__all__ = ["LookupBudget", "TokenBuckets"]
