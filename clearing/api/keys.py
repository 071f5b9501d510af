"""Where the service gets each auction's public key (key files: ``clearing.keyfiles``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from clearing.sealing import derive_auction_secret, public_key_of
from clearing.store.artifacts import PUBLIC_KEY
from clearing.store.base import BidStore


class AuctionKeys(Protocol):
    """The auction public key bidders seal to (committed on-chain by the keeper)."""

    def public_key(self, auction_id: int) -> bytes | None:
        """Raw 32-byte X25519 public key, or None if not announced."""


class DerivedAuctionKeys:
    """Derive public keys from the master secret (single-operator and demo deployments)."""

    def __init__(self, master_secret: bytes) -> None:
        self._master = master_secret

    @lru_cache(maxsize=64)  # noqa: B019 - a handful of auctions, kept for the process life
    def public_key(self, auction_id: int) -> bytes | None:
        """Public key of ``auction_id``."""
        return public_key_of(derive_auction_secret(self._master, auction_id))


class StoredAuctionKeys:
    """Public keys the keeper published into the shared store at window open."""

    def __init__(self, store: BidStore) -> None:
        self._store = store

    def public_key(self, auction_id: int) -> bytes | None:
        """Public key of ``auction_id`` if the keeper announced it."""
        raw = self._store.get_artifact(auction_id, PUBLIC_KEY)
        return raw if raw is None or len(raw) == 32 else None


__all__ = ["AuctionKeys", "DerivedAuctionKeys", "StoredAuctionKeys"]
