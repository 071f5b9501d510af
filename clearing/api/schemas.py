"""Request and response bodies of DESIGN 4 (field names are normative)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Hex = str  # 0x-prefixed lowercase hex
Uint = str  # decimal string


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class BidRequest(_Body):
    """A sealed envelope signed as EIP-712 ``SealedBid`` by the controller."""

    redemption_id: Uint = Field(description="uint256 as a decimal string")
    controller: str = Field(description="the request's controller, any case")
    ciphertext: Hex = Field(description="enc (32 bytes) || HPKE sealed plaintext")
    signature: Hex = Field(description="65-byte r||s||v over SealedBid")


class CancelRequest(_Body):
    """A signed ``CancelBid`` naming the live envelope's ciphertext hash."""

    controller: str
    ciphertext_hash: Hex
    signature: Hex


class Eip712Info(BaseModel):
    """The EIP-712 domain name and version bids are signed in."""

    name: str
    version: str


class AuctionInfo(BaseModel):
    """One auction's schedule, status and public key."""

    auction_id: int
    opens_at: int
    closes_at: int
    status: Literal["open", "closed", "cleared", "submitted", "settled", "revealed"]
    public_key: Hex | None
    chain_id: int
    settlement: str
    eip712: Eip712Info


class Receipt(BaseModel):
    """The service's signed acknowledgement (DESIGN 4)."""

    auction_id: int
    redemption_id: Uint
    controller: str
    ciphertext_hash: Hex
    sequence: int
    received_at: int
    service_signature: Hex


class ReceiptResponse(BaseModel):
    """Body of a successful POST or DELETE on a bid."""

    receipt: Receipt
    status: Literal["live", "superseded", "cancelled"]


class BidStatusResponse(BaseModel):
    """A pair's current envelope receipt and, after clearing, its outcome."""

    receipt: Receipt
    status: Literal["live", "superseded", "cancelled"]
    outcome: dict[str, Any] | None = None


class BookEntry(BaseModel):
    """One live envelope at close."""

    redemption_id: Uint
    controller: str
    ciphertext: Hex
    ciphertext_hash: Hex
    signature: Hex
    sequence: int
    received_at: int


class BookResponse(BaseModel):
    """Every live envelope at close and the bid-book root (with the OZ tree dump)."""

    auction_id: int
    bid_book_root: Hex | None
    bids: list[BookEntry]
    tree: dict[str, Any] | None


class AllocationResponse(BaseModel):
    """An allocation leaf, its proof and the root it proves against."""

    auction_id: int
    allocation_root: Hex
    leaf: dict[str, Any]
    proof: list[Hex]


__all__ = [
    "AllocationResponse",
    "AuctionInfo",
    "BidRequest",
    "BidStatusResponse",
    "BookEntry",
    "BookResponse",
    "CancelRequest",
    "Receipt",
    "ReceiptResponse",
]
