"""DESIGN 5 rule 4, revision 2 (``uniform``): every winner pays the rate of the marginal
winner, which is itself a winner.

A brute-force reference straight from the definition (every candidate ``k`` from ``n`` down
to 1, ``C(k)`` summed naively, the marginal fill by linear search), hypothesis properties
for each stated consequence, and hand-computed examples to the wei, one of them the case
where the old text charged a rate whose bidder got nothing.
"""

from __future__ import annotations

import random
from itertools import accumulate

from hypothesis import given, settings
from hypothesis import strategies as st

from clearing.engine import (
    ClearingParams,
    ClearingResult,
    Mode,
    Status,
    UnfilledReason,
    ValidBid,
    _cost_within,
    clear,
    payout_of,
)
from tests.property.test_engine_properties import CONTROLLER, E18, bid_sets, prices

UNIFORM = Mode.UNIFORM


def _pay(x, rate, price):
    burnt = x * rate // 10_000
    return (x - burnt) * price // E18


def _rank(bids):
    return sorted(bids, key=lambda b: (-b.basis_point, b.redemption_id))


def _rule3_fill(size, rate, price, remaining, min_fill, linear):
    """Rule 3 for one bid: its fill from ``remaining`` at ``rate``; 0 if skipped."""
    if _pay(size, rate, price) <= remaining:
        return size
    if linear:
        x = max(x for x in range(size) if _pay(x, rate, price) <= remaining)
    else:  # bisection, independent of the engine's: payout is monotone in x
        lo, hi = 0, size - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if _pay(mid, rate, price) <= remaining else (lo, mid - 1)
        x = lo
    return x if x >= min_fill and x > 0 else 0


def _cost(order, k, price):
    """``C(k)``: the payouts of bids 1..k-1 (1-based) in full at bid k's rate."""
    rate = order[k - 1].basis_point
    return sum(_pay(b.size, rate, price) for b in order[: k - 1])


def _feasible(order, k, price, liquidity, min_fill, linear=True):
    c = _cost(order, k, price)
    if c > liquidity:
        return False
    bid = order[k - 1]
    return _rule3_fill(bid.size, bid.basis_point, price, liquidity - c, min_fill, linear) > 0


def _reference(bids, price, liquidity, min_fill, linear=True):
    """Rule 4 rev 2 from its text: the largest feasible k, tried from n down to 1.

    Returns ``(winners, clearing_rate, stop_index)`` with ``winners`` a list of
    ``(redemption_id, filled, burnt, payout)`` in rank order; ``stop_index`` is the mapping
    documented in ``clearing.engine._clear_uniform``.
    """
    order = _rank(bids)
    n = len(order)
    k = next(
        (k for k in range(n, 0, -1) if _feasible(order, k, price, liquidity, min_fill, linear)),
        0,
    )
    winners, stop = [], None
    if k:
        rate = order[k - 1].basis_point
        remaining = liquidity - _cost(order, k, price)
        last = order[k - 1]
        fills = [b.size for b in order[: k - 1]]
        fills.append(_rule3_fill(last.size, rate, price, remaining, min_fill, linear))
        for b, x in zip(order, fills, strict=False):
            burnt = x * rate // 10_000
            winners.append((b.redemption_id, x, burnt, (x - burnt) * price // E18))
        if fills[-1] < last.size:
            stop = k - 1
    if stop is None and k < n and _cost(order, k + 1, price) <= liquidity:
        stop = k  # the first non-winner was reached with liquidity left: cut for min_fill
    return winners, (order[k - 1].basis_point if k else None), stop


def _summary(r: ClearingResult):
    winners = [
        (r.ranked[i].redemption_id, r.filled[i], r.burnt[i], r.payout[i]) for i in range(r.winners)
    ]
    return winners, r.clearing_rate, r.stop_index


@st.composite
def small_cases(draw, max_size=400, max_bids=8):
    bids = draw(bid_sets(max_size=max_size, max_bids=max_bids))
    price = draw(prices)
    demand = sum(payout_of(b.size, b.basis_point, price) for b in bids)
    liquidity = draw(st.integers(0, max(2 * demand, 1)) | st.just(demand))
    min_fill = draw(st.integers(0, 60) | st.integers(0, max_size) | st.sampled_from([0, 1]))
    return bids, price, liquidity, min_fill


@settings(max_examples=300)
@given(small_cases())
def test_matches_brute_force_reference(case):
    bids, price, liquidity, min_fill = case
    r = clear(1, bids, ClearingParams(price, liquidity, UNIFORM, min_fill))
    assert _summary(r) == _reference(bids, price, liquidity, min_fill)


@settings(max_examples=200)
@given(small_cases(max_size=10**24))
def test_matches_reference_with_wei_sized_amounts(case):
    bids, price, liquidity, min_fill = case
    r = clear(1, bids, ClearingParams(price, liquidity, UNIFORM, min_fill))
    assert _summary(r) == _reference(bids, price, liquidity, min_fill, linear=False)


@settings(max_examples=300)
@given(
    small_cases(max_size=10**24),
    st.integers(0, 7),
    st.integers(-2, 2),
    st.sampled_from([True, False]),
)
def test_matches_reference_with_liquidity_on_a_threshold(case, pick, delta, whole):
    """Liquidity within a wei of what candidate k needs: ``C(k)`` plus its bid in full, or
    plus its min_fill, where the engine's bounds cannot decide and it must add up exactly."""
    bids, price, _, min_fill = case
    if not bids:
        return
    order = _rank(bids)
    k = pick % len(order) + 1
    bid = order[k - 1]
    amount = bid.size if whole else min(bid.size, max(min_fill, 1))
    liquidity = max(0, _cost(order, k, price) + _pay(amount, bid.basis_point, price) + delta)
    r = clear(1, bids, ClearingParams(price, liquidity, UNIFORM, min_fill))
    assert _summary(r) == _reference(bids, price, liquidity, min_fill, linear=False)


@settings(max_examples=400)
@given(
    st.lists(st.integers(1, 10**24) | st.integers(1, 50), min_size=1, max_size=12),
    st.integers(0, 11),
    st.integers(0, 10**24) | st.integers(0, 50),
    st.integers(10, 10_000),
    prices,
    st.integers(-3, 3),
)
def test_cost_bounds_never_decide_wrongly(sizes, pick, extra, rate, price, delta):
    """The engine's shortcut (bounds from a prefix sum of the sizes) against the exact sum
    of floored payouts, with the budget within a few wei of that sum."""
    ranked = _rank(ValidBid(i, CONTROLLER, 10_000, s) for i, s in enumerate(sizes))
    j = pick % (len(ranked) + 1)
    prefix = [0, *accumulate(b.size for b in ranked)]
    exact = sum(_pay(b.size, rate, price) for b in ranked[:j]) + _pay(extra, rate, price)
    budget = max(0, exact + delta)
    got = _cost_within(ranked, prefix, j, extra=extra, rate=rate, price=price, budget=budget)
    assert got == (exact <= budget)


@settings(max_examples=200)
@given(small_cases())
def test_feasibility_holds_for_a_prefix_of_candidates(case):
    bids, price, liquidity, min_fill = case
    order = _rank(bids)
    pattern = [_feasible(order, k, price, liquidity, min_fill) for k in range(1, len(order) + 1)]
    assert pattern == sorted(pattern, reverse=True)  # True..., then False...
    for k in range(1, len(order)):
        if not pattern[k - 1]:
            assert _cost(order, k + 1, price) > liquidity  # the stated reason


@settings(max_examples=300)
@given(small_cases(max_size=10**24, max_bids=30))
def test_winners_pay_the_rate_of_the_last_winner_at_most_their_own(case):
    bids, price, liquidity, min_fill = case
    r = clear(1, bids, ClearingParams(price, liquidity, UNIFORM, min_fill))
    if r.winners == 0:
        assert r.clearing_rate is None and r.total_payout == 0
        assert all(o.status is Status.UNFILLED for o in r.outcomes())
        return
    # the clearing rate is a winner's own rate: the last winner's
    assert r.clearing_rate == r.ranked[r.winners - 1].basis_point
    for i in range(r.winners):
        x = r.filled[i]
        assert r.rate_at(i) == r.clearing_rate <= r.ranked[i].basis_point
        assert r.burnt[i] == x * r.clearing_rate // 10_000
        assert r.payout[i] == payout_of(x, r.clearing_rate, price)
        assert r.outcome(i).rate == r.clearing_rate
    # all winners but the last are filled in full; the last by rule 3 from what is left
    assert all(r.filled[i] == r.ranked[i].size for i in range(r.winners - 1))
    last = r.winners - 1
    budget = liquidity - sum(r.payout[:last])
    x = r.filled[last]
    assert r.payout[last] <= budget
    if x < r.ranked[last].size:
        assert x >= min_fill
        assert payout_of(x + 1, r.clearing_rate, price) > budget or x + 1 == r.ranked[last].size
        assert r.outcome(last).status is Status.PARTIAL
        assert r.stop_index == last
    # 5.5 and the FIFO leftover
    assert r.total_payout <= liquidity
    assert r.leftover == liquidity - r.total_payout


@settings(max_examples=300)
@given(small_cases(max_size=10**24, max_bids=30))
def test_unfilled_reasons(case):
    """The first non-winner is ``below_min_fill`` exactly when, at its own rate, the bids
    ahead of it fit in the liquidity (it was reached by rule 3 and what was left for it was
    under min_fill); otherwise, and for every later bid, ``liquidity_exhausted``."""
    bids, price, liquidity, min_fill = case
    r = clear(1, bids, ClearingParams(price, liquidity, UNIFORM, min_fill))
    order, k = r.ranked, r.winners
    for o in r.outcomes():
        if o.rank < k:
            assert o.reason is None and o.shares_filled > 0
            continue
        assert (o.status, o.shares_filled, o.payout) == (Status.UNFILLED, 0, 0)
        if o.rank > k:
            assert o.reason is UnfilledReason.LIQUIDITY_EXHAUSTED
            continue
        rate = order[k].basis_point
        reached = sum(payout_of(b.size, rate, price) for b in order[:k]) <= liquidity
        expected = UnfilledReason.BELOW_MIN_FILL if reached else UnfilledReason.LIQUIDITY_EXHAUSTED
        assert o.reason is expected
        if reached:  # and that is because what fit was under min_fill (or nothing)
            left = liquidity - sum(payout_of(b.size, rate, price) for b in order[:k])
            assert payout_of(order[k].size, rate, price) > left
            assert min_fill > order[k].size - 1 or payout_of(max(min_fill, 1), rate, price) > left


@settings(max_examples=300)
@given(
    bid_sets(max_bids=30),
    prices,
    st.integers(0, 10**25),
    st.integers(0, 10**25),
    st.sampled_from([0, 1, E18]) | st.integers(0, 10**24),
)
def test_more_liquidity_never_lowers_k_nor_raises_the_rate_nor_shrinks_a_fill(
    bids, price, liquidity, extra, min_fill
):
    low = clear(1, bids, ClearingParams(price, liquidity, UNIFORM, min_fill))
    high = clear(1, bids, ClearingParams(price, liquidity + extra, UNIFORM, min_fill))
    assert high.winners >= low.winners
    if low.clearing_rate is not None:
        assert high.clearing_rate is not None
        assert high.clearing_rate <= low.clearing_rate
    # the inframarginal winners (in fact every winner, the marginal one included) keep at
    # least their fill
    for i in range(low.winners):
        assert high.filled[i] >= low.filled[i]
    for i in range(low.winners - 1):
        assert high.filled[i] == low.filled[i] == low.ranked[i].size


@settings(max_examples=200)
@given(small_cases(max_size=10**24, max_bids=30))
def test_uniform_winners_are_a_prefix_of_the_pay_as_bid_winners(case):
    bids, price, liquidity, min_fill = case
    uni = clear(1, bids, ClearingParams(price, liquidity, UNIFORM, min_fill))
    pab = clear(1, bids, ClearingParams(price, liquidity, Mode.PAY_AS_BID, min_fill))
    assert uni.winners <= pab.winners
    assert (uni.winners == 0) == (pab.winners == 0)
    if uni.winners:
        assert uni.clearing_rate >= pab.clearing_rate
    for i in range(uni.winners):
        assert uni.filled[i] <= pab.filled[i]
        assert uni.burnt[i] <= uni.filled[i] * uni.ranked[i].basis_point // 10_000


@settings(max_examples=25)
@given(
    st.integers(0, 2**32),
    st.integers(1100, 6000),
    st.sampled_from([(1, 10), (1, 10**6), (10**18, 10**24)]),
    st.sampled_from([0, 5, E18]),
    st.floats(0.0, 1.0),
)
def test_many_bids_the_last_winner_is_feasible_and_the_next_is_not(
    seed, n, size_range, min_fill, share
):
    """Beyond the engine's first chunk of 1024 candidates, checked against the definition
    at k* and k*+1 (feasibility is a prefix, so that pins k*). Tiny sizes make the engine
    add the payouts up exactly, large ones let its prefix-sum bounds decide."""
    rng = random.Random(seed)
    lo, hi = size_range
    bids = [
        ValidBid(
            i, CONTROLLER, rng.choice([rng.randint(10, 10_000), 9000, 10]), rng.randint(lo, hi)
        )
        for i in rng.sample(range(10 * n), n)
    ]
    price = rng.choice([E18, 1_050_000_000_000_000_000, 3 * E18 // 7])
    demand = sum(payout_of(b.size, b.basis_point, price) for b in bids)
    liquidity = int(demand * share)
    r = clear(1, bids, ClearingParams(price, liquidity, UNIFORM, min_fill))
    order = _rank(bids)
    k = r.winners
    if k:
        assert _feasible(order, k, price, liquidity, min_fill, linear=False)
    if k < n:
        assert not _feasible(order, k + 1, price, liquidity, min_fill, linear=False)
    assert r.total_payout <= liquidity


def test_the_rate_setting_bidder_wins_where_the_old_rule_left_it_out():
    """Rates 15.88%, 15.42%, 15.33%, price 1.0, min_fill 1 share.

    A (id 1): 15.88%, 1000 shares; B (id 2): 15.42%, 3 shares; C (id 3): 15.33%, 10 shares.
    L = 846.7374 USDai = 841.2 (A at 15.88%) + 2.5374 (B at 15.42%) + 3.0 (part of C).

    Old rule 4: pay-as-bid fills A and B and 3.0 USDai of C, so the clearing rate is C's
    15.33%; re-walking those winners at 15.33%, A alone takes 846.7, leaving 0.0374 for B,
    under one share's 0.8467: A wins at 15.33% while B and C (who set that rate) get nothing.

    Rule 4 rev 2, candidates at price 1 (payout = x - floor(x * b / 10000)):
      k=1 (15.88%): C(1) = 0; A in full costs 841.2 <= L: feasible.
      k=2 (15.42%): C(2) = 1000 - 154.2 = 845.8 <= L; R = 0.9374; B in full costs 2.5374 > R,
           but 1 share costs 0.8458 <= R: partial, feasible.
      k=3 (15.33%): C(3) = 846.7 + 2.5401 = 849.2401 > L: not feasible.
    So k* = 2 and the clearing rate is B's own 1542.
    A: burnt 1000e18 * 1542 / 1e4 = 154.2e18, payout 845.8e18.
    B: largest x with x - floor(1542 x / 1e4) <= R = 9374e14, i.e. 8458 x <= 1e4 R
       (x - R is an integer): x = floor(9_374e36 / 8458) = 1_108_299_834_476_235_516
       (remainder 5672); burnt = floor(1542 x / 1e4) = floor(1_708_998_344_762_355_165_672
       / 1e4) = 170_899_834_476_235_516; payout = x - burnt = 937_400_000_000_000_000 = R.
    C: at its 15.33% the bids ahead alone cost 849.2401 > L: liquidity_exhausted.
    """
    bids = [
        ValidBid(3, CONTROLLER, 1533, 10 * E18),
        ValidBid(2, CONTROLLER, 1542, 3 * E18),
        ValidBid(1, CONTROLLER, 1588, 1000 * E18),
    ]
    liquidity = 846_737_400_000_000_000_000
    # what the old text saw: the pay-as-bid marginal rate 1533, and 1533 re-applied to A
    # leaving less than one share's payout for B
    pab = clear(1, bids, ClearingParams(E18, liquidity, Mode.PAY_AS_BID, E18))
    assert pab.clearing_rate == 1533 and pab.payout[:2] == [841_200 * 10**15, 2_537_400 * 10**12]
    assert liquidity - payout_of(1000 * E18, 1533, E18) < payout_of(E18, 1533, E18)

    r = clear(1, bids, ClearingParams(E18, liquidity, UNIFORM, E18))
    assert [b.redemption_id for b in r.ranked] == [1, 2, 3]
    assert r.clearing_rate == 1542 == r.ranked[r.winners - 1].basis_point
    assert r.filled == [1000 * E18, 1_108_299_834_476_235_516]
    assert r.burnt == [154_200_000_000_000_000_000, 170_899_834_476_235_516]
    assert r.payout == [845_800_000_000_000_000_000, 937_400_000_000_000_000]
    assert r.total_payout == liquidity and r.leftover == 0
    assert [o.status for o in r.outcomes()] == [Status.FILLED, Status.PARTIAL, Status.UNFILLED]
    assert r.stop_index == 1
    assert r.outcome(2).reason is UnfilledReason.LIQUIDITY_EXHAUSTED


def test_next_bid_cut_for_min_fill_and_the_leftover_goes_to_the_queue():
    """A (id 1): 20%, 10 shares; B (id 2): 10%, 10 shares; price 1.0, min_fill 1 share,
    L = 9.5 USDai.

    k=2 (10%): C(2) = 10 - 1 = 9.0 <= L; R = 0.5; B in full costs 9.0 and one share 0.9,
    both > R: not feasible. k=1 (20%): A in full costs 10 - 2 = 8.0 <= L: feasible.
    So A alone wins at its 20% (burnt 2e18, payout 8e18); 1.5 USDai is left for the FIFO
    queue; B was reached with 0.5 left, under one share's cost: below_min_fill.
    (Pay-as-bid would give B floor(1.5e18 / 0.9) = 1.666... shares: the rate it set, 10%,
    would raise A's payout to 9.0.)
    """
    bids = [ValidBid(1, CONTROLLER, 2000, 10 * E18), ValidBid(2, CONTROLLER, 1000, 10 * E18)]
    r = clear(1, bids, ClearingParams(E18, 9_500_000_000_000_000_000, UNIFORM, E18))
    assert (r.filled, r.burnt, r.payout) == ([10 * E18], [2 * E18], [8 * E18])
    assert r.clearing_rate == 2000
    assert r.leftover == 1_500_000_000_000_000_000
    assert r.stop_index == 1
    assert r.outcome(1).reason is UnfilledReason.BELOW_MIN_FILL
    pab = clear(1, bids, ClearingParams(E18, 9_500_000_000_000_000_000, Mode.PAY_AS_BID, E18))
    assert pab.filled == [10 * E18, 1_666_666_666_666_666_666]


def test_no_bids_and_no_feasible_candidate():
    empty = clear(1, [], ClearingParams(E18, 10 * E18, UNIFORM))
    assert (empty.winners, empty.clearing_rate, empty.stop_index) == (0, None, None)
    # one share costs 0.99 USDai at 1%: 0.5 USDai cannot pay min_fill
    r = clear(1, [ValidBid(1, CONTROLLER, 100, 5 * E18)], ClearingParams(E18, E18 // 2, UNIFORM))
    assert (r.winners, r.clearing_rate, r.stop_index, r.leftover) == (0, None, 0, E18 // 2)
    assert r.outcome(0).reason is UnfilledReason.BELOW_MIN_FILL
