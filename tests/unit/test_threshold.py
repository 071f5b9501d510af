"""The threshold key core (DESIGN 10): group arithmetic, the DKG with cheating dealers, the
X25519 form, and that t - 1 keypers cannot open a bid while t can."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from nacl import bindings as sodium

from clearing.errors import DecryptionError
from clearing.sealing import bid_info, open_sealed, public_key_of, seal
from clearing.threshold import (
    Deal,
    L,
    NotEnoughSharesError,
    Polynomial,
    Transcript,
    base_mul,
    combine,
    commitments,
    dkg_info,
    group_public_key,
    make_deal,
    open_share,
    point_add,
    point_mul,
    public_share,
    qualified,
    released_share_is_valid,
    secret_share,
    share_is_valid,
    x25519_private_key,
    x25519_public_key,
)

SETTLEMENT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
T = 1_767_225_600
scalars = st.integers(min_value=1, max_value=L - 1)


def _rng(seed: int):
    r = random.Random(seed)
    return lambda: r.randrange(1, L)


def test_the_x25519_form_on_10000_random_keys():
    """X25519(k, 9) == the Montgomery form of sk * B, checked with `cryptography`."""
    rand = _rng(1)
    for _ in range(10_000):
        sk = rand()
        k = x25519_private_key(sk)
        assert k[0] & 7 == 0 and k[31] & 0xC0 == 0x40  # clamping leaves it unchanged
        expected = x25519_public_key(base_mul(sk))
        assert X25519PrivateKey.from_private_bytes(k).public_key().public_bytes_raw() == expected


@given(scalars, scalars)
def test_group_arithmetic_matches_libsodium_scalars(a, b):
    assert point_add(base_mul(a), base_mul(b)) == base_mul((a + b) % L) if (a + b) % L else True
    assert point_mul(b, base_mul(a)) == base_mul(a * b % L)
    mul = sodium.crypto_core_ed25519_scalar_mul(a.to_bytes(32, "little"), b.to_bytes(32, "little"))
    assert int.from_bytes(mul, "little") == a * b % L
    add = sodium.crypto_core_ed25519_scalar_add(a.to_bytes(32, "little"), b.to_bytes(32, "little"))
    assert int.from_bytes(add, "little") == (a + b) % L


def test_feldman_check():
    poly = Polynomial.random(2, _rng(2))
    commits = commitments(poly)
    assert all(share_is_valid(poly(j), commits, j) for j in range(1, 6))
    assert not share_is_valid(poly(1) + 1, commits, 1)
    assert not share_is_valid(poly(1), commits, 2)
    assert not share_is_valid(0, commits, 1)
    assert not share_is_valid(L + 5, commits, 1)


class Committee:
    """n keypers with identity keys; dealing with optional cheating."""

    def __init__(self, n: int, t: int, seed: int = 3) -> None:
        self.n, self.t = n, t
        r = random.Random(seed)
        self.identity = {j: r.randbytes(32) for j in range(1, n + 1)}
        self.identity_public = {j: public_key_of(k) for j, k in self.identity.items()}
        self.rand = _rng(seed)

    def info(self, i: int, j: int) -> bytes:
        return dkg_info(31337, SETTLEMENT, T, i, j)

    def deal_all(self):
        deals, polys = {}, {}
        for i in range(1, self.n + 1):
            deals[i], polys[i] = make_deal(i, self.t, self.identity_public, self.info, self.rand)
        return deals, polys

    def received(self, deals, j):
        """What keyper j opens and checks: (valid shares, complaints)."""
        shares, complaints = {}, set()
        for i, deal in deals.items():
            try:
                share = open_share(deal.sealed_shares[j], self.identity[j], self.info(i, j))
            except Exception:
                complaints.add((j, i))
                continue
            if share_is_valid(share, deal.commitments, j):
                shares[i] = share
            else:
                complaints.add((j, i))
        return shares, complaints


def _run(committee: Committee, deals, answers=None):
    received = {j: committee.received(deals, j) for j in range(1, committee.n + 1)}
    complaints = set().union(*(c for _, c in received.values()))
    answers = answers or {}
    q = qualified(deals, committee.t, complaints, answers)
    for (dealer, keyper), share in answers.items():
        if dealer in q:
            received[keyper][0][dealer] = share
    shares = {j: secret_share(received[j][0], q) for j in received}
    return q, complaints, shares


def test_honest_dkg_any_three_open_two_cannot():
    c = Committee(5, 3)
    deals, polys = c.deal_all()
    q, complaints, shares = _run(c, deals)
    assert q == {1, 2, 3, 4, 5} and not complaints
    pk_edwards = group_public_key(deals, q)
    sk_true = sum(p.coefficients[0] for p in polys.values()) % L
    assert base_mul(sk_true) == pk_edwards
    for j, s in shares.items():
        assert released_share_is_valid(s, public_share(deals, q, j))
    auction_pk = x25519_public_key(pk_edwards)
    info = bid_info(31337, SETTLEMENT, T)
    envelope = seal(b"a sealed bid", auction_pk, info)
    for trio in ((1, 2, 3), (1, 4, 5), (2, 3, 5)):
        sk = combine({j: shares[j] for j in trio}, 3)
        assert sk == sk_true
        assert open_sealed(envelope, x25519_private_key(sk), info) == b"a sealed bid"
    # two keypers pooling their material: every way they might combine fails to open
    pair = {1: shares[1], 2: shares[2]}
    with pytest.raises(NotEnoughSharesError):
        combine(pair, 3)
    for guess in (combine(pair, 2), shares[1], shares[2], (shares[1] + shares[2]) % L):
        with pytest.raises(DecryptionError):
            open_sealed(envelope, x25519_private_key(guess), info)


def test_a_wrong_share_answered_correctly_keeps_the_dealer():
    c = Committee(5, 3)
    deals, polys = c.deal_all()
    bad = dict(deals[2].sealed_shares)
    bad[4] = seal(
        ((polys[2](4) + 1) % L).to_bytes(32, "little"), c.identity_public[4], c.info(2, 4)
    )
    deals[2] = Deal(2, deals[2].commitments, bad)
    q, complaints, shares = _run(c, deals, answers={(2, 4): polys[2](4)})
    assert complaints == {(4, 2)} and q == {1, 2, 3, 4, 5}
    assert combine(shares, 3) == sum(p.coefficients[0] for p in polys.values()) % L


@pytest.mark.parametrize(
    "cheat", ["wrong_answer", "no_answer", "no_deal", "bad_commitments", "garbled"]
)
def test_a_cheating_dealer_is_disqualified(cheat):
    c = Committee(5, 3)
    deals, polys = c.deal_all()
    answers = {}
    if cheat == "bad_commitments":
        deals[3] = Deal(3, deals[3].commitments[:2], deals[3].sealed_shares)
    elif cheat == "no_deal":
        deals[3] = Deal(3, deals[3].commitments, {j: b"" for j in deals[3].sealed_shares})
    else:
        bad = dict(deals[3].sealed_shares)
        if cheat == "garbled":
            bad[1] = bad[1][:-1] + bytes([bad[1][-1] ^ 1])
        else:
            wrong = (polys[3](1) + 7) % L
            bad[1] = seal(wrong.to_bytes(32, "little"), c.identity_public[1], c.info(3, 1))
            if cheat == "wrong_answer":
                answers[(3, 1)] = wrong
        deals[3] = Deal(3, deals[3].commitments, bad)
    q, _, shares = _run(c, deals, answers)
    assert q == {1, 2, 4, 5}
    pk = group_public_key(deals, q)
    sk = combine({j: shares[j] for j in (2, 4, 5)}, 3)
    assert base_mul(sk) == pk == base_mul(sum(polys[i].coefficients[0] for i in q) % L)
    for j in (1, 2, 3, 4, 5):
        assert released_share_is_valid(shares[j], public_share(deals, q, j))


def test_too_few_qualified_dealers():
    c = Committee(3, 3)
    deals, _ = c.deal_all()
    deals[1] = Deal(1, deals[1].commitments[:1], deals[1].sealed_shares)
    with pytest.raises(NotEnoughSharesError):
        _run(c, deals)


def test_released_share_check_catches_a_lie():
    c = Committee(5, 3)
    deals, _ = c.deal_all()
    q, _, shares = _run(c, deals)
    assert not released_share_is_valid((shares[2] + 1) % L, public_share(deals, q, 2))
    assert not released_share_is_valid(shares[2], public_share(deals, q, 3))


def test_transcript_hash_is_canonical_and_binding():
    c = Committee(5, 3)
    deals, _ = c.deal_all()
    args = dict(chain_id=31337, settlement=SETTLEMENT, auction_id=T, n=5, t=3)
    a = Transcript(
        **args, deals=deals, complaints=frozenset(), answers={}, qualified=frozenset(deals)
    )
    reordered = dict(reversed(list(deals.items())))
    b = Transcript(
        **args, deals=reordered, complaints=frozenset(), answers={}, qualified=frozenset(deals)
    )
    assert a.hash() == b.hash() and len(a.hash()) == 32
    fewer = Transcript(
        **args,
        deals=deals,
        complaints=frozenset({(1, 3)}),
        answers={},
        qualified=frozenset({1, 2, 4, 5}),
    )
    assert fewer.hash() != a.hash()
    other_auction = Transcript(
        **{**args, "auction_id": T + 1},
        deals=deals,
        complaints=frozenset(),
        answers={},
        qualified=frozenset(deals),
    )
    assert other_auction.hash() != a.hash()
