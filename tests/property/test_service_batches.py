"""``serviceable_batches``: split calls pay exactly what one call would, and each stays small.

A reference walk of the vault's ``serviceRedemptions`` (per request ``mulDiv(shares, price,
1e18)``, popping emptied requests, refusing unmatured ones) checks that the batches, applied
one after another to the queue, take the same shares and USDai as one call of their sum, that
no batch walks more than ``max_requests`` requests up to its last serviced one (unless more
emptied requests than that come before its first: then it services one), and that
every call would succeed (enough liquidity, nothing unmatured touched).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.chain import QueueRequest, serviceable_batches, serviceable_shares

E18 = 10**18
NOW = 1_000


def _walk(queue: list[list[int]], shares: int, price: int) -> tuple[int, int, int, int, int]:
    """Apply one serviceRedemptions(shares) to ``queue`` ([pending, ts] items, head first),
    popping the emptied requests after the last serviced one as the vault does: (USDai paid,
    requests walked up to the first and to the last serviced one, requests walked in all,
    head index after)."""
    remaining, paid, i, walked, first, last = shares, 0, 0, 0, 0, 0
    while remaining > 0 and i < len(queue):
        pending, ts = queue[i]
        walked += 1
        if pending == 0:
            i += 1
            continue
        assert ts < NOW, "serviced an unmatured request"
        take = min(pending, remaining)
        paid += take * price // E18
        queue[i][0] -= take
        remaining -= take
        first, last = first or walked, walked
        if queue[i][0] == 0:
            i += 1
    assert remaining == 0, "asked for more shares than the queue holds"
    while i < len(queue) and queue[i][0] == 0:  # the vault skips emptied requests at the end
        i += 1
        walked += 1
    return paid, first, last, walked, i


requests = st.lists(
    st.tuples(
        st.sampled_from([0, 0, 0, 0, 1, 5, 10**18, 3 * 10**18, 10**20]),
        st.sampled_from([10, 500, 999, 1_000, 2_000]),
    ),
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@given(
    items=requests,
    price=st.integers(min_value=10**17, max_value=3 * 10**18),
    liquidity=st.integers(min_value=0, max_value=10**22),
    cap=st.integers(min_value=0, max_value=10**21),
    max_requests=st.integers(min_value=1, max_value=8),
)
def test_batches_pay_what_one_call_pays(
    items: list[tuple[int, int]], price: int, liquidity: int, cap: int, max_requests: int
) -> None:
    queue = [QueueRequest(i + 1, bytes(20), p, ts) for i, (p, ts) in enumerate(items)]
    batches = serviceable_batches(queue, NOW, price, liquidity, cap, max_requests=max_requests)
    total = serviceable_shares(queue, NOW, price, liquidity, cap)
    assert sum(b for b, _ in batches) == total and all(b > 0 for b, _ in batches)
    assert total <= cap

    one = [[p, ts] for p, ts in items]
    paid_once = _walk(one, total, price)[0] if total else 0  # one call of the whole sum
    split = [[p, ts] for p, ts in items]
    paid_split = 0
    for shares, walked in batches:
        paid, first, last, walked_all, head = _walk(split, shares, price)
        assert walked_all <= walked  # the walk the gas is scaled by covers the call's
        paid_split += paid
        # at most max_requests walked (emptied ones included), unless the emptied requests
        # the vault must pop first are more than that: that call then services just one
        assert last <= max_requests or last == first
        del split[:head]
    assert paid_split == paid_once <= liquidity
