"""(e) 100,000 proofs from a built tree: <= 1 s; single-proof verification rate beside it.

The tree holds 100k allocation leaves (built once, not timed); the timed step is
``[tree.proof(i) for i in range(n)]``. Verification: ``clearing.merkle.verify`` (leaf hash
from values + fold) on a sample of the proofs, reported in proofs per second.
"""

from __future__ import annotations

from benchmarks.common import Row, allocation_values, bench_args, best_of, emit, log
from clearing.merkle import StandardMerkleTree, verify
from clearing.model import ALLOCATION_LEAF_TYPES

NAME = "proofs_100k"


def main() -> None:
    args = bench_args(__doc__ or NAME)
    n = args.size or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    types = ALLOCATION_LEAF_TYPES
    log(f"building a tree of {n:,} allocation leaves")
    values = allocation_values(n)
    t_build, _, tree = best_of(lambda: StandardMerkleTree.of(values, types), 1)

    t_proofs, runs, proofs = best_of(
        lambda: [tree.proof(i) for i in range(n)], repeat, f"{n:,} proofs"
    )
    sample = min(n, 20_000)
    root = tree.root

    def verify_sample() -> bool:
        return all(verify(root, types, values[i], proofs[i]) for i in range(sample))

    t_verify, _, all_ok = best_of(verify_sample, repeat, f"verify {sample:,} proofs")
    if not all_ok:
        raise SystemExit("a proof did not verify")
    rows = [
        Row(
            NAME,
            f"{n:,} proofs from a built tree",
            t_proofs,
            "s",
            target=1.0,
            baseline=f"(context: tree build {t_build:.2f} s)",
            note=f"{n / t_proofs:,.0f} proofs/s, depth ~{len(proofs[0])}",
            runs=runs,
        ),
        Row(
            NAME,
            "  single-proof verification rate",
            sample / t_verify,
            "proofs/s",
            note=f"{sample:,} proofs, {t_verify * 1e6 / sample:.1f} us each",
        ),
    ]
    emit(rows, args.out)


if __name__ == "__main__":
    main()
