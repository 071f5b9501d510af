"""Names and JSON helpers of the per-auction artifacts the keeper publishes through the store."""

from __future__ import annotations

from typing import Any

import orjson

from clearing.store.base import BidStore

PUBLIC_KEY = "public_key"  # raw 32 bytes, read by the service
BOOK = "book"  # the frozen book, written by the keeper at the freeze
PUBLISHED_BOOK = "book.published"  # the frozen book with signed receipts, served at /book
PUBLISHING = "book.publishing"  # the lease of the service worker that builds it ahead
HISTORY = "book.history"  # superseded and cancelled envelopes, built once after the freeze
RESULT = "result"
ALLOCATION_TREE = "allocation_tree"
SETTLEMENT = "settlement"
KEY = "key"


def put_json(store: BidStore, auction_id: int, name: str, doc: Any) -> None:
    """Store ``doc`` as canonical JSON (sorted keys) under ``name``."""
    store.put_artifact(auction_id, name, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


def get_json(store: BidStore, auction_id: int, name: str) -> Any:
    """The JSON artifact ``name``, or None."""
    raw = store.get_artifact(auction_id, name)
    return None if raw is None else orjson.loads(raw)


__all__ = [
    "ALLOCATION_TREE",
    "BOOK",
    "HISTORY",
    "KEY",
    "PUBLIC_KEY",
    "PUBLISHED_BOOK",
    "PUBLISHING",
    "RESULT",
    "SETTLEMENT",
    "get_json",
    "put_json",
]
