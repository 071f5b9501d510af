"""Shared helpers: timing, peak RSS, deterministic data generators and the result protocol.

Each benchmark module runs in its own fresh Python process (started by ``benchmarks/run``),
so its peak RSS is its own. It prints progress to stderr and writes its result rows as JSON
to the file named by ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"

AUCTION_ID = 1_767_225_600  # a window boundary timestamp (uint64)
PRICE = 1_050_000_000_000_000_000  # sUSDai share price 1.05e18
CHAIN_ID = 42161
SETTLEMENT = bytes.fromhex("5e77e1ed5e77e1ed5e77e1ed5e77e1ed5e77e1ed")
CONTROLLERS = 1000
SEED = 20_260_101


# --- result protocol --------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table.

    ``value`` is compared with ``target`` by ``cmp`` (``"<="`` or ``">="``); a row without a
    target is informational. ``baseline`` is a free-text figure measured in the same run.
    """

    bench: str
    figure: str
    value: float
    unit: str
    target: float | None = None
    cmp: str = "<="
    baseline: str = ""
    note: str = ""
    runs: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.cmp == "<=" else self.value >= self.target


def bench_args(description: str, **extra: Any) -> argparse.Namespace:
    """The common command line of a benchmark module."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes (CI smoke check)")
    p.add_argument("--size", type=int, default=None, help="override the problem size")
    p.add_argument("--repeat", type=int, default=None, help="override best-of-N")
    p.add_argument("--workers", type=int, default=2, help="worker processes for parallel runs")
    p.add_argument("--out", type=Path, default=None, help="write result rows here (JSON)")
    for name, kwargs in extra.items():
        p.add_argument(f"--{name.replace('_', '-')}", **kwargs)
    return p.parse_args()


def emit(rows: list[Row], out: Path | None, extra: dict[str, Any] | None = None) -> None:
    """Write rows (and process facts) as JSON to ``out``, or to stdout."""
    payload = {
        "rows": [asdict(r) for r in rows],
        "peak_rss_mib": peak_rss_mib(),
        "children_peak_rss_mib": children_peak_rss_mib(),
        **(extra or {}),
    }
    text = json.dumps(payload, indent=1)
    if out is None:
        print(text)
    else:
        out.write_text(text)


def log(msg: str) -> None:
    """Progress to stderr (the runner shows it with -v)."""
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- measuring --------------------------------------------------------------------------


def best_of(fn: Callable[[], T], repeat: int, label: str = "") -> tuple[float, list[float], T]:
    """Run ``fn`` ``repeat`` times; (best seconds, every run, the last result).

    The previous result is dropped (and garbage collected) before each run, so two large
    results (e.g. two 1M-leaf trees) are never alive at once and peak RSS stays honest.
    """
    times: list[float] = []
    result: Any = None
    for i in range(max(1, repeat)):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t0
        times.append(dt)
        if label:
            log(f"{label} run {i + 1}/{repeat}: {dt:.3f} s")
    return min(times), times, result


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mib() -> float:
    """The largest peak RSS among waited-for child processes (e.g. pool workers)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def cache_dir() -> Path:
    """Where slow-to-generate inputs are cached between runs ($TMPDIR/qev-bench-cache)."""
    d = Path(os.environ.get("QEV_BENCH_CACHE") or Path(tempfile.gettempdir()) / "qev-bench-cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


# --- data -------------------------------------------------------------------------------


def controllers(rng: random.Random, count: int = CONTROLLERS) -> list[bytes]:
    """``count`` random 20-byte controller addresses."""
    return [rng.randbytes(20) for _ in range(count)]


def amount(rng: random.Random) -> int:
    """A share amount between 1e18 and 1e24 wei, log-uniform by decade."""
    e = rng.randrange(18, 24)
    return rng.randrange(10**e, 10 ** (e + 1))


def unique_ids(rng: random.Random, n: int) -> list[int]:
    """``n`` distinct random redemption ids below 2^64 (``random.sample`` semantics; its
    population must have a length that fits a C ssize_t, so duplicates are redrawn)."""
    seen: set[int] = set()
    out: list[int] = []
    draw = rng.getrandbits
    while len(out) < n:
        x = draw(64)
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def allocation_values(n: int, seed: int = SEED) -> list[tuple[int, int, bytes, int, int, int]]:
    """``n`` realistic allocation leaves ``(auctionId, redemptionId, controller, filled,
    burnt, payout)``: distinct ids < 2^64, fills 1e18..1e24, ~1000 distinct controllers,
    burnt and payout derived from a random rate in 10..10000 at a 1.05 share price."""
    rng = random.Random(seed)
    ctrl = controllers(rng)
    ids = unique_ids(rng, n)
    out = []
    rand, pick = rng.randrange, rng.choice
    for rid in ids:
        filled = amount(rng)
        burnt = filled * rand(10, 10_001) // 10_000
        out.append((AUCTION_ID, rid, pick(ctrl), filled, burnt, (filled - burnt) * PRICE // 10**18))
    return out


def fmt_seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"
