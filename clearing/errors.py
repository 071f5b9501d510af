"""The project's exception hierarchy: one root, stable machine-readable codes.

Every error a caller may need to tell apart has its own class and a stable ``code``
(the RFC 9457 ``code`` member for the HTTP API, the exclusion reason for the keeper).
The HTTP layer maps these classes to problem responses in one place.
"""

from __future__ import annotations


class QevError(Exception):
    """Root of every error raised on purpose by qev."""

    code: str = "internal"

    def __init__(self, message: str = "", /) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)

    @property
    def detail(self) -> str:
        """Human-readable explanation (the exception message)."""
        return str(self)


# --- malformed input -------------------------------------------------------------


class MalformedError(QevError):
    """Input that does not parse as what it claims to be."""

    code = "malformed"


class HexError(MalformedError):
    """A byte string that is not 0x-prefixed hex of the expected length."""


class AbiDecodeError(MalformedError):
    """ABI data that is truncated, padded wrongly, non-canonical or has trailing bytes."""


class AbiEncodeError(MalformedError):
    """A value that does not fit its ABI type."""


class AddressError(MalformedError):
    """A string that is not a 20-byte hex address."""


class MalformedPlaintextError(MalformedError):
    """A decrypted sealed bid whose plaintext is not the DESIGN 3 encoding."""

    code = "malformed_plaintext"


# --- signatures ------------------------------------------------------------------


class SignatureError(QevError):
    """A signature that cannot be accepted."""

    code = "bad_signature"


class SignatureLengthError(SignatureError):
    """A signature that is not exactly 65 bytes r||s||v."""


class SignatureVError(SignatureError):
    """A signature whose v is not 27 or 28."""


class MalleableSignatureError(SignatureError):
    """A signature with s in the upper half of the curve order (EIP-2 high-s)."""


class SignatureRangeError(SignatureError):
    """A signature with r or s outside 1..n-1."""


class SignatureRecoveryError(SignatureError):
    """A signature from which no public key can be recovered."""


# --- sealing ---------------------------------------------------------------------


class SealingError(QevError):
    """A sealed bid that cannot be opened."""

    code = "undecryptable"


class CiphertextTooShortError(SealingError):
    """A ciphertext shorter than enc (32 bytes) plus the AEAD tag (16 bytes)."""


class DecryptionError(SealingError):
    """HPKE open failed: wrong key, wrong info (auction, chain or contract) or tampering."""


class BadKeyError(SealingError):
    """A key of the wrong length or form."""

    code = "bad_key"


# --- clearing --------------------------------------------------------------------


class ClearingError(QevError):
    """Inputs that the clearing rule cannot be applied to."""

    code = "clearing_input"


class DuplicateBidError(ClearingError):
    """Two valid bids for the same redemption id in one clearing."""

    code = "duplicate_bid"


# --- merkle ----------------------------------------------------------------------


class MerkleError(QevError):
    """A tree, dump or proof request that is not valid."""

    code = "merkle"


class LeafNotFoundError(MerkleError):
    """A leaf that is not in the tree."""

    code = "not_found"


class InvalidTreeError(MerkleError):
    """A dump whose nodes or values do not form a valid standard-v1 tree."""

    code = "invalid_tree"


# --- service ---------------------------------------------------------------------


class ServiceError(QevError):
    """A request the clearing service refuses."""

    code = "service_error"


class UnknownAuctionError(ServiceError):
    """No auction has this id (not a window boundary, or not yet announced)."""

    code = "unknown_auction"


class AuctionClosedError(ServiceError):
    """The auction's bidding window has ended (or not begun): the bid is refused."""

    code = "auction_closed"


class AuctionNotClosedError(ServiceError):
    """The requested data is published only after the auction closes."""

    code = "auction_not_closed"


class NotClearedError(ServiceError):
    """The auction has not been cleared yet."""

    code = "not_cleared"


class KeyNotRevealedError(ServiceError):
    """The auction key has not been revealed yet."""

    code = "key_not_revealed"


class NotControllerError(ServiceError):
    """The signer is not the redemption request's controller."""

    code = "not_controller"


class NotFoundError(ServiceError):
    """No such bid, allocation or resource."""

    code = "not_found"


class PayloadTooLargeError(ServiceError):
    """The request body exceeds the service's limit."""

    code = "payload_too_large"


class RateLimitedError(ServiceError):
    """Too many requests; retry after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, message: str = "", /, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChainReadError(QevError):
    """A chain read failed (RPC down, timeout); retryable."""

    code = "chain_unavailable"
