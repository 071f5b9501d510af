"""EIP-712 digests equal eth_account's; signatures recover strictly; receipts verify."""

from __future__ import annotations

import eth_abi
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from clearing.eip712 import Eip712Domain, sealed_bid_struct_hash
from clearing.errors import (
    BadKeyError,
    MalleableSignatureError,
    SignatureLengthError,
    SignatureRangeError,
    SignatureRecoveryError,
    SignatureVError,
)
from clearing.hexcodec import to_checksum_address
from clearing.model import Bid, Envelope, cancel_digest
from clearing.receipts import Receipt, ReceiptKind
from clearing.signing import SECP256K1_N, Signer, recover_address
from tests.conftest import make_key

u64 = st.integers(0, 2**64 - 1)
u256 = st.integers(0, 2**256 - 1)
domains = st.builds(
    Eip712Domain,
    st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=8),
    st.integers(1, 2**64),
    st.binary(min_size=20, max_size=20),
)

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
BID_FIELDS = [
    {"name": "auctionId", "type": "uint64"},
    {"name": "redemptionId", "type": "uint256"},
    {"name": "redemptionShares", "type": "uint256"},
    {"name": "basisPoint", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
]
ENVELOPE_FIELDS = [
    {"name": "auctionId", "type": "uint64"},
    {"name": "redemptionId", "type": "uint256"},
    {"name": "ciphertextHash", "type": "bytes32"},
]


def _typed(domain: Eip712Domain, primary: str, fields, message) -> bytes:
    full = {
        "types": {"EIP712Domain": DOMAIN_FIELDS, primary: fields},
        "primaryType": primary,
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": to_checksum_address(domain.verifying_contract),
        },
        "message": message,
    }
    signable = encode_typed_data(full_message=full)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@given(domains, u64, u256, u256, u256, u256)
def test_bid_digest_equals_eth_account(domain, a, r, s, bp, n):
    bid = Bid(a, r, s, bp, n)
    message = {
        "auctionId": a,
        "redemptionId": r,
        "redemptionShares": s,
        "basisPoint": bp,
        "nonce": n,
    }
    assert bid.digest(domain) == _typed(domain, "Bid", BID_FIELDS, message)


@given(domains, u64, u256, st.binary(min_size=32, max_size=32))
def test_sealed_and_cancel_digests_equal_eth_account(domain, a, r, h):
    message = {"auctionId": a, "redemptionId": r, "ciphertextHash": h}
    env = Envelope(a, r, b"\x00" * 20, b"", b"")
    sealed = _typed(domain, "SealedBid", ENVELOPE_FIELDS, message)
    cancel = _typed(domain, "CancelBid", ENVELOPE_FIELDS, message)
    assert domain.digest(sealed_bid_struct_hash(a, r, h)) == sealed
    assert cancel_digest(domain, a, r, h) == cancel
    assert sealed != cancel
    assert env.digest(domain) == domain.digest(sealed_bid_struct_hash(a, r, env.ciphertext_hash))


def test_signature_matches_eth_account_and_recovers(domain):
    key = make_key("carol")
    signer = Signer(key)
    acct = Account.from_key(key)
    assert signer.address == bytes.fromhex(acct.address[2:])
    digest = Bid(1, 2, 3, 4, 5).digest(domain)
    sig = signer.sign_digest(digest)
    assert sig == acct.unsafe_sign_hash(digest).signature
    assert recover_address(digest, sig) == signer.address
    assert "carol" not in repr(signer) and key.hex() not in repr(signer)


def test_eip191_receipt_signature_matches_eth_account(alice):
    receipt = Receipt(7, 8, alice.address, b"\x22" * 32, 9, 10).signed_by(alice)
    expected = Account.sign_message(
        encode_defunct(primitive=receipt.digest()), private_key=make_key("alice")
    ).signature
    assert receipt.service_signature == expected
    assert receipt.signer_address() == alice.address


addresses = st.binary(min_size=20, max_size=20)
hashes = st.binary(min_size=32, max_size=32)


@given(u64, u256, addresses, hashes, u64, u64, st.sampled_from(list(ReceiptKind)))
def test_receipt_digest_is_keccak_of_eth_abi_encoding(
    auction, rid, controller, ct_hash, seq, at, kind
):
    expected = keccak(
        eth_abi.encode(
            ["uint64", "uint256", "address", "bytes32", "uint64", "uint64", "uint8"],
            [auction, rid, controller, ct_hash, seq, at, int(kind)],
        )
    )
    assert Receipt(auction, rid, controller, ct_hash, seq, at, kind).digest() == expected


def test_cancel_receipt_is_not_a_bid_receipt(alice):
    """Rev 2: the same fields with kind 1 sign a different digest (item 5 of the review)."""
    bid = Receipt(7, 8, alice.address, b"\x22" * 32, 9, 10).signed_by(alice)
    cancel = Receipt(7, 8, alice.address, b"\x22" * 32, 9, 10, ReceiptKind.CANCEL).signed_by(alice)
    assert bid.digest() != cancel.digest()
    assert bid.service_signature != cancel.service_signature
    relabelled = Receipt(
        7, 8, alice.address, b"\x22" * 32, 9, 10, ReceiptKind.CANCEL, bid.service_signature
    )
    assert relabelled.signer_address() != alice.address


def test_tampered_receipt_does_not_recover_the_service(alice):
    receipt = Receipt(7, 8, alice.address, b"\x22" * 32, 9, 10).signed_by(alice)
    forged = Receipt(
        7, 8, alice.address, b"\x22" * 32, 10, 10, service_signature=receipt.service_signature
    )
    assert forged.signer_address() != alice.address


def _high_s(sig: bytes) -> bytes:
    s = int.from_bytes(sig[32:64], "big")
    v = 55 - sig[64]  # the other parity
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((v,))


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (_high_s, MalleableSignatureError),
        (lambda s: s[:64] + b"\x00", SignatureVError),
        (lambda s: s[:64] + b"\x01", SignatureVError),
        (lambda s: s[:64] + b"\x1d", SignatureVError),
        (lambda s: s[:64], SignatureLengthError),
        (lambda s: s + b"\x00", SignatureLengthError),
        (lambda s: bytes(32) + s[32:], SignatureRangeError),
        (lambda s: s[:32] + SECP256K1_N.to_bytes(32, "big") + s[64:], SignatureRangeError),
        (lambda s: (SECP256K1_N - 1).to_bytes(32, "big") + s[32:], SignatureRecoveryError),
    ],
)
def test_non_canonical_signatures_are_refused(alice, mutate, error):
    digest = b"\x42" * 32
    sig = alice.sign_digest(digest)
    with pytest.raises(error):
        recover_address(digest, mutate(sig))


def test_high_s_twin_would_recover_the_same_key(alice):
    """The refused high-s form is a real malleable twin (same signer), so refusing matters."""
    digest = b"\x42" * 32
    twin = _high_s(alice.sign_digest(digest))
    recovered = Account._recover_hash(digest, signature=twin)
    assert recovered == to_checksum_address(alice.address)


def test_bad_private_keys_are_refused():
    for secret in (bytes(32), SECP256K1_N.to_bytes(32, "big"), b"\x01" * 31):
        with pytest.raises(BadKeyError):
            Signer(secret)
