"""(a) OZ tree of 100,000 six-word allocation leaves: ours vs ``@openzeppelin/merkle-tree``.

Ours is timed around ``StandardMerkleTree.of`` (serial) and around ``leaf_hashes`` on two
workers plus ``StandardMerkleTree.of(..., leaf_hashes=...)``; Node is timed inside Node
around ``StandardMerkleTree.of`` only. The roots must be equal. Target: >= 50x faster.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import (
    BENCH_DIR,
    REPO,
    Row,
    allocation_values,
    bench_args,
    best_of,
    emit,
    log,
)
from clearing.hexcodec import to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES
from clearing.parallel import leaf_hashes

NAME = "merkle_oz"


def oz_json(values: list[tuple[int, int, bytes, int, int, int]]) -> str:
    """The values in OZ's JSON form: uints as decimal strings, addresses EIP-55."""
    checksum: dict[bytes, str] = {}
    rows = []
    for a, rid, ctrl, filled, burnt, pay in values:
        addr = checksum.get(ctrl)
        if addr is None:
            addr = checksum[ctrl] = to_checksum_address(ctrl)
        rows.append([str(a), str(rid), addr, str(filled), str(burnt), str(pay)])
    return json.dumps({"leafEncoding": list(ALLOCATION_LEAF_TYPES), "values": rows})


def run_oz(values_file: Path) -> dict[str, object]:
    proc = subprocess.run(
        ["node", str(BENCH_DIR / "oz_tree.js"), str(values_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    args = bench_args(__doc__ or NAME)
    n = args.size or (2_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    types = ALLOCATION_LEAF_TYPES
    log(f"generating {n:,} allocation leaves")
    values = allocation_values(n)

    serial, serial_runs, tree = best_of(
        lambda: StandardMerkleTree.of(values, types), repeat, "ours serial"
    )
    ours_root = to_hex(tree.root)
    del tree

    def parallel_build() -> StandardMerkleTree:
        return StandardMerkleTree.of(
            values, types, leaf_hashes=leaf_hashes(values, types, args.workers)
        )

    par, par_runs, tree = best_of(parallel_build, repeat, f"ours {args.workers} workers")
    assert to_hex(tree.root) == ours_root, "parallel and serial roots differ"
    del tree

    with tempfile.TemporaryDirectory(prefix="qev-bench-oz-") as tmp:
        path = Path(tmp) / "values.json"
        path.write_text(oz_json(values))
        log(f"running @openzeppelin/merkle-tree on {n:,} leaves (single run; slow)")
        oz = run_oz(path)
    oz_s = float(oz["ms"]) / 1000  # type: ignore[arg-type]
    log(f"OZ: {oz_s:.2f} s root {oz['root']}")
    if oz["root"] != ours_root:
        raise SystemExit(f"ROOT MISMATCH: ours {ours_root} vs OZ {oz['root']}")

    best = min(serial, par)
    baseline = f"OZ {oz_s:.2f} s (same root)"
    rows = [
        Row(
            NAME,
            f"OZ tree {n:,} leaves: speedup vs Node OZ (best of ours)",
            oz_s / best,
            "x",
            target=50,
            cmp=">=",
            baseline=baseline,
            note=f"ours {'serial' if serial <= par else f'{args.workers} workers'} "
            f"{best * 1000:.0f} ms",
        ),
        Row(
            NAME,
            "  ours serial (StandardMerkleTree.of)",
            serial,
            "s",
            baseline=f"{oz_s / serial:.0f}x",
            runs=serial_runs,
        ),
        Row(
            NAME,
            f"  ours {args.workers} workers (leaf_hashes + of)",
            par,
            "s",
            baseline=f"{oz_s / par:.0f}x",
            runs=par_runs,
        ),
    ]
    emit(rows, args.out, {"root": ours_root, "oz_ms": oz["ms"]})


if __name__ == "__main__":
    main()
