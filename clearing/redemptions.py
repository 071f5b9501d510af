"""The ``RedemptionReader`` port: who controls a redemption request, read from the chain."""

from __future__ import annotations

from collections.abc import Mapping
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


__all__ = ["InMemoryRedemptions", "RedemptionInfo", "RedemptionReader"]
