"""Rule 0: each exclusion reason, the effective size, and the parallel driver's equality."""

from __future__ import annotations

import pytest

from clearing import abi
from clearing.bidding import seal_bid
from clearing.engine import ValidBid
from clearing.model import PLAINTEXT_TYPES, Bid, Envelope, SignedBid
from clearing.parallel import validate_book_parallel
from clearing.sealing import bid_info, seal
from clearing.signing import SECP256K1_N, Signer
from clearing.validation import (
    AuctionContext,
    Exclusion,
    ExclusionReason,
    RequestSnapshot,
    validate_book,
)
from tests.conftest import AUCTION_ID, make_key

E18 = 10**18


@pytest.fixture
def ctx(domain, auction_secret):
    return AuctionContext(AUCTION_ID, domain, auction_secret)


@pytest.fixture
def requests_(alice, bob):
    return {
        1: RequestSnapshot(1, alice.address, 50 * E18, AUCTION_ID - 86_400, 0),
        2: RequestSnapshot(2, bob.address, 10 * E18, AUCTION_ID, 3),
        3: RequestSnapshot(3, alice.address, 5 * E18, AUCTION_ID + 1, 0),  # matures later
        4: RequestSnapshot(4, alice.address, 0, AUCTION_ID - 1, 0),  # fully serviced
        5: RequestSnapshot(5, bob.address, 5 * E18, AUCTION_ID - 1, 0),  # bob's request
    }


def _sealed_with_plaintext(signer, domain, public_key, rid, plaintext):
    info = bid_info(domain.chain_id, domain.verifying_contract, AUCTION_ID)
    ct = seal(plaintext, public_key, info)
    env = Envelope(AUCTION_ID, rid, signer.address, ct, b"")
    return Envelope(AUCTION_ID, rid, signer.address, ct, signer.sign_digest(env.digest(domain)))


def _one(envelope, ctx, requests_):
    valid, excluded = validate_book([envelope], ctx, requests_)
    return (valid + excluded)[0]  # type: ignore[operator]


def test_valid_bid_takes_the_smaller_of_shares_and_pending(
    alice, bob, domain, auction_public_key, ctx, requests_
):
    env = seal_bid(alice, Bid(AUCTION_ID, 1, 80 * E18, 250, 0), domain, auction_public_key)
    assert _one(env, ctx, requests_) == ValidBid(1, alice.address, 250, 50 * E18)
    env = seal_bid(bob, Bid(AUCTION_ID, 2, 4 * E18, 10_000, 3), domain, auction_public_key)
    assert _one(env, ctx, requests_) == ValidBid(2, bob.address, 10_000, 4 * E18)  # matures at T


def _reason(out) -> ExclusionReason:
    assert isinstance(out, Exclusion), out
    return out.reason


def test_each_exclusion_reason(
    alice, bob, domain, auction_public_key, auction_secret, ctx, requests_
):
    pk = auction_public_key

    def bid(rid, shares=E18, bp=100, nonce=0, auction=AUCTION_ID):
        return Bid(auction, rid, shares, bp, nonce)

    good = seal_bid(alice, bid(1), domain, pk)
    cases = {
        ExclusionReason.UNDECRYPTABLE: Envelope(
            AUCTION_ID, 1, alice.address, good.ciphertext[:-1] + b"\x00", good.signature
        ),
        ExclusionReason.MALFORMED_PLAINTEXT: _sealed_with_plaintext(
            alice,
            domain,
            pk,
            1,
            abi.encode(PLAINTEXT_TYPES, (AUCTION_ID, 1, E18, 100, 0, b"\x01" * 64)),
        ),
        ExclusionReason.ENVELOPE_MISMATCH: _sealed_with_plaintext(
            alice,
            domain,
            pk,
            1,
            SignedBid(bid(9), alice.sign_digest(bid(9).digest(domain))).encode(),
        ),
        ExclusionReason.BAD_SIGNATURE: _sealed_with_plaintext(
            alice, domain, pk, 1, SignedBid(bid(1), bytes(64) + b"\x1b").encode()
        ),
        ExclusionReason.SIGNER_NOT_CONTROLLER: _sealed_with_plaintext(
            alice, domain, pk, 1, SignedBid(bid(1), bob.sign_digest(bid(1).digest(domain))).encode()
        ),
        ExclusionReason.BASIS_POINT_OUT_OF_RANGE: seal_bid(alice, bid(1, bp=9), domain, pk),
        ExclusionReason.ZERO_SHARES: seal_bid(alice, bid(1, shares=0), domain, pk),
        ExclusionReason.STALE_NONCE: seal_bid(bob, bid(2, nonce=2), domain, pk),
        ExclusionReason.NOT_MATURED: seal_bid(alice, bid(3), domain, pk),
        ExclusionReason.NO_PENDING_SHARES: seal_bid(alice, bid(4), domain, pk),
        ExclusionReason.NOT_CONTROLLER: seal_bid(alice, bid(5), domain, pk),
    }
    assert set(cases) == set(ExclusionReason)
    for reason, envelope in cases.items():
        out = _one(envelope, ctx, requests_)
        assert _reason(out) == reason, (reason, out)
        assert out.ciphertext_hash == envelope.ciphertext_hash


def test_unknown_request_has_no_pending_shares(alice, domain, auction_public_key, ctx, requests_):
    env = seal_bid(alice, Bid(AUCTION_ID, 77, E18, 100, 0), domain, auction_public_key)
    assert _reason(_one(env, ctx, requests_)) == ExclusionReason.NO_PENDING_SHARES


def test_malleable_inner_signature_is_a_bad_signature(
    alice, domain, auction_public_key, ctx, requests_
):
    b = Bid(AUCTION_ID, 1, E18, 100, 0)
    sig = alice.sign_digest(b.digest(domain))
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - sig[64],))
    env = _sealed_with_plaintext(alice, domain, auction_public_key, 1, SignedBid(b, twin).encode())
    out = _one(env, ctx, requests_)
    assert _reason(out) == ExclusionReason.BAD_SIGNATURE
    assert "upper half" in out.detail


def test_bid_for_another_auction_cannot_even_be_opened(
    alice, domain, auction_public_key, ctx, requests_
):
    """A replay from another auction was sealed under another info: it never decrypts."""
    other = AUCTION_ID + 30 * 86_400
    env = seal_bid(alice, Bid(other, 1, E18, 100, 0), domain, auction_public_key)
    relabelled = Envelope(AUCTION_ID, 1, env.controller, env.ciphertext, env.signature)
    assert _reason(_one(relabelled, ctx, requests_)) == ExclusionReason.UNDECRYPTABLE


def test_parallel_driver_gives_the_same_result_in_the_same_order(domain, auction_public_key, ctx):
    signers = [Signer(make_key(f"holder-{i}")) for i in range(6)]
    envelopes, requests = [], {}
    for rid in range(40):
        s = signers[rid % 6]
        requests[rid] = RequestSnapshot(rid, s.address, (rid + 1) * E18, AUCTION_ID - 5, 0)
        bp = 9 if rid % 7 == 0 else 10 + rid * 37  # every 7th is out of range
        envelopes.append(
            seal_bid(s, Bid(AUCTION_ID, rid, 2 * E18, bp, 0), domain, auction_public_key)
        )
    serial = validate_book(envelopes, ctx, requests)
    ran: list[str] = []  # the caller's work while the workers open the book, once either way
    parallel = validate_book_parallel(
        envelopes, ctx, requests, workers=2, min_parallel=1, meanwhile=lambda: ran.append("p")
    )
    in_process = validate_book_parallel(
        envelopes, ctx, requests, workers=1, meanwhile=lambda: ran.append("s")
    )
    assert parallel == serial == in_process
    assert ran == ["p", "s"]
    assert len(serial[0]) == 34 and len(serial[1]) == 6
