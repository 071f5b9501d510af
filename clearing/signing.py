"""secp256k1 signing and strict recovery (coincurve / libsecp256k1).

Signatures are 65 bytes ``r || s || v`` with ``v`` in {27, 28}. Recovery refuses high-s
(EIP-2) signatures, ``r``/``s`` outside ``1..n-1`` and any other ``v``, so every accepted
signature has exactly one encoding.
"""

from __future__ import annotations

from coincurve import PrivateKey
from coincurve._libsecp256k1 import ffi as _ffi
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT as _CTX

from clearing.errors import (
    BadKeyError,
    MalleableSignatureError,
    SignatureLengthError,
    SignatureRangeError,
    SignatureRecoveryError,
    SignatureVError,
)
from clearing.hashing import keccak256

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
_EIP191_PREFIX = b"\x19Ethereum Signed Message:\n32"


class Signer:
    """A secp256k1 private key that signs 32-byte digests."""

    __slots__ = ("_secret", "address")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
            raise BadKeyError("a secp256k1 private key is 32 bytes in 1..n-1")
        self._secret = _ffi.new("unsigned char[32]", secret)
        public = PrivateKey(secret).public_key.format(compressed=False)
        self.address: bytes = public_key_to_address(public)

    def __repr__(self) -> str:  # never show the key
        return f"Signer(address=0x{self.address.hex()})"

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a 32-byte digest; returns the canonical low-s ``r || s || v`` (v in {27, 28})."""
        if len(digest) != 32:
            raise ValueError("digest must be 32 bytes")
        # libsecp256k1 directly (RFC 6979 nonce, always low-s), as in ``recover_address``
        rsig = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
        if not _lib.secp256k1_ecdsa_sign_recoverable(
            _CTX.ctx, rsig, digest, self._secret, _ffi.NULL, _ffi.NULL
        ):  # pragma: no cover - only for an invalid key, refused in __init__
            raise BadKeyError("secp256k1 refused to sign")
        out = _ffi.new("unsigned char[64]")
        recid = _ffi.new("int *")
        _lib.secp256k1_ecdsa_recoverable_signature_serialize_compact(_CTX.ctx, out, recid, rsig)
        return bytes(_ffi.buffer(out, 64)) + bytes((recid[0] + 27,))

    def sign_eip191(self, digest: bytes) -> bytes:
        """EIP-191 (``personal_sign``) signature over a 32-byte digest."""
        return self.sign_digest(eip191_digest(digest))


def eip191_digest(digest: bytes) -> bytes:
    """EIP-191 version 0x45 digest of a 32-byte hash (OZ ``toEthSignedMessageHash``)."""
    return keccak256(_EIP191_PREFIX + digest)


def public_key_to_address(uncompressed: bytes) -> bytes:
    """Ethereum address of a 65-byte uncompressed public key."""
    return keccak256(uncompressed[1:])[12:]


def check_signature(signature: bytes) -> None:
    """Raise a specific error unless ``signature`` is a canonical 65-byte r||s||v."""
    if len(signature) != 65:
        raise SignatureLengthError(f"signature must be 65 bytes, got {len(signature)}")
    v = signature[64]
    if v not in (27, 28):
        raise SignatureVError(f"signature v must be 27 or 28, got {v}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise SignatureRangeError("signature r and s must be in 1..n-1")
    if s > SECP256K1_HALF_N:
        raise MalleableSignatureError("signature s is in the upper half of the curve order")


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """Recover the 20-byte signer address of a canonical signature over a 32-byte digest."""
    check_signature(signature)
    if len(digest) != 32:
        raise SignatureRecoveryError("digest must be 32 bytes")
    # libsecp256k1 through coincurve's cffi binding directly: the PublicKey wrapper adds
    # a third to the cost of recovery, which dominates opening a sealed book.
    rsig = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
    pub = _ffi.new("secp256k1_pubkey *")
    ctx = _CTX.ctx
    ok = _lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
        ctx, rsig, signature[:64], signature[64] - 27
    ) and _lib.secp256k1_ecdsa_recover(ctx, pub, rsig, digest)
    if not ok:
        raise SignatureRecoveryError("no public key recovers from this signature")
    out = _ffi.new("unsigned char[65]")
    out_len = _ffi.new("size_t *", 65)
    _lib.secp256k1_ec_pubkey_serialize(ctx, out, out_len, pub, _lib.SECP256K1_EC_UNCOMPRESSED)
    return keccak256(bytes(_ffi.buffer(out, 65))[1:])[12:]


__all__ = [
    "SECP256K1_N",
    "Signer",
    "check_signature",
    "eip191_digest",
    "public_key_to_address",
    "recover_address",
]
