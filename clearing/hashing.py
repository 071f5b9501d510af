"""Keccak-256 through a C backend (safe-pysha3)."""

from __future__ import annotations

from sha3 import keccak_256 as _keccak_256


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte Keccak-256 digest of ``data`` (Ethereum's hash, not SHA3-256)."""
    return _keccak_256(data).digest()


__all__ = ["keccak256"]
