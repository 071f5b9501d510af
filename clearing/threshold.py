"""Threshold auction keys: a Joint-Feldman DKG over Ed25519's prime-order group (DESIGN 10).

Pure: no I/O, clock or environment; randomness comes from a ``random_scalar`` callable
(``secrets`` by default). Group operations are libsodium's, through PyNaCl. Scalars are
Python ints modulo ``L``; points are 32-byte compressed Edwards encodings.

The flow, for an auction ``T`` and a committee of ``n`` keypers with threshold ``t``:

- every dealer ``i`` draws ``f_i`` of degree ``t - 1`` and publishes ``commitments(f_i)``
  and ``f_i(j)`` sealed to each keyper ``j`` (``seal_share``; ``dkg_info``);
- every keyper checks its shares (``share_is_valid``), complains about bad or missing ones;
  a dealer answers a complaint with the share in the clear; ``qualified`` decides who stays;
- ``group_public_key`` is ``sum C_i0`` over the qualified set; its Montgomery form is the
  auction's ordinary X25519 public key (``x25519_public_key``);
- after the book is on-chain each keyper releases ``secret_share``; anyone checks it against
  ``public_share``; any ``t`` of them ``combine`` to ``sk``; ``x25519_private_key(sk)`` is an
  ordinary X25519 private key for that public key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from nacl import bindings as sodium
from nacl.exceptions import RuntimeError as SodiumRuntimeError

from clearing.errors import QevError
from clearing.hashing import keccak256
from clearing.sealing import open_sealed, seal

#: The order of Ed25519's prime-order subgroup.
L = 2**252 + 27742317777372353535851937790883648493
DKG_INFO_PREFIX = b"qev-dkg-v1"
TRANSCRIPT_PREFIX = b"qev-dkg-transcript-v1"
_INV8 = pow(8, -1, L)
_TOP = 2**254


class ThresholdError(QevError):
    """A DKG message, share or combination that cannot be used."""

    code = "threshold"


class NotEnoughSharesError(ThresholdError):
    """Fewer valid shares (or qualified dealers) than the threshold."""

    code = "not_enough_shares"


# --- the group ------------------------------------------------------------------------


def _bytes(scalar: int) -> bytes:
    return (scalar % L).to_bytes(32, "little")


def base_mul(scalar: int) -> bytes:
    """``scalar * B`` (``scalar`` reduced mod ``L``; zero has no encoding and is refused)."""
    if scalar % L == 0:
        raise ThresholdError("the zero scalar has no point")
    return bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(_bytes(scalar)))


def point_mul(scalar: int, point: bytes) -> bytes:
    """``scalar * point`` on the prime-order group."""
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_noclamp(_bytes(scalar), point))
    except SodiumRuntimeError as exc:
        raise ThresholdError("point multiplication gave the identity or a bad point") from exc


def point_add(p: bytes, q: bytes) -> bytes:
    """``p + q``."""
    try:
        return bytes(sodium.crypto_core_ed25519_add(p, q))
    except (SodiumRuntimeError, TypeError, ValueError) as exc:
        raise ThresholdError("not a valid point") from exc


def is_point(data: bytes) -> bool:
    """Whether ``data`` encodes a point of the prime-order subgroup (not small order)."""
    return len(data) == 32 and bool(sodium.crypto_core_ed25519_is_valid_point(data))


def point_sum(points: Iterable[bytes]) -> bytes:
    """The sum of a non-empty sequence of points."""
    total: bytes | None = None
    for p in points:
        total = p if total is None else point_add(total, p)
    if total is None:
        raise ThresholdError("an empty sum has no point")
    return total


def random_scalar() -> int:
    """A uniform non-zero scalar from the OS's CSPRNG."""
    return secrets.randbelow(L - 1) + 1


# --- dealing and checking -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Polynomial:
    """``f(x) = sum a_k x^k`` over Z_L; ``a_0`` is the dealer's contribution to the key."""

    coefficients: tuple[int, ...]

    @classmethod
    def random(cls, degree: int, rand: Callable[[], int] = random_scalar) -> Polynomial:
        """A random polynomial of ``degree`` (non-zero coefficients)."""
        return cls(tuple(rand() for _ in range(degree + 1)))

    def __call__(self, x: int) -> int:
        acc = 0
        for a in reversed(self.coefficients):
            acc = (acc * x + a) % L
        return acc


def commitments(poly: Polynomial) -> tuple[bytes, ...]:
    """Feldman commitments ``C_k = a_k * B``."""
    return tuple(base_mul(a) for a in poly.coefficients)


def share_point(commits: tuple[bytes, ...], j: int) -> bytes:
    """``sum_k j^k * C_k``: what ``f(j) * B`` must equal."""
    return point_sum(c if k == 0 else point_mul(pow(j, k, L), c) for k, c in enumerate(commits))


def share_is_valid(share: int, commits: tuple[bytes, ...], j: int) -> bool:
    """Feldman check of dealer share ``f(j)`` against the dealer's commitments."""
    if not 0 < share < L:
        return False
    try:
        return base_mul(share) == share_point(commits, j)
    except ThresholdError:
        return False


def commitments_are_valid(commits: tuple[bytes, ...], t: int) -> bool:
    """``t`` commitments, each a point of the prime-order group."""
    return len(commits) == t and all(is_point(c) for c in commits)


def dkg_info(chain_id: int, settlement: bytes, auction_id: int, dealer: int, keyper: int) -> bytes:
    """HPKE ``info`` of dealer ``dealer``'s share for keyper ``keyper`` (DESIGN 10)."""
    return (
        DKG_INFO_PREFIX
        + chain_id.to_bytes(32, "big")
        + settlement
        + auction_id.to_bytes(8, "big")
        + dealer.to_bytes(2, "big")
        + keyper.to_bytes(2, "big")
    )


def seal_share(share: int, identity_public_key: bytes, info: bytes) -> bytes:
    """``f_i(j)`` (32 bytes, little-endian) HPKE-sealed to keyper ``j``'s identity key."""
    return seal(_bytes(share), identity_public_key, info)


def open_share(ciphertext: bytes, identity_private_key: bytes, info: bytes) -> int:
    """The share in ``ciphertext``; raises ``SealingError`` or ``ThresholdError``."""
    raw = open_sealed(ciphertext, identity_private_key, info)
    if len(raw) != 32:
        raise ThresholdError("a sealed share is 32 bytes")
    value = int.from_bytes(raw, "little")
    if not 0 < value < L:
        raise ThresholdError("a share is a non-zero scalar below L")
    return value


@dataclass(frozen=True, slots=True)
class Deal:
    """What dealer ``dealer`` publishes: commitments and one sealed share per keyper."""

    dealer: int
    commitments: tuple[bytes, ...]
    sealed_shares: Mapping[int, bytes]


def make_deal(
    dealer: int,
    t: int,
    identity_keys: Mapping[int, bytes],
    info: Callable[[int, int], bytes],
    rand: Callable[[], int] = random_scalar,
) -> tuple[Deal, Polynomial]:
    """Deal a fresh polynomial of degree ``t - 1`` to every keyper in ``identity_keys``.

    ``info(dealer, keyper)`` gives each share's HPKE info. Returns the public deal and the
    polynomial (which the dealer keeps to answer complaints).
    """
    poly = Polynomial.random(t - 1, rand)
    sealed = {j: seal_share(poly(j), pk, info(dealer, j)) for j, pk in identity_keys.items()}
    return Deal(dealer, commitments(poly), sealed), poly


def qualified(
    deals: Mapping[int, Deal],
    t: int,
    complaints: Iterable[tuple[int, int]],
    answers: Mapping[tuple[int, int], int],
) -> frozenset[int]:
    """The qualified dealers (Joint-Feldman complaint round).

    ``complaints`` are ``(keyper, dealer)`` pairs; ``answers[(dealer, keyper)]`` is the
    share the dealer published in the clear. A dealer is out if its commitments are not
    ``t`` valid points, or any complaint against it has no answer or an answer that fails
    the Feldman check. Raises ``NotEnoughSharesError`` if fewer than ``t`` remain.
    """
    out = {i for i, d in deals.items() if not commitments_are_valid(d.commitments, t)}
    for keyper, dealer in complaints:
        if dealer not in deals or dealer in out:
            continue
        answer = answers.get((dealer, keyper))
        if answer is None or not share_is_valid(answer, deals[dealer].commitments, keyper):
            out.add(dealer)
    q = frozenset(i for i in deals if i not in out)
    if len(q) < t:
        raise NotEnoughSharesError(f"{len(q)} qualified dealers, the threshold is {t}")
    return q


def group_public_key(deals: Mapping[int, Deal], q: Iterable[int]) -> bytes:
    """``PK = sum_{i in Q} C_i0`` (Edwards)."""
    return point_sum(deals[i].commitments[0] for i in sorted(q))


def x25519_public_key(edwards_point: bytes) -> bytes:
    """The Montgomery u-coordinate of an Edwards point: the auction's X25519 public key."""
    return bytes(sodium.crypto_sign_ed25519_pk_to_curve25519(edwards_point))


def public_share(deals: Mapping[int, Deal], q: Iterable[int], j: int) -> bytes:
    """``S_j = sum_{i in Q} sum_k j^k C_ik``: keyper ``j``'s public share (anyone computes it)."""
    return point_sum(share_point(deals[i].commitments, j) for i in sorted(q))


def secret_share(dealer_shares: Mapping[int, int], q: Iterable[int]) -> int:
    """``s_j = sum_{i in Q} f_i(j)`` from the shares keyper ``j`` received (or was answered)."""
    missing = [i for i in q if i not in dealer_shares]
    if missing:
        raise ThresholdError(f"no share from qualified dealers {sorted(missing)}")
    return sum(dealer_shares[i] for i in q) % L


def released_share_is_valid(share: int, public: bytes) -> bool:
    """``s_j * B == S_j``: a released share is the keyper's real share."""
    return 0 < share < L and base_mul(share) == public


def lagrange_at_zero(indices: Iterable[int]) -> dict[int, int]:
    """``lambda_j = prod_{m != j} m / (m - j) mod L`` for each index."""
    xs = sorted(set(indices))
    out = {}
    for j in xs:
        num, den = 1, 1
        for m in xs:
            if m != j:
                num = num * m % L
                den = den * (m - j) % L
        out[j] = num * pow(den, -1, L) % L
    return out


def combine(shares: Mapping[int, int], t: int) -> int:
    """``sk = sum lambda_j s_j`` from ``t`` (or more: the first ``t`` by index) shares."""
    if len(shares) < t:
        raise NotEnoughSharesError(f"{len(shares)} shares, the threshold is {t}")
    chosen = sorted(shares)[:t]
    lambdas = lagrange_at_zero(chosen)
    return sum(lambdas[j] * shares[j] for j in chosen) % L


def x25519_private_key(sk: int) -> bytes:
    """The clamping-stable X25519 private key acting as ``±sk`` on the group (DESIGN 10.6).

    ``k = 2^254 + 8 j`` with ``j = (sigma sk - 2^254) / 8 mod L`` for the first ``sigma`` in
    (+1, -1) that gives ``j < 2^251``; clamping leaves such ``k`` unchanged; ``k = sigma sk``.
    """
    for sigma in (1, -1):
        j = ((sigma * sk - _TOP) * _INV8) % L
        if j < 2**251:
            return (_TOP + 8 * j).to_bytes(32, "little")
    raise ThresholdError("no clamping-stable form of this key (probability ~2^-125): re-run")


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the DKG decided, canonically encoded for ``commitAuctionKey``'s hash."""

    chain_id: int
    settlement: bytes
    auction_id: int
    n: int
    t: int
    deals: Mapping[int, Deal]
    complaints: frozenset[tuple[int, int]]
    answers: Mapping[tuple[int, int], int]
    qualified: frozenset[int]

    def encode(self) -> bytes:
        """Prefix, chain id, settlement, T, n, t; deals by dealer; complaints; answers; Q."""
        parts = [
            TRANSCRIPT_PREFIX,
            self.chain_id.to_bytes(32, "big"),
            self.settlement,
            self.auction_id.to_bytes(8, "big"),
            self.n.to_bytes(2, "big"),
            self.t.to_bytes(2, "big"),
            len(self.deals).to_bytes(2, "big"),
        ]
        for i in sorted(self.deals):
            commits = self.deals[i].commitments
            parts += [i.to_bytes(2, "big"), len(commits).to_bytes(2, "big"), *commits]
        parts.append(len(self.complaints).to_bytes(2, "big"))
        for keyper, dealer in sorted(self.complaints):
            parts += [keyper.to_bytes(2, "big"), dealer.to_bytes(2, "big")]
        parts.append(len(self.answers).to_bytes(2, "big"))
        for dealer, keyper in sorted(self.answers):
            parts += [
                dealer.to_bytes(2, "big"),
                keyper.to_bytes(2, "big"),
                _bytes(self.answers[(dealer, keyper)]),
            ]
        parts.append(len(self.qualified).to_bytes(2, "big"))
        parts += [i.to_bytes(2, "big") for i in sorted(self.qualified)]
        return b"".join(parts)

    def hash(self) -> bytes:
        """``keccak256(encode())``: the ``transcriptHash`` committed on-chain."""
        return keccak256(self.encode())


__all__ = [
    "DKG_INFO_PREFIX",
    "Deal",
    "L",
    "NotEnoughSharesError",
    "Polynomial",
    "ThresholdError",
    "Transcript",
    "base_mul",
    "combine",
    "commitments",
    "commitments_are_valid",
    "dkg_info",
    "group_public_key",
    "is_point",
    "lagrange_at_zero",
    "make_deal",
    "open_share",
    "point_add",
    "point_mul",
    "point_sum",
    "public_share",
    "qualified",
    "random_scalar",
    "released_share_is_valid",
    "seal_share",
    "secret_share",
    "share_is_valid",
    "share_point",
    "x25519_private_key",
    "x25519_public_key",
]
