"""Wire encodings of DESIGN 4: ``0x`` hex byte strings, EIP-55 addresses, decimal uint256."""

from __future__ import annotations

from functools import lru_cache

from clearing.errors import AddressError, HexError, MalformedError
from clearing.hashing import keccak256

UINT256_MAX = (1 << 256) - 1


def to_hex(data: bytes) -> str:
    """Return ``0x``-prefixed lowercase hex."""
    return "0x" + data.hex()


def from_hex(text: str, length: int | None = None) -> bytes:
    """Parse ``0x``-prefixed hex (any case) into bytes, optionally of an exact ``length``."""
    if type(text) is not str or not text.startswith("0x") or len(text) % 2:
        raise HexError(f"expected 0x-prefixed hex with an even number of digits, got {text!r:.80}")
    try:
        data = bytes.fromhex(text[2:])
    except ValueError:
        raise HexError(f"non-hex characters in {text!r:.80}") from None
    # fromhex skips ASCII whitespace between bytes: a shorter result means there was some
    if 2 * len(data) != len(text) - 2:
        raise HexError(f"non-hex characters in {text!r:.80}")
    if length is not None and len(data) != length:
        raise HexError(f"expected {length} bytes, got {len(data)}")
    return data


_LETTER_BITS = int.from_bytes(b"\x40" * 40, "big")  # set in 'a'-'f', clear in '0'-'9'
_LOW_BITS = int.from_bytes(b"\x01" * 40, "big")


def to_checksum_address(address: bytes) -> str:
    """Return the EIP-55 mixed-case form of a 20-byte address (memoized: bidders repeat)."""
    return _checksum(bytes(address))


# Larger than a month's controllers: a close checksums each of them in several passes (book,
# book tree, allocation tree), and an LRU smaller than one pass misses on every later one.
@lru_cache(maxsize=1 << 18)
def _checksum(address: bytes) -> str:
    if len(address) != 20:
        raise AddressError(f"address must be 20 bytes, got {len(address)}")
    lower = address.hex().encode()
    # EIP-55: upper-case the letters whose digest nibble is >= 8. Over all 40 characters
    # at once: a digest hex digit is >= 8 iff it has bit 3 ('8', '9') or bit 6 ('a'-'f');
    # a letter has bit 6; clearing bit 5 (0x20) of a lower-case letter upper-cases it.
    digest = int.from_bytes(keccak256(lower).hex()[:40].encode(), "big")
    high = ((digest >> 3) | (digest >> 6)) & _LOW_BITS
    chars = int.from_bytes(lower, "big")
    letters = (chars & _LETTER_BITS) >> 6
    mixed = chars ^ ((high & letters) << 5)
    return "0x" + mixed.to_bytes(40, "big").decode()


def parse_address(text: str) -> bytes:
    """Parse an address in any case (DESIGN 4 accepts any case on input) into 20 bytes."""
    try:
        return from_hex(text, 20)
    except HexError as e:
        raise AddressError(f"not a 20-byte hex address: {text!r:.80}") from e


def parse_uint(text: str, bits: int = 256) -> int:
    """Parse a decimal string (DESIGN 4's uint encoding) into an int of at most ``bits`` bits."""
    if type(text) is not str or not text.isascii() or not text.isdigit() or len(text) > 78:
        raise MalformedError(f"expected a decimal unsigned integer string, got {text!r:.80}")
    if len(text) > 1 and text[0] == "0":
        raise MalformedError(f"leading zeros are not canonical: {text!r:.80}")
    value = int(text)
    if value >> bits:
        raise MalformedError(f"{text!r:.80} does not fit uint{bits}")
    return value


__all__ = [
    "UINT256_MAX",
    "from_hex",
    "parse_address",
    "parse_uint",
    "to_checksum_address",
    "to_hex",
]
