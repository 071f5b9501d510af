"""The clearing rule of DESIGN 5: liquidity-limited, discount-ordered, exact to the wei.

Pure: valid bids, share price and liquidity in; a deterministic allocation out. Fills are
kept as parallel integer lists aligned with the ranked bids, so clearing a million bids
allocates no per-bid objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate, islice
from operator import attrgetter

from clearing.errors import ClearingError, DuplicateBidError
from clearing.hexcodec import UINT256_MAX
from clearing.model import BPS, MAX_BASIS_POINT, PRICE_SCALE, AllocationLeaf

DEFAULT_MIN_FILL = 10**18


class Mode(StrEnum):
    """How winners pay: their own rate, or the marginal (lowest winning) rate."""

    PAY_AS_BID = "pay_as_bid"
    UNIFORM = "uniform"


class Status(StrEnum):
    """A ranked bid's outcome."""

    FILLED = "filled"
    PARTIAL = "partial"
    UNFILLED = "unfilled"


class UnfilledReason(StrEnum):
    """Why a ranked (valid) bid got nothing."""

    BELOW_MIN_FILL = "below_min_fill"  # the marginal bid: what fit was under min_fill
    LIQUIDITY_EXHAUSTED = "liquidity_exhausted"  # after the marginal bid, or priced out (uniform)


@dataclass(frozen=True, slots=True)
class ValidBid:
    """A bid that passed rule 0, with its effective size ``s = min(shares, pending)``.

    ``sort_key`` orders bids by rule 2 (rate descending, then redemption id ascending) as a
    single integer, so ranking a million bids is one C-level sort on one key.
    """

    redemption_id: int
    controller: bytes
    basis_point: int
    size: int
    sort_key: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.redemption_id <= UINT256_MAX:
            raise ClearingError(f"redemption id {self.redemption_id} is not a uint256")
        if not 0 < self.basis_point <= MAX_BASIS_POINT or self.size <= 0:
            raise ClearingError(
                f"bid for redemption {self.redemption_id} needs a rate in 1..10000 and a size > 0"
            )
        key = (MAX_BASIS_POINT - self.basis_point) << 256 | self.redemption_id
        object.__setattr__(self, "sort_key", key)


@dataclass(frozen=True, slots=True)
class ClearingParams:
    """Inputs besides the bids: share price (1e18 fixed point), liquidity (wei) and knobs."""

    price: int
    liquidity: int
    mode: Mode = Mode.PAY_AS_BID
    min_fill: int = DEFAULT_MIN_FILL
    admin_fee_bps: int = 0

    def __post_init__(self) -> None:
        for name in ("price", "liquidity", "min_fill", "admin_fee_bps"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ClearingError(f"{name} must be a non-negative integer, got {value!r}")
        if self.admin_fee_bps > BPS:
            raise ClearingError("admin_fee_bps must be at most 10000")
        object.__setattr__(self, "mode", Mode(self.mode))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One ranked bid's result."""

    rank: int
    bid: ValidBid
    status: Status
    rate: int  # the rate applied (own rate, or the clearing rate in uniform mode)
    shares_filled: int
    shares_burnt: int
    payout: int
    reason: UnfilledReason | None = None


@dataclass(frozen=True, slots=True)
class ClearingResult:
    """The allocation: ranked bids, the filled prefix, totals and the marginal point."""

    auction_id: int
    params: ClearingParams
    ranked: list[ValidBid]
    filled: list[int]  # filled[i], burnt[i], payout[i] for ranked[i], i < winners
    burnt: list[int]
    payout: list[int]
    # rank of the marginal bid (partial or skipped); None if none (uniform mode: see
    # _clear_uniform; there None also when the first non-winner was priced out)
    stop_index: int | None
    clearing_rate: int | None  # last (lowest) winner's own rate; all winners pay it in uniform
    total_shares: int = field(init=False)
    total_burnt: int = field(init=False)
    total_payout: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total_shares", sum(self.filled))
        object.__setattr__(self, "total_burnt", sum(self.burnt))
        object.__setattr__(self, "total_payout", sum(self.payout))

    def rate_at(self, rank: int) -> int:
        """The rate a winner at ``rank`` pays: its own, or the clearing rate in uniform mode."""
        if self.params.mode is Mode.UNIFORM and self.clearing_rate is not None:
            return self.clearing_rate
        return self.ranked[rank].basis_point

    @property
    def winners(self) -> int:
        """Number of bids with a non-zero fill (they form a prefix of ``ranked``)."""
        return len(self.filled)

    @property
    def leftover(self) -> int:
        """Liquidity left for the FIFO queue after the auction's payouts."""
        return self.params.liquidity - self.total_payout

    @property
    def admin_fee_shares(self) -> int:
        """``mulDiv(totalBurnt, admin_fee_bps, 10000)`` minted to the fee recipient."""
        return self.total_burnt * self.params.admin_fee_bps // BPS

    def leaves(self) -> Iterator[AllocationLeaf]:
        """Allocation leaves of the winners, in rank order."""
        a = self.auction_id
        for i in range(len(self.filled)):
            b = self.ranked[i]
            yield AllocationLeaf(
                a, b.redemption_id, b.controller, self.filled[i], self.burnt[i], self.payout[i]
            )

    def leaf_values(self) -> list[tuple[int, int, bytes, int, int, int]]:
        """Allocation leaves as ABI value tuples (the Merkle tree's input), in rank order."""
        a, r = self.auction_id, self.ranked
        return [
            (a, r[i].redemption_id, r[i].controller, f, bu, p)
            for i, (f, bu, p) in enumerate(zip(self.filled, self.burnt, self.payout, strict=True))
        ]

    def outcome(self, rank: int) -> Outcome:
        """The outcome of ``ranked[rank]``."""
        bid = self.ranked[rank]
        if rank < len(self.filled):
            status = Status.FILLED if self.filled[rank] == bid.size else Status.PARTIAL
            return Outcome(
                rank,
                bid,
                status,
                self.rate_at(rank),
                self.filled[rank],
                self.burnt[rank],
                self.payout[rank],
            )
        reason = (
            UnfilledReason.BELOW_MIN_FILL
            if rank == self.stop_index
            else UnfilledReason.LIQUIDITY_EXHAUSTED
        )
        return Outcome(rank, bid, Status.UNFILLED, bid.basis_point, 0, 0, 0, reason)

    def outcomes(self) -> Iterator[Outcome]:
        """Every ranked bid's outcome, in rank order."""
        return (self.outcome(i) for i in range(len(self.ranked)))


def rank_bids(bids: Iterable[ValidBid]) -> list[ValidBid]:
    """Rule 2: ``basisPoint`` descending, then ``redemptionId`` ascending; ids must be unique."""
    bids = bids if isinstance(bids, list) else list(bids)
    if len(set(map(_BY_ID, bids))) != len(bids):
        raise DuplicateBidError("two valid bids name the same redemption id")
    return sorted(bids, key=_BY_KEY)


_BY_ID = attrgetter("redemption_id")
_BY_KEY = attrgetter("sort_key")


def payout_of(shares: int, rate: int, price: int) -> int:
    """``floor((x - floor(x * b / 10000)) * price / 1e18)``."""
    return (shares - shares * rate // BPS) * price // PRICE_SCALE


def max_fill_within(size: int, rate: int, price: int, budget: int) -> int:
    """The largest ``x < size`` with ``payout(x) <= budget`` (payout is monotone in x)."""
    lo, hi = 0, size - 1  # payout(0) == 0 <= budget, so lo always qualifies
    if hi <= 0:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if payout_of(mid, rate, price) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _walk(
    ranked: list[ValidBid], params: ClearingParams, uniform_rate: int | None, limit: int
) -> tuple[list[int], list[int], list[int], int | None]:
    """Rule 3 over ``ranked[:limit]``: filled, burnt and payout lists, and the stop rank."""
    price, min_fill, scale = params.price, params.min_fill, PRICE_SCALE
    remaining = params.liquidity
    filled: list[int] = []
    burnt: list[int] = []
    payout: list[int] = []
    add_fill, add_burn, add_pay = filled.append, burnt.append, payout.append
    for bid in ranked[:limit] if limit < len(ranked) else ranked:
        s = bid.size
        b = bid.basis_point if uniform_rate is None else uniform_rate
        burn = s * b // BPS
        pay = (s - burn) * price // scale
        if pay > remaining:
            break
        remaining -= pay
        add_fill(s)
        add_burn(burn)
        add_pay(pay)
    else:
        return filled, burnt, payout, None
    stop = len(filled)
    x = max_fill_within(s, b, price, remaining)
    if x >= min_fill and x > 0:
        burn = x * b // BPS
        add_fill(x)
        add_burn(burn)
        add_pay((x - burn) * price // scale)
    return filled, burnt, payout, stop


def clear(auction_id: int, bids: Iterable[ValidBid], params: ClearingParams) -> ClearingResult:
    """Apply DESIGN 5 rules 1-5 to valid bids; deterministic whatever their order."""
    ranked = rank_bids(bids)
    if params.mode is Mode.UNIFORM:
        return _clear_uniform(auction_id, ranked, params)
    filled, burnt, payout, stop = _walk(ranked, params, None, len(ranked))
    clearing_rate = ranked[len(filled) - 1].basis_point if filled else None
    return ClearingResult(auction_id, params, ranked, filled, burnt, payout, stop, clearing_rate)


def _clear_uniform(
    auction_id: int, ranked: list[ValidBid], params: ClearingParams
) -> ClearingResult:
    """Rule 4 (revision 2): everyone pays the rate of the marginal winner, itself a winner.

    For the candidate at 0-based rank ``j`` (rate ``r = ranked[j].basis_point``) let
    ``C(j) = sum(payout(s_i, r) for i < j)``. The candidate is feasible when ``C(j) <= L``
    and rule 3 fills it (fully, or partially with ``x >= min_fill``) from ``L - C(j)`` at
    rate ``r``: exactly when ``C(j) + payout(min(s_j, max(min_fill, 1)), r) <= L``. That sum
    never decreases with ``j`` (a lower rate lowers no earlier payout, and an infeasible
    candidate's own term already breaks ``L``), so the feasible candidates are a prefix and
    the number of winners ``k`` is found by bisection (``_count_feasible``). Winners:
    ``ranked[:k]`` walked by rule 3 at ``ranked[k - 1].basis_point`` (all full but perhaps
    the last); no feasible candidate, no winners.

    ``stop_index``, as in pay-as-bid, is the rank where rule 3 stopped on a bid it could not
    fill in full: the last winner's rank ``k - 1`` when that winner is partial; else the first
    non-winner's rank ``k`` when it was cut for min_fill in the rule-3 sense (at its own rate
    the winners ahead of it fit, ``C(k) <= L``, but what was left for it is under min_fill
    or nothing), which ``outcome`` reports as ``below_min_fill``; else ``None`` (everyone
    won, or the first non-winner was priced out: at its rate the bids ahead of it alone need
    more than ``L``), and every non-winner is ``liquidity_exhausted``. A partial last winner
    implies the next bid is priced out, so at most one bid is named.
    """
    n = len(ranked)
    if n == 0:
        return ClearingResult(auction_id, params, ranked, [], [], [], None, None)
    winners, prefix = _count_feasible(ranked, params)
    if winners == 0:
        # ranked[0] alone was under min_fill at its own rate: rule 3's skipped marginal bid
        return ClearingResult(auction_id, params, ranked, [], [], [], 0, None)
    clearing_rate = ranked[winners - 1].basis_point
    filled, burnt, payout, stop = _walk(ranked, params, clearing_rate, winners)
    if stop is None and winners < n:
        rate, price, budget = ranked[winners].basis_point, params.price, params.liquidity
        if _cost_within(ranked, prefix, winners, extra=0, rate=rate, price=price, budget=budget):
            stop = winners
    return ClearingResult(auction_id, params, ranked, filled, burnt, payout, stop, clearing_rate)


_SIZE = attrgetter("size")
_FIRST_CHUNK = 1 << 10
_MAX_CHUNK = 1 << 16


def _count_feasible(ranked: list[ValidBid], params: ClearingParams) -> tuple[int, list[int]]:
    """The number of feasible candidates (a prefix), and prefix sums of the sizes that far.

    The prefix sums are extended a chunk at a time, as long as the chunk's last candidate is
    feasible, then the first infeasible one is bisected inside the last chunk; so only about
    as many bids are read as win (reading a bid of a large ranked list costs cache misses).
    """
    n, price, budget, least = len(ranked), params.price, params.liquidity, max(params.min_fill, 1)
    prefix = [0]  # prefix[j] = sum of ranked[i].size for i < j

    def feasible(j: int) -> bool:
        bid = ranked[j]
        extra, rate = min(bid.size, least), bid.basis_point
        return _cost_within(ranked, prefix, j, extra=extra, rate=rate, price=price, budget=budget)

    lo, step = 0, _FIRST_CHUNK  # candidates < lo are feasible
    while True:
        end = min(lo + step, n)
        sums = accumulate(map(_SIZE, ranked[lo:end]), initial=prefix[-1])
        next(sums)
        prefix.extend(sums)
        if not feasible(end - 1):
            hi = end - 1  # candidates >= hi are not feasible
            break
        if end == n:
            return n, prefix
        lo, step = end, min(step * 2, _MAX_CHUNK)
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo, prefix


def _cost_within(
    ranked: list[ValidBid],
    prefix: list[int],
    j: int,
    *,
    extra: int,
    rate: int,
    price: int,
    budget: int,
) -> bool:
    """Whether ``sum(payout_of(s_i, rate) for i < j) + payout_of(extra, rate) <= budget``.

    Each payout is ``floor((a - floor(a * rate / 10000)) * price / 1e18)``, which lies in
    ``(v - 1, v + price / 1e18]`` with ``v = a * (10000 - rate) * price / 1e22``; so the sum
    is within ``j + 1`` such margins of the same formula applied to the sum of the amounts,
    a prefix sum. Only when the budget falls inside that band are the payouts added up.
    """
    count = j + 1
    scaled = (prefix[j] + extra) * (BPS - rate) * price  # the sum, times 1e22, without floors
    limit = budget * _SCALE_BPS
    if scaled + count * price * BPS <= limit:  # the sum is surely <= budget
        return True
    if scaled - count * _SCALE_BPS >= limit:  # the sum is surely > budget
        return False
    sizes = map(_SIZE, islice(ranked, j))
    total: int = sum((s - s * rate // BPS) * price // PRICE_SCALE for s in sizes)
    return total + payout_of(extra, rate, price) <= budget


_SCALE_BPS = PRICE_SCALE * BPS


__all__ = [
    "DEFAULT_MIN_FILL",
    "ClearingParams",
    "ClearingResult",
    "Mode",
    "Outcome",
    "Status",
    "UnfilledReason",
    "ValidBid",
    "clear",
    "max_fill_within",
    "payout_of",
    "rank_bids",
]
