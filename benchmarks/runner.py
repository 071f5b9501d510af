"""Run the issue-3 benchmarks, each in a fresh Python process, and print one results table.

Usage (from anywhere): ``benchmarks/run [NAME ...] [--quick] [--rounds K] [--markdown FILE] [-v]``

Exit status: 0 all ran and met their targets (or ``--quick``), 1 a target was missed,
2 a benchmark failed (crash, or a correctness check such as a root mismatch).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    aliases: tuple[str, ...]
    what: str


BENCHES = [
    Bench("merkle_oz", "benchmarks.bench_merkle_oz", ("oz", "a"), "100k-leaf tree vs Node OZ"),
    Bench("tree_1m", "benchmarks.bench_tree", ("tree", "b"), "1M-leaf tree time and peak RSS"),
    Bench("clear_1m", "benchmarks.bench_clear", ("clear", "c"), "clear 1M bids"),
    Bench("validate_100k", "benchmarks.bench_validate", ("validate", "d"), "open+validate 100k"),
    Bench("proofs_100k", "benchmarks.bench_proofs", ("proofs", "e"), "100k proofs"),
    Bench("dkg_5_3", "benchmarks.bench_dkg", ("dkg", "f"), "threshold DKG n=5 t=3 per keyper"),
]


def select(names: list[str]) -> list[Bench]:
    if not names or names == ["all"]:
        return BENCHES
    by_name = {a: b for b in BENCHES for a in (b.name, *b.aliases)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {[b.name for b in BENCHES]}")
    chosen = {by_name[n].name for n in names}
    return [b for b in BENCHES if b.name in chosen]


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes on the machine have used since boot (/proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_one(b: Bench, args: argparse.Namespace) -> tuple[dict[str, Any] | None, float, str]:
    """Run one benchmark module in a fresh interpreter; (payload or None, seconds, stderr).

    The payload gains ``other_load``: the average number of cores that processes outside
    this benchmark kept busy while it ran (machine-wide CPU time minus the benchmark's own),
    to tell a slow figure from a busy machine.
    """
    with tempfile.NamedTemporaryFile(suffix=".json", prefix=f"qev-bench-{b.name}-") as out:
        cmd = [sys.executable, "-m", b.module, "--out", out.name, "--workers", str(args.workers)]
        if args.quick:
            cmd.append("--quick")
        if args.repeat:
            cmd += ["--repeat", str(args.repeat)]
        busy0, ours0 = busy_cpu_seconds(), children_cpu_seconds()
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            stderr=None if args.verbose else subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - t0
        busy1, ours1 = busy_cpu_seconds(), children_cpu_seconds()
        err = proc.stderr or ""
        if proc.returncode != 0:
            return None, elapsed, err
        payload: dict[str, Any] = json.loads(Path(out.name).read_text())
        if busy0 is not None and busy1 is not None:
            other = (busy1 - busy0) - (ours1 - ours0)
            payload["other_load"] = max(0.0, other / elapsed)
        return payload, elapsed, err


def fmt_value(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "x":
        return f"{value:.0f}x"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:,.0f} {unit}"


def fmt_target(row: dict[str, Any]) -> str:
    if row["target"] is None:
        return ""
    t = row["target"]
    if row["unit"] == "MiB":
        return f"{row['cmp']} {t / 1024:g} GiB"
    return f"{row['cmp']} {fmt_value(t, row['unit'])}".replace("1000 ms", "1 s")


def status(row: dict[str, Any], quick: bool) -> str:
    if row["target"] is None:
        return ""
    if quick:
        return "ran"
    ok = row["value"] <= row["target"] if row["cmp"] == "<=" else row["value"] >= row["target"]
    return "PASS" if ok else "FAIL"


def headline_score(payload: dict[str, Any]) -> float:
    """Lower is better: the first row with a target decides which round is reported."""
    for row in payload["rows"]:
        if row["target"] is not None:
            return float(row["value"]) if row["cmp"] == "<=" else -float(row["value"])
    return 0.0


def machine() -> dict[str, str]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)

    def git(*cmd: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(REPO), *cmd], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "clearing"):
        commit += " + uncommitted changes in clearing/"
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "python": f"Python {platform.python_version()}",
        "node": node.stdout.strip() or "node not found",
        "cpu": f"{cores} cores, {cpu}",
        "commit": commit,
        "load": "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
    }


def table(rows: list[dict[str, Any]], quick: bool, markdown: bool) -> str:
    head = ["benchmark", "figure", "result", "target", "baseline (same run)", "status", "notes"]
    body = [
        [
            r["bench"] if not r["figure"].startswith("  ") else "",
            r["figure"].strip() if markdown else r["figure"],
            fmt_value(r["value"], r["unit"]),
            fmt_target(r),
            r["baseline"],
            status(r, quick),
            r["note"],
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    sep = "  ".join("-" * w for w in widths)
    lines = [fmt.format(*head), sep, *(fmt.format(*row) for row in body)]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="benchmarks/run",
        description="Run the qev core benchmarks (issue 3) and print a results table.",
        epilog="benchmarks: "
        + "; ".join(f"{b.name} ({'/'.join(b.aliases)}): {b.what}" for b in BENCHES),
    )
    p.add_argument("names", nargs="*", help="subset to run (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes: a < 60 s smoke check")
    p.add_argument("--repeat", type=int, default=None, help="best of N (default 3, OZ run 1)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the whole selection K times, spread over time, and report each benchmark's"
        " best round (its headline figure decides; its baselines come from the same round)",
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    p.add_argument("--json", type=Path, help="also write raw results as JSON here")
    p.add_argument("-v", "--verbose", action="store_true", help="show each benchmark's progress")
    args = p.parse_args(argv)
    chosen = select(args.names)
    info = machine()
    mode = "quick (smoke sizes; targets not judged)" if args.quick else "full"
    print(f"qev benchmarks, {mode}: {info['date']}; {info['python']}; node {info['node']}")
    print(f"machine: {info['cpu']}; {info['load']} at start; code {info['commit']}", flush=True)

    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {"machine": info, "quick": args.quick, "benches": {}, "rounds": []}
    failed: list[str] = []
    total0 = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {b.name: [] for b in chosen}
    for r in range(args.rounds):
        for b in chosen:
            if b.name in failed:
                continue
            label = f"round {r + 1}/{args.rounds}: " if args.rounds > 1 else ""
            print(f"  {label}running {b.name} ...", end="", flush=True, file=sys.stderr)
            payload, elapsed, err = run_one(b, args)
            if payload is None:
                print(f" FAILED after {elapsed:.1f} s", file=sys.stderr)
                print("\n".join(err.strip().splitlines()[-25:]), file=sys.stderr)
                failed.append(b.name)
                continue
            other = payload.get("other_load")
            other_txt = f", other processes used {other:.2f} cores" if other is not None else ""
            print(
                f" {elapsed:.1f} s (peak RSS {payload['peak_rss_mib']:.0f} MiB{other_txt})",
                file=sys.stderr,
            )
            payload["wall_s"] = elapsed
            results[b.name].append(payload)
            raw["rounds"].append({"round": r + 1, "bench": b.name, **payload})
    for b in chosen:
        if b.name in failed or not results[b.name]:
            continue
        best = min(results[b.name], key=headline_score)
        rows.extend(best["rows"])
        raw["benches"][b.name] = best
    total = time.perf_counter() - total0

    sys.stderr.flush()
    print()
    print(table(rows, args.quick, markdown=False))
    repeat = args.repeat or (1 if args.quick else 3)
    rounds = f"; best of {args.rounds} rounds of the whole suite" if args.rounds > 1 else ""
    print(
        f"\nTimes: time.perf_counter, best of {repeat} run(s) each (1 for the Node OZ baseline,"
        f" at most 2 for other baselines){rounds};\nthe machine is shared, so figures are noisy."
        " Peak RSS: ru_maxrss of a fresh process per configuration,\ninput data included."
        f" Total wall time {total:.0f} s."
    )
    loads = "; ".join(
        f"{name} {b['other_load']:.2f}"  # of the reported round
        for name, b in raw["benches"].items()
        if b.get("other_load") is not None
    )
    if loads:
        print(f"Cores busy with other processes during each benchmark: {loads}.")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    missed = [r["figure"].strip() for r in rows if status(r, args.quick) == "FAIL"]
    if missed:
        print(f"targets missed: {'; '.join(missed)}")
    if args.markdown:
        command = " ".join(
            ["benchmarks/run", *args.names]
            + (["--quick"] if args.quick else [])
            + ([f"--rounds {args.rounds}"] if args.rounds > 1 else [])
            + ([f"--repeat {args.repeat}"] if args.repeat else [])
        )
        md = [
            f"Measured {info['date']} with `{command}`"
            f" on {info['cpu']} ({info['python']}, node {info['node']}; {info['load']} at"
            f" start; code at {info['commit']}). Times are the best of {repeat} runs"
            f" (Node OZ baseline: 1 run){rounds}; the machine is shared, so figures are noisy.",
            "",
            table(rows, args.quick, markdown=True),
            "",
            f"Cores busy with other processes during each benchmark: {loads or 'n/a'}.",
            "",
        ]
        args.markdown.write_text("\n".join(md))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    if failed:
        return 2
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
