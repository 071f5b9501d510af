"""The dev service's deterministic holders: addresses derived once and kept in a file."""

from __future__ import annotations

from pathlib import Path

from clearing.api.devserver import DerivedHolders, holder_addresses, holder_key
from clearing.signing import Signer


def test_addresses_are_derived_once_and_extended(tmp_path: Path) -> None:
    cache = tmp_path / "holders.bin"
    expected = [Signer(holder_key("s", i)).address for i in range(8)]
    assert holder_addresses("s", 5, cache) == expected[:5]
    assert cache.read_bytes() == b"".join(expected[:5])
    assert holder_addresses("s", 3, cache) == expected[:3]  # a longer file serves a shorter run
    assert cache.read_bytes() == b"".join(expected[:5])
    assert holder_addresses("s", 8, cache) == expected  # extended, not re-derived from scratch
    assert cache.read_bytes() == b"".join(expected)
    assert [p.name for p in tmp_path.iterdir()] == ["holders.bin"]


def test_reader_serves_exactly_the_holders(tmp_path: Path) -> None:
    reader = DerivedHolders("s", 4, 1_000, tmp_path / "h.bin")
    info = reader.redemption(3)
    assert info is not None and info.controller == Signer(holder_key("s", 3)).address
    assert info.redemption_timestamp == 1_000 and info.redemption_id == 3
    assert reader.redemption(4) is None and reader.redemption(-1) is None
