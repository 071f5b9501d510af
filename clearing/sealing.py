"""HPKE sealing of bids (DESIGN 3) and per-auction key derivation.

Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, base mode, empty AAD,
through ``cryptography``'s ``hpke`` module. Ciphertext = ``enc (32 bytes) || sealed``.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clearing.errors import BadKeyError, CiphertextTooShortError, DecryptionError

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
ENC_LENGTH = 32
TAG_LENGTH = 16
INFO_PREFIX = b"qev-bid-v1"
KEY_INFO_PREFIX = b"qev-auction-key-v1"


def bid_info(chain_id: int, settlement: bytes, auction_id: int) -> bytes:
    """``b"qev-bid-v1" || chainId (32 B BE) || settlement (20 B) || auctionId (8 B BE)``."""
    if len(settlement) != 20:
        raise ValueError("settlement must be a 20-byte address")
    return INFO_PREFIX + chain_id.to_bytes(32, "big") + settlement + auction_id.to_bytes(8, "big")


def derive_auction_secret(master_secret: bytes, auction_id: int) -> bytes:
    """The auction's 32-byte X25519 private key: HKDF-SHA256(master, salt="", info, L=32)."""
    if len(master_secret) < 32:
        raise BadKeyError("the master secret must be at least 32 bytes")
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"",
        info=KEY_INFO_PREFIX + auction_id.to_bytes(8, "big"),
    ).derive(master_secret)


def public_key_of(private_key: bytes) -> bytes:
    """The raw 32-byte X25519 public key of a raw 32-byte private key."""
    return _private_key(private_key).public_key().public_bytes_raw()


def _private_key(raw: bytes) -> X25519PrivateKey:
    if len(raw) != 32:
        raise BadKeyError(f"an X25519 private key is 32 bytes, got {len(raw)}")
    return X25519PrivateKey.from_private_bytes(raw)


def seal(plaintext: bytes, public_key: bytes, info: bytes) -> bytes:
    """Encrypt ``plaintext`` to the auction's raw X25519 ``public_key``; returns enc || sealed."""
    if len(public_key) != 32:
        raise BadKeyError(f"an X25519 public key is 32 bytes, got {len(public_key)}")
    return SUITE.encrypt(plaintext, X25519PublicKey.from_public_bytes(public_key), info)


class Opener:
    """Opens sealed bids of one auction; holds the parsed private key and ``info``."""

    __slots__ = ("_info", "_key")

    def __init__(self, private_key: bytes, info: bytes) -> None:
        self._key = _private_key(private_key)
        self._info = info

    def open(self, ciphertext: bytes) -> bytes:
        """Decrypt; raises ``CiphertextTooShortError`` or ``DecryptionError``, never crashes."""
        if len(ciphertext) < ENC_LENGTH + TAG_LENGTH:
            raise CiphertextTooShortError(
                f"ciphertext is {len(ciphertext)} bytes, at least {ENC_LENGTH + TAG_LENGTH} needed"
            )
        try:
            return SUITE.decrypt(ciphertext, self._key, self._info)
        except (InvalidTag, ValueError) as e:
            raise DecryptionError("HPKE open failed: wrong key, wrong info or tampered") from e


def open_sealed(ciphertext: bytes, private_key: bytes, info: bytes) -> bytes:
    """One-shot ``Opener(private_key, info).open(ciphertext)``."""
    return Opener(private_key, info).open(ciphertext)


__all__ = [
    "ENC_LENGTH",
    "SUITE",
    "Opener",
    "bid_info",
    "derive_auction_secret",
    "open_sealed",
    "public_key_of",
    "seal",
]
