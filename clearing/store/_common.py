"""Shared by the store backends: operation checks, the put/cancel rules, uint256, migrations."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from importlib import resources

from clearing.store.base import (
    BidStatus,
    CancelBid,
    CancelResult,
    NoLiveBidError,
    Operation,
    PutBid,
    PutOutcome,
    StaleCancelError,
    StoredBid,
    StoreError,
)

UINT256_LIMIT = 1 << 256
INT64_LIMIT = 1 << 63
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def check_operation(op: Operation) -> None:
    """Raise ``ValueError`` if ``op`` cannot be stored (a caller bug, not a refusal).

    ``auction_id`` and ``received_at`` must fit a signed 64-bit column, ``redemption_id``
    must be a uint256, hashes 32 bytes, byte fields ``bytes``.
    """
    if not isinstance(op, PutBid | CancelBid):
        raise TypeError(f"not a store operation: {type(op).__name__}")
    for name in ("auction_id", "received_at"):
        value = getattr(op, name)
        if not isinstance(value, int) or not 0 <= value < INT64_LIMIT:
            raise ValueError(f"{name} must be an int in [0, 2^63): {value!r}")
    if not isinstance(op.redemption_id, int) or not 0 <= op.redemption_id < UINT256_LIMIT:
        raise ValueError(f"redemption_id must be a uint256: {op.redemption_id!r}")
    fields = ["controller", "ciphertext_hash", "signature"]
    if isinstance(op, PutBid):
        fields.append("ciphertext")
    for name in fields:
        if not isinstance(getattr(op, name), bytes):
            raise ValueError(f"{name} must be bytes")
    if len(op.ciphertext_hash) != 32:
        raise ValueError("ciphertext_hash must be 32 bytes")


def u256_to_bytes(value: int) -> bytes:
    """Fixed-width big-endian encoding: byte order equals numeric order."""
    return value.to_bytes(32, "big")


def u256_from_bytes(raw: bytes) -> int:
    """Inverse of ``u256_to_bytes``."""
    return int.from_bytes(raw, "big")


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if it is a safe lowercase SQL identifier, else raise ``ValueError``."""
    if not SCHEMA_NAME.fullmatch(schema) or len(schema) > 63:
        raise ValueError(f"invalid schema name {schema!r}: must match {SCHEMA_NAME.pattern}")
    return schema


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned SQL migration file."""

    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The migrations of ``backend`` (``sqlite`` or ``postgres``) in version order."""
    folder = resources.files("clearing.store").joinpath("migrations").joinpath(backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if not found or len(set(versions)) != len(versions):
        raise RuntimeError(f"missing or duplicate {backend} migrations: {versions}")
    return found


def new_live_bid(op: PutBid, sequence: int) -> StoredBid:
    """The live row a ``PutBid`` creates with ``sequence`` (same in every backend)."""
    return StoredBid(
        auction_id=op.auction_id,
        redemption_id=op.redemption_id,
        controller=op.controller,
        ciphertext=op.ciphertext,
        ciphertext_hash=op.ciphertext_hash,
        signature=op.signature,
        sequence=sequence,
        received_at=op.received_at,
        status=BidStatus.LIVE,
    )


def put_outcome(live: StoredBid | None, op: PutBid) -> PutOutcome:
    """DESIGN 2: identical resubmission, replacement of the live bid, or a new bid."""
    if live is None:
        return PutOutcome.CREATED
    if live.ciphertext_hash == op.ciphertext_hash and live.signature == op.signature:
        return PutOutcome.IDENTICAL
    return PutOutcome.REPLACED


def cancel_refusal(live: StoredBid | None, op: CancelBid) -> StoreError | None:
    """Why a cancel cannot apply to the pair's live bid, or None if it can."""
    if live is None:
        return NoLiveBidError(
            f"no live bid for auction {op.auction_id} redemption {op.redemption_id}"
        )
    if live.ciphertext_hash != op.ciphertext_hash:
        return StaleCancelError(
            f"cancel names 0x{op.ciphertext_hash.hex()}, "
            f"the live bid is 0x{live.ciphertext_hash.hex()}"
        )
    return None


def cancelled(live: StoredBid, op: CancelBid) -> CancelResult:
    """The result of applying a cancel to the live bid."""
    return CancelResult(replace(live, status=BidStatus.CANCELLED, cancel_signature=op.signature))
