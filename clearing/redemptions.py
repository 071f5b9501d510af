"""The ``RedemptionReader`` port: who controls a redemption request, read from the chain."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RedemptionInfo:
    """What intake needs to know about a redemption request."""

    redemption_id: int
    controller: bytes
    pending_shares: int
    redemption_timestamp: int


class RedemptionReader(Protocol):
    """Reads redemption requests (the web3 implementation lives with the keeper's adapter).

    ``blocking`` says whether a read does I/O (the service then reads in a worker thread).
    """

    blocking: bool

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """The request, or None if it does not exist."""


class InMemoryRedemptions:
    """A ``RedemptionReader`` over a dict (unit tests, the example, load tests)."""

    blocking = False

    def __init__(self, requests: Mapping[int, RedemptionInfo] | None = None) -> None:
        self._requests = dict(requests or {})

    def add(self, info: RedemptionInfo) -> None:
        """Add or replace a request."""
        self._requests[info.redemption_id] = info

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """The request, or None."""
        return self._requests.get(redemption_id)


class CachedRedemptions:
    """A ``RedemptionReader`` that remembers answers for ``ttl`` seconds (bounded LRU).

    A request's controller does not change, so intake need not read the chain for every
    bid of the same request; a missing request is remembered for ``negative_ttl`` only (it
    may be created any moment). ``clock`` is monotonic seconds, passed in.
    """

    def __init__(
        self,
        reader: RedemptionReader,
        *,
        ttl: float,
        clock: Callable[[], float],
        negative_ttl: float = 2.0,
        max_entries: int = 100_000,
    ) -> None:
        self.blocking = reader.blocking
        self._reader, self._ttl, self._negative_ttl = reader, ttl, negative_ttl
        self._clock, self._max = clock, max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[float, RedemptionInfo | None]] = OrderedDict()

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """The request, from the cache while fresh, else from the reader."""
        now = self._clock()
        with self._lock:
            hit = self._entries.get(redemption_id)
            if hit is not None and hit[0] > now:
                self._entries.move_to_end(redemption_id)
                return hit[1]
        info = self._reader.redemption(redemption_id)
        expires = now + (self._ttl if info is not None else self._negative_ttl)
        with self._lock:
            self._entries[redemption_id] = (expires, info)
            self._entries.move_to_end(redemption_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return info


__all__ = ["CachedRedemptions", "InMemoryRedemptions", "RedemptionInfo", "RedemptionReader"]
