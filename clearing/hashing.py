"""Keccak-256 through a C backend (safe-pysha3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

import sha3


class KeccakHash(Protocol):
    """The part of a pysha3 hash object qev uses."""

    def digest(self) -> bytes: ...


#: ``keccak_256(data).digest()``: the raw constructor, for hot loops that hash millions.
keccak_256 = cast("Callable[[bytes], KeccakHash]", sha3.keccak_256)


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte Keccak-256 digest of ``data`` (Ethereum's hash, not SHA3-256)."""
    return keccak_256(data).digest()


__all__ = ["KeccakHash", "keccak256", "keccak_256"]
