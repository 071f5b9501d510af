"""Auction windows (DESIGN 2): auction_id = genesis + k * window, open on [T - window, T)."""

from __future__ import annotations

from dataclasses import dataclass

REDEMPTION_WINDOW = 30 * 86_400


@dataclass(frozen=True, slots=True)
class AuctionCalendar:
    """Window arithmetic from the vault's immutable genesis timestamp."""

    genesis: int
    window: int = REDEMPTION_WINDOW

    def is_boundary(self, auction_id: int) -> bool:
        """Whether ``auction_id`` is a window boundary after genesis (a real auction)."""
        return auction_id > self.genesis and (auction_id - self.genesis) % self.window == 0

    def current(self, now: int) -> int:
        """The auction whose bidding window contains ``now``."""
        if now < self.genesis:
            return self.genesis + self.window
        return self.genesis + ((now - self.genesis) // self.window + 1) * self.window

    def opens_at(self, auction_id: int) -> int:
        """First second bids are accepted (inclusive)."""
        return auction_id - self.window

    def is_open(self, auction_id: int, now: int) -> bool:
        """Bidding for ``auction_id`` is open at ``now``: ``T - window <= now < T``."""
        return auction_id - self.window <= now < auction_id


__all__ = ["REDEMPTION_WINDOW", "AuctionCalendar"]
