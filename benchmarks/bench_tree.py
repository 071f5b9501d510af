"""(b) 1,000,000-leaf allocation tree (encode + hash + sort + nodes): <= 4 s, peak RSS <= 1.5 GiB.

Each configuration (``--workers`` processes for leaf hashing, and the 1-worker serial
baseline) runs in its own fresh Python process, so each peak RSS is that build's own. The
peak RSS includes the 1M input values (generated in the same process before the build).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    REPO,
    Row,
    allocation_values,
    bench_args,
    best_of,
    children_peak_rss_mib,
    emit,
    log,
    peak_rss_mib,
)
from clearing.hexcodec import to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES
from clearing.parallel import leaf_hashes

NAME = "tree_1m"
RSS_TARGET_MIB = 1.5 * 1024


def single(n: int, workers: int, repeat: int) -> dict[str, object]:
    """Build the tree ``repeat`` times with ``workers`` hashing processes, in this process."""
    types = ALLOCATION_LEAF_TYPES
    log(f"[{workers} worker(s)] generating {n:,} allocation leaves")
    values = allocation_values(n)
    inputs_rss = peak_rss_mib()
    phases: list[float] = []

    def build() -> StandardMerkleTree:
        if workers <= 1:
            return StandardMerkleTree.of(values, types)
        t0 = time.perf_counter()
        hashes = leaf_hashes(values, types, workers)
        phases.append(time.perf_counter() - t0)
        return StandardMerkleTree.of(values, types, leaf_hashes=hashes)

    best, runs, tree = best_of(build, repeat, f"{workers} worker(s) build")
    root = to_hex(tree.root)
    assert len(tree.tree) == 2 * n - 1
    return {
        "workers": workers,
        "best": best,
        "runs": runs,
        "hash_phase": phases[runs.index(best)] if phases else None,
        "root": root,
        "inputs_rss_mib": inputs_rss,
        "peak_rss_mib": peak_rss_mib(),
        "children_peak_rss_mib": children_peak_rss_mib(),
    }


def spawn(n: int, workers: int, repeat: int) -> dict[str, object]:
    """Run :func:`single` in a fresh interpreter and return its JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json", prefix="qev-bench-tree-") as f:
        cmd = [sys.executable, "-m", "benchmarks.bench_tree", "--single-run", str(workers)]
        cmd += ["--size", str(n), "--repeat", str(repeat), "--out", f.name]
        subprocess.run(cmd, cwd=REPO, check=True)
        result: dict[str, object] = json.loads(Path(f.name).read_text())
        return result


def main() -> None:
    args = bench_args(__doc__ or NAME, single_run={"type": int, "default": None})
    n = args.size or (50_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 3)
    if args.single_run is not None:
        result = single(n, args.single_run, repeat)
        assert args.out is not None
        args.out.write_text(json.dumps(result))
        return

    par = spawn(n, args.workers, repeat)
    ser = spawn(n, 1, max(1, min(repeat, 2)))
    if par["root"] != ser["root"]:
        raise SystemExit(f"ROOT MISMATCH: {par['root']} vs serial {ser['root']}")
    p_best, s_best = float(par["best"]), float(ser["best"])  # type: ignore[arg-type]
    p_rss, s_rss = float(par["peak_rss_mib"]), float(ser["peak_rss_mib"])  # type: ignore[arg-type]
    hash_phase = par["hash_phase"]
    note = (
        f"hash {hash_phase:.2f} s + sort/nodes {p_best - hash_phase:.2f} s"  # type: ignore[operator]
        if isinstance(hash_phase, float)
        else ""
    )
    rows = [
        Row(
            NAME,
            f"{n:,}-leaf allocation tree, {args.workers} workers",
            p_best,
            "s",
            target=4.0,
            baseline=f"serial {s_best:.2f} s",
            note=note,
            runs=par["runs"],  # type: ignore[arg-type]
        ),
        Row(
            NAME,
            f"  peak RSS ({args.workers} workers; inputs {par['inputs_rss_mib']:.0f} MiB)",
            p_rss,
            "MiB",
            target=RSS_TARGET_MIB,
            baseline=f"serial {s_rss:.0f} MiB",
            note=f"largest worker {float(par['children_peak_rss_mib']):.0f} MiB",  # type: ignore[arg-type]
        ),
    ]
    emit(rows, args.out, {"root": par["root"]})


if __name__ == "__main__":
    main()
