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
    receipt_signer: str = Field(
        description="the address that signs receipts; also registered on-chain as the "
        "settlement contract's receiptSigner()"
    )
    web_bundle_sha256: str | None = Field(
        default=None,
        description="sha256 of the holder's web page bundle this service serves at / "
        "(rebuild with scripts/build-web --hash and compare); absent if no page is served",
    )


class Receipt(BaseModel):
    """The service's signed acknowledgement (DESIGN 4)."""

    auction_id: int
    redemption_id: Uint
    controller: str
    ciphertext_hash: Hex
    sequence: int
    received_at: int
    kind: Literal[0, 1] = Field(description="0: a bid (new, replaced, identical); 1: a cancel")
    service_signature: Hex = Field(
        description="EIP-191 signature over keccak256(abi.encode(uint64 auction_id, uint256 "
        "redemption_id, address controller, bytes32 ciphertext_hash, uint64 sequence, "
        "uint64 received_at, uint8 kind))"
    )


class ReceiptResponse(BaseModel):
    """Body of a successful POST or DELETE on a bid."""

    receipt: Receipt
    status: Literal["live", "superseded", "cancelled"]


class BidStatusResponse(BaseModel):
    """A pair's current envelope receipt and, after clearing, its outcome."""

    receipt: Receipt
    status: Literal["live", "superseded", "cancelled"]
    cancel_receipt: Receipt | None = Field(
        default=None, description="the kind-1 receipt of the cancel, for a cancelled envelope"
    )
    outcome: dict[str, Any] | None = None


class BookEntry(BaseModel):
    """One live envelope at close."""

    redemption_id: Uint
    controller: str
    ciphertext: Hex
    ciphertext_hash: Hex
    signature: Hex = Field(description="the controller's SealedBid signature")
    sequence: int
    received_at: int
    kind: Literal[0]
    service_signature: Hex = Field(description="the envelope's kind-0 receipt signature")


class BookResponse(BaseModel):
    """Every live envelope at close and the bid-book root (with the OZ tree dump)."""

    auction_id: int
    bid_book_root: Hex | None
    receipt_signer: str
    bids: list[BookEntry]
    tree: dict[str, Any] | None
    frozen: bool = Field(
        default=True, description="false only between T and the keeper's freeze (not final)"
    )


class CancelEntry(BaseModel):
    """A cancel: its CancelBid signature and its own kind-1 receipt."""

    sequence: int
    received_at: int
    kind: Literal[1]
    signature: Hex = Field(description="the controller's CancelBid signature")
    service_signature: Hex


class HistoryEntry(BookEntry):
    """A superseded or cancelled envelope with its receipt (and its cancel's)."""

    kind: Literal[0]
    status: Literal["superseded", "cancelled"]
    cancel: CancelEntry | None


class HistoryResponse(BaseModel):
    """The public audit trail: every envelope that was live once and is no longer."""

    auction_id: int
    receipt_signer: str
    envelopes: list[HistoryEntry]


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
    "CancelEntry",
    "CancelRequest",
    "HistoryEntry",
    "HistoryResponse",
    "Receipt",
    "ReceiptResponse",
]
