"""Token buckets per client address and per controller (in process, per replica)."""

from __future__ import annotations

import math
from collections.abc import Callable

from qev.errors import RateLimitedError


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


__all__ = ["TokenBuckets"]
