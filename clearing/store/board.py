"""The keypers' bulletin board in the store (PROTOCOL 10): one durable row per message.

Both backends implement ``BoardStore`` next to ``BidStore``. A message's *slot* is its place
on the board (deal: ``(dealer, 0)``; complaint: ``(keyper, dealer)``; answer: ``(dealer,
keyper)``; share: ``(keyper, 0)``); a slot holds the first message stored in it for ever:
posting the same bytes again is ``IDENTICAL``, other bytes are a ``CONFLICT`` (the board's
``duplicate``). What a message may say, and when, is the board's business
(``clearing.api.board``); the store only keeps the first answer for every slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

KINDS = ("deal", "complaint", "answer", "share")
_INT64 = 1 << 63


class BoardOutcome(StrEnum):
    """What ``board_put`` did."""

    CREATED = "created"
    IDENTICAL = "identical"  # the same bytes were stored before: nothing written
    CONFLICT = "conflict"  # other bytes hold the slot: nothing written


@dataclass(frozen=True, slots=True)
class BoardRecord:
    """One stored board message."""

    auction_id: int
    kind: str
    slot_a: int
    slot_b: int
    body: bytes  # the canonical JSON the board serves
    received_at: int  # service time at which it was accepted


def check_record(record: BoardRecord) -> None:
    """``ValueError`` unless ``record`` fits the table (a caller bug, never a refusal)."""
    if record.kind not in KINDS:
        raise ValueError(f"unknown board kind {record.kind!r}")
    for name in ("auction_id", "received_at", "slot_a", "slot_b"):
        value = getattr(record, name)
        if type(value) is not int or not 0 <= value < _INT64:
            raise ValueError(f"{name} must be an int in [0, 2^63): {value!r}")
    if record.slot_a == 0 or record.slot_a >= 1 << 31 or record.slot_b >= 1 << 31:
        raise ValueError("slots are keyper indices (slot_a >= 1)")
    if not isinstance(record.body, bytes):
        raise ValueError("body must be bytes")


class BoardStore(Protocol):
    """Durable board messages (the SQLite and PostgreSQL stores are both one)."""

    def board_put(self, record: BoardRecord) -> tuple[BoardOutcome, BoardRecord]:
        """Store ``record`` in its slot unless the slot is taken; returns what the slot holds
        now (``record`` if created, the stored one otherwise). Durable before it returns."""

    def board_records(self, auction_id: int) -> list[BoardRecord]:
        """Every message of ``auction_id``'s board, in the order they were stored."""


__all__ = ["KINDS", "BoardOutcome", "BoardRecord", "BoardStore", "check_record"]
