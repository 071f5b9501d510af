"""Property tests for every invariant of the clearing rule (DESIGN 5), plus a brute-force
reference on small cases."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from clearing.engine import ClearingParams, Mode, Status, ValidBid, clear, payout_of

CONTROLLER = b"\xcc" * 20
E18 = 10**18


@st.composite
def bid_sets(draw, max_size=10**24, max_bids=40):
    n = draw(st.integers(0, max_bids))
    ids = draw(st.lists(st.integers(0, 2**256 - 1), min_size=n, max_size=n, unique=True))
    rates = st.integers(10, 10_000) | st.sampled_from([10, 500, 500, 5000, 10_000])
    return [ValidBid(i, CONTROLLER, draw(rates), draw(st.integers(1, max_size))) for i in ids]


prices = st.integers(0, 3 * E18) | st.sampled_from([E18, 1_050_000_000_000_000_000])
modes = st.sampled_from(list(Mode))


@st.composite
def scenarios(draw, max_size=10**24):
    bids = draw(bid_sets(max_size=max_size))
    price = draw(prices)
    demand = sum(payout_of(b.size, b.basis_point, price) for b in bids)
    liquidity = draw(st.integers(0, max(demand * 2, 1)) | st.just(demand))
    min_fill = draw(st.sampled_from([0, 1, E18]) | st.integers(0, max_size))
    return bids, ClearingParams(
        price, liquidity, draw(modes), min_fill, draw(st.integers(0, 10_000))
    )


def _fills(result):
    return {result.ranked[i].redemption_id: result.filled[i] for i in range(result.winners)}


@given(scenarios())
def test_core_invariants(case):
    bids, params = case
    r = clear(1, bids, params)
    # 5. Σpayout <= L, exact totals and leftover
    assert r.total_payout <= params.liquidity
    assert r.leftover == params.liquidity - r.total_payout >= 0
    assert r.admin_fee_shares == r.total_burnt * params.admin_fee_bps // 10_000
    for i in range(r.winners):
        bid, x = r.ranked[i], r.filled[i]
        rate = r.rate_at(i)
        # every fill <= s, and positive
        assert 0 < x <= bid.size
        # exact per-leaf arithmetic, rounded in favour of the vault
        assert r.burnt[i] == x * rate // 10_000
        assert r.payout[i] == (x - r.burnt[i]) * params.price // E18
        assert r.payout[i] * E18 <= (x - r.burnt[i]) * params.price
        # partial fills respect min_fill
        if x < bid.size:
            assert x >= params.min_fill
    # winners form a prefix of the ranking; at most the last one is partial
    assert all(r.filled[i] == r.ranked[i].size for i in range(r.winners - 1))


@given(scenarios())
def test_ranking_rule_and_no_fill_after_the_marginal_bid(case):
    bids, params = case
    r = clear(1, bids, params)
    keys = [(-b.basis_point, b.redemption_id) for b in r.ranked]
    assert keys == sorted(keys)
    assert sorted(b.redemption_id for b in r.ranked) == sorted(b.redemption_id for b in bids)
    if r.stop_index is not None:
        assert r.winners <= r.stop_index + 1
        assert all(r.outcome(i).shares_filled == 0 for i in range(r.stop_index + 1, len(r.ranked)))
    else:
        assert r.winners == len(r.ranked) or params.mode is Mode.UNIFORM


@given(scenarios())
def test_higher_rate_is_never_filled_less_relative_to_size(case):
    bids, params = case
    r = clear(1, bids, params)
    outcomes = list(r.outcomes())
    for hi in outcomes:
        for lo in outcomes:
            if hi.bid.basis_point > lo.bid.basis_point:
                # hi.filled / hi.size >= lo.filled / lo.size
                assert hi.shares_filled * lo.bid.size >= lo.shares_filled * hi.bid.size


@given(scenarios(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(case, rnd):
    bids, params = case
    shuffled = list(bids)
    rnd.shuffle(shuffled)
    a, b = clear(1, bids, params), clear(1, shuffled, params)
    assert [x.redemption_id for x in a.ranked] == [x.redemption_id for x in b.ranked]
    assert (a.filled, a.burnt, a.payout, a.stop_index) == (
        b.filled,
        b.burnt,
        b.payout,
        b.stop_index,
    )
    assert list(a.leaves()) == list(b.leaves())


@given(
    bid_sets(), prices, st.integers(0, 10**25), st.integers(0, 10**25), st.sampled_from([0, E18])
)
def test_more_liquidity_never_lowers_a_winners_fill_pay_as_bid(bids, price, l1, extra, min_fill):
    low = clear(1, bids, ClearingParams(price, l1, Mode.PAY_AS_BID, min_fill))
    high = clear(1, bids, ClearingParams(price, l1 + extra, Mode.PAY_AS_BID, min_fill))
    high_fills = _fills(high)
    for rid, x in _fills(low).items():
        assert high_fills.get(rid, 0) >= x


@given(scenarios())
def test_uniform_never_charges_a_winner_more_than_pay_as_bid(case):
    bids, params = case
    uni = clear(
        1, bids, ClearingParams(params.price, params.liquidity, Mode.UNIFORM, params.min_fill)
    )
    pab = clear(
        1, bids, ClearingParams(params.price, params.liquidity, Mode.PAY_AS_BID, params.min_fill)
    )
    # rule 4 rev 2: the uniform winners are a prefix of the pay-as-bid ones, so their last
    # (rate-setting) winner's rate is at least the pay-as-bid marginal rate
    assert (uni.clearing_rate is None) == (pab.clearing_rate is None)
    if uni.clearing_rate is not None:
        assert uni.clearing_rate >= pab.clearing_rate
    assert uni.winners <= pab.winners
    for i in range(uni.winners):
        own = uni.ranked[i].basis_point
        assert uni.rate_at(i) == uni.clearing_rate <= own
        x = uni.filled[i]
        assert uni.burnt[i] <= x * own // 10_000  # burns no more than its own bid would
        assert uni.filled[i] <= pab.filled[i]  # winners are the pay-as-bid winners


@given(scenarios())
def test_marginal_fill_is_the_largest_that_fits(case):
    bids, params = case
    r = clear(1, bids, params)
    if r.stop_index is None or r.stop_index >= r.winners:
        return
    i = r.stop_index
    x, rate = r.filled[i], r.rate_at(i)
    budget = params.liquidity - sum(r.payout[:i])
    assert payout_of(x, rate, params.price) <= budget
    assert payout_of(x + 1, rate, params.price) > budget or x + 1 == r.ranked[i].size


def _reference(bids, price, liquidity, min_fill):
    """Pay-as-bid straight from DESIGN 5, with linear searches: only for small sizes.
    Uniform mode (rule 4 rev 2) has its own reference in test_uniform_rule.py."""
    order = sorted(bids, key=lambda b: (-b.basis_point, b.redemption_id))

    def walk(limit, rate_for):
        remaining, fills = liquidity, {}
        for b in order[:limit]:
            rate = rate_for(b)

            def pay(x, rate=rate):
                burnt = x * rate // 10_000
                return (x - burnt) * price // E18

            if pay(b.size) <= remaining:
                fills[b.redemption_id] = (b.size, rate)
                remaining -= pay(b.size)
                continue
            x = max(x for x in range(b.size) if pay(x) <= remaining)
            if x >= min_fill and x > 0:
                fills[b.redemption_id] = (x, rate)
            break
        return fills

    fills = walk(len(order), lambda b: b.basis_point)
    return {rid: x for rid, (x, _) in fills.items()}


@given(
    bid_sets(max_size=400, max_bids=12),
    st.integers(0, 3 * E18),
    st.integers(0, 1500),
    st.integers(0, 60),
)
def test_matches_brute_force_reference_pay_as_bid(bids, price, liquidity, min_fill):
    assume(all(b.size <= 400 for b in bids))
    r = clear(1, bids, ClearingParams(price, liquidity, Mode.PAY_AS_BID, min_fill))
    assert _fills(r) == _reference(bids, price, liquidity, min_fill)


def test_worked_example_to_the_wei():
    """Three bids, price 1.05, liquidity for two and a half of them."""
    bids = [
        ValidBid(3, CONTROLLER, 500, 100 * E18),  # 5%: payout 99.75 USDai
        ValidBid(1, CONTROLLER, 800, 100 * E18),  # 8%: payout 96.6 USDai, ranks first
        ValidBid(2, CONTROLLER, 500, 100 * E18),  # 5%, lower id than 3: ranks second
    ]
    r = clear(7, bids, ClearingParams(1_050_000_000_000_000_000, 250 * E18))
    assert [b.redemption_id for b in r.ranked] == [1, 2, 3]
    # 250 - 96.6 - 99.75 = 53.65 USDai left; 53.65 / (0.95 * 1.05) = 53.78446115288220551...
    assert r.filled == [100 * E18, 100 * E18, 53_784_461_152_882_205_514]
    assert r.burnt == [8 * E18, 5 * E18, 2_689_223_057_644_110_275]
    assert r.payout == [96_600_000_000_000_000_000, 99_750_000_000_000_000_000, 53_650 * 10**15]
    assert r.leftover == 0
    assert r.outcome(2).status is Status.PARTIAL
    assert r.clearing_rate == 500
    uni = clear(7, bids, ClearingParams(1_050_000_000_000_000_000, 250 * E18, Mode.UNIFORM))
    assert uni.filled[0] == 100 * E18 and uni.burnt[0] == 5 * E18  # pays 5%, not its 8%
    assert uni.payout[0] == 99_750_000_000_000_000_000
    assert uni.total_payout <= 250 * E18


def test_uniform_mode_old_non_monotone_case_is_monotone_now():
    """Under the old rule 4, one more USDai here admitted bid 2 (10 bp, ~1 share of 10) as the
    marginal bidder, dropped the clearing rate to 10 bp and shrank bid 1's fill. Rule 4
    rev 2: at 10 bp bid 1 alone costs 99.9 USDai > 51, so bid 2 is never the rate setter;
    bid 1 wins in full at its own 50% (payout 50 USDai) with 50 or 51 USDai.
    test_uniform_rule.py checks monotonicity in liquidity as a property."""
    bids = [ValidBid(1, CONTROLLER, 5000, 100 * E18), ValidBid(2, CONTROLLER, 10, 10 * E18)]
    low = clear(1, bids, ClearingParams(E18, 50 * E18, Mode.UNIFORM, min_fill=E18))
    high = clear(1, bids, ClearingParams(E18, 51 * E18, Mode.UNIFORM, min_fill=E18))
    for r, leftover in ((low, 0), (high, E18)):
        assert _fills(r) == {1: 100 * E18}
        assert (r.clearing_rate, r.payout, r.leftover) == (5000, [50 * E18], leftover)
        assert r.stop_index is None
        assert r.outcome(1).reason == "liquidity_exhausted"  # priced out, not cut for min_fill


def test_a_full_discount_bid_pays_nothing_and_always_fits():
    r = clear(1, [ValidBid(5, CONTROLLER, 10_000, 7 * E18)], ClearingParams(E18, 0))
    assert (r.filled, r.burnt, r.payout) == ([7 * E18], [7 * E18], [0])


def test_skipped_marginal_bid_below_min_fill_stops_clearing():
    bids = [
        ValidBid(1, CONTROLLER, 100, 10 * E18),
        ValidBid(2, CONTROLLER, 50, 10 * E18),
        ValidBid(3, CONTROLLER, 10, E18 // 2),
    ]
    r = clear(1, bids, ClearingParams(E18, payout_of(10 * E18, 100, E18) + E18 // 2))
    assert r.winners == 1
    assert r.outcome(1).reason == "below_min_fill"
    assert r.outcome(2).reason == "liquidity_exhausted"  # would fit, but comes after the stop
