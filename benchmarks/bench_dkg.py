"""Threshold keys (DESIGN 10): the DKG's CPU per keyper for n = 5, t = 3 (<= 1 s) and the
check of one released share (<= 10 ms), with the single-key derivation beside them.

Per keyper: deal (a random degree-2 polynomial, 3 commitments, 5 HPKE-sealed shares), then
check (open the 5 shares dealt to it, Feldman-check each), then compute its secret share,
every public share and the group key. Released-share check: ``S_j`` from the commitments
plus ``s_j * B == S_j``. CPU time (``time.process_time``), best of the rounds.
"""

from __future__ import annotations

import random
import time

from benchmarks.common import Row, bench_args, emit, log
from clearing.sealing import derive_auction_secret, public_key_of
from clearing.threshold import (
    L,
    combine,
    dkg_info,
    group_public_key,
    make_deal,
    open_share,
    public_share,
    released_share_is_valid,
    secret_share,
    share_is_valid,
    x25519_private_key,
    x25519_public_key,
)

NAME = "dkg_5_3"
N, T_ = 5, 3
SETTLEMENT = bytes(20)
AUCTION = 1_767_225_600


def _cpu(fn):  # type: ignore[no-untyped-def]
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def _round(
    r: int, identity: dict[int, bytes], identity_pk: dict[int, bytes]
) -> tuple[float, float]:
    """One DKG: (CPU per keyper, CPU of one released-share check)."""

    def info(i: int, j: int) -> bytes:
        return dkg_info(31337, SETTLEMENT, AUCTION, i, j)

    deal_cpu, dealt = _cpu(
        lambda: {i: make_deal(i, T_, identity_pk, info) for i in range(1, N + 1)}
    )
    deals = {i: d for i, (d, _) in dealt.items()}

    def check(j: int) -> dict[int, int]:
        got = {}
        for i, d in deals.items():
            share = open_share(d.sealed_shares[j], identity[j], info(i, j))
            assert share_is_valid(share, d.commitments, j)
            got[i] = share
        return got

    check_cpu, received = _cpu(lambda: {j: check(j) for j in range(1, N + 1)})
    q = frozenset(deals)

    def keyper_key(j: int) -> tuple[int, list[bytes], bytes]:
        public = [public_share(deals, q, m) for m in range(1, N + 1)]
        return secret_share(received[j], q), public, x25519_public_key(group_public_key(deals, q))

    key_cpu, keys = _cpu(lambda: {j: keyper_key(j) for j in range(1, N + 1)})
    s = {j: v[0] for j, v in keys.items()}
    j = 1 + r % N
    t_verify, ok = _cpu(
        lambda: all(released_share_is_valid(s[j], public_share(deals, q, j)) for _ in range(20))
    )
    assert ok
    sk = combine(s, T_)
    assert 0 < sk < L
    assert public_key_of(x25519_private_key(sk)) == keys[1][2]
    return (deal_cpu + check_cpu + key_cpu) / N, t_verify / 20


def main() -> None:
    args = bench_args(__doc__ or NAME)
    rounds = args.repeat or (2 if args.quick else 5)
    rng = random.Random(11)
    identity = {j: rng.randbytes(32) for j in range(1, N + 1)}
    identity_pk = {j: public_key_of(k) for j, k in identity.items()}
    per_keyper, verify_times = [], []
    for r in range(rounds):
        keyper, verify = _round(r, identity, identity_pk)
        per_keyper.append(keyper)
        verify_times.append(verify)
        log(f"round {r + 1}: {keyper * 1e3:.1f} ms CPU per keyper")
    single, _ = _cpu(
        lambda: [public_key_of(derive_auction_secret(bytes(32), AUCTION + k)) for k in range(100)]
    )
    rows = [
        Row(
            NAME,
            "DKG n=5 t=3: CPU per keyper (deal, check, key)",
            min(per_keyper),
            "s",
            target=1.0,
            baseline=f"single-key derivation {single / 100 * 1e6:.0f} us",
            note=f"rounds {', '.join(f'{x * 1e3:.1f}' for x in per_keyper)} ms",
            runs=per_keyper,
        ),
        Row(
            NAME,
            "  released share check (S_j from commitments + s_j*B)",
            min(verify_times),
            "s",
            target=0.010,
            note=f"{min(verify_times) * 1e3:.2f} ms",
            runs=verify_times,
        ),
    ]
    emit(rows, args.out)


if __name__ == "__main__":
    main()
