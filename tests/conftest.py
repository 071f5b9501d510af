"""Shared fixtures: a deterministic EIP-712 domain, auction key and controller keys."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, settings

from clearing.eip712 import Eip712Domain
from clearing.sealing import derive_auction_secret, public_key_of
from clearing.signing import Signer

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci")

AUCTION_ID = 1_767_225_600  # a window boundary: genesis + k * 30 days
SETTLEMENT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")


def make_key(label: str) -> bytes:
    """A deterministic secp256k1 test key (generated here, never a real key)."""
    return hashlib.sha256(b"qev-test-key:" + label.encode()).digest()


@pytest.fixture
def domain() -> Eip712Domain:
    return Eip712Domain("QEVSettlement", "1", 31337, SETTLEMENT)


@pytest.fixture
def auction_secret() -> bytes:
    return derive_auction_secret(b"\x11" * 32, AUCTION_ID)


@pytest.fixture
def auction_public_key(auction_secret: bytes) -> bytes:
    return public_key_of(auction_secret)


@pytest.fixture
def alice() -> Signer:
    return Signer(make_key("alice"))


@pytest.fixture
def bob() -> Signer:
    return Signer(make_key("bob"))
