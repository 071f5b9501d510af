"""(c) Clear 1,000,000 random bids with ``clearing.engine.clear``: <= 1.5 s (pay_as_bid).

Bids: unique random redemption ids < 2^64, rates uniform in 10..10000, sizes 1e18..1e24,
~1000 controllers, share price 1.05e18, liquidity = the payouts of the top-ranked half plus
half the next bid's payout, so about half the bids win and the marginal bid is partial.

Baseline (same run): a naive reference, ``sorted(bids, key=lambda b: (-b.basis_point,
b.redemption_id))`` and a plain walk of DESIGN 5 rule 3; it must agree with ``clear``.
"""

from __future__ import annotations

import random

from benchmarks.common import (
    AUCTION_ID,
    PRICE,
    SEED,
    Row,
    amount,
    bench_args,
    best_of,
    controllers,
    emit,
    log,
    unique_ids,
)
from clearing.engine import ClearingParams, Mode, ValidBid, clear, max_fill_within, payout_of

NAME = "clear_1m"
MIN_FILL = 10**18


def make_bids(n: int, seed: int = SEED) -> list[ValidBid]:
    rng = random.Random(seed + 1)
    ctrl = controllers(rng)
    pick, rate = rng.choice, rng.randint
    return [ValidBid(rid, pick(ctrl), rate(10, 10_000), amount(rng)) for rid in unique_ids(rng, n)]


def liquidity_for_half(bids: list[ValidBid]) -> int:
    ranked = sorted(bids, key=lambda b: b.sort_key)
    half = len(ranked) // 2
    total = sum(payout_of(b.size, b.basis_point, PRICE) for b in ranked[:half])
    nxt = ranked[half]
    return total + payout_of(nxt.size, nxt.basis_point, PRICE) // 2


def naive_reference(bids: list[ValidBid], liquidity: int) -> tuple[int, int]:
    """Plain rule 2 sort and rule 3 walk; returns (winners, total payout)."""
    ranked = sorted(bids, key=lambda b: (-b.basis_point, b.redemption_id))
    remaining = liquidity
    fills: list[tuple[int, int, int, int]] = []
    for b in ranked:
        pay = payout_of(b.size, b.basis_point, PRICE)
        if pay <= remaining:
            burnt = b.size * b.basis_point // 10_000
            fills.append((b.redemption_id, b.size, burnt, pay))
            remaining -= pay
            continue
        x = max_fill_within(b.size, b.basis_point, PRICE, remaining)
        if x >= MIN_FILL:
            pay = payout_of(x, b.basis_point, PRICE)
            fills.append((b.redemption_id, x, x * b.basis_point // 10_000, pay))
        break
    return len(fills), sum(f[3] for f in fills)


def main() -> None:
    args = bench_args(__doc__ or NAME)
    n = args.size or (50_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 3)
    log(f"generating {n:,} valid bids")
    bids = make_bids(n)
    liquidity = liquidity_for_half(bids)
    pab = ClearingParams(PRICE, liquidity, Mode.PAY_AS_BID, MIN_FILL)
    uni = ClearingParams(PRICE, liquidity, Mode.UNIFORM, MIN_FILL)

    t_pab, runs_pab, res = best_of(lambda: clear(AUCTION_ID, bids, pab), repeat, "pay_as_bid")
    winners, total_payout, partial = res.winners, res.total_payout, res.stop_index
    assert total_payout <= liquidity
    del res
    t_uni, runs_uni, res = best_of(lambda: clear(AUCTION_ID, bids, uni), repeat, "uniform")
    uni_winners = res.winners
    assert res.total_payout <= liquidity
    del res
    t_ref, _, (ref_winners, ref_payout) = best_of(
        lambda: naive_reference(bids, liquidity), max(1, min(repeat, 2)), "naive reference"
    )
    if (ref_winners, ref_payout) != (winners, total_payout):
        raise SystemExit(
            f"MISMATCH: clear {winners} winners / {total_payout} vs "
            f"reference {ref_winners} / {ref_payout}"
        )
    log(f"{winners:,} winners of {n:,} (marginal rank {partial}), uniform {uni_winners:,}")
    baseline = f"naive sort+walk {t_ref:.2f} s"
    rows = [
        Row(
            NAME,
            f"clear {n:,} bids, pay_as_bid",
            t_pab,
            "s",
            target=1.5,
            baseline=baseline,
            note=f"{winners:,} winners, equals reference",
            runs=runs_pab,
        ),
        Row(
            NAME,
            f"  clear {n:,} bids, uniform",
            t_uni,
            "s",
            note=f"{uni_winners:,} winners",
            runs=runs_uni,
        ),
    ]
    emit(rows, args.out)


if __name__ == "__main__":
    main()
