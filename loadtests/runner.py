"""One command for the load tests: ``loadtests/run [--scenario intake|claims|proofs] ...``.

Prepares the data (pre-sealed bidder flows, or a cleared past auction), starts the dev
service (uvicorn, ``--workers``) on a fresh SQLite file or PostgreSQL schema, runs locust
headless for a fixed time with fixed users, then the ``/healthz`` baseline with the same
users and time against the same service, and prints rps, p50/p95/p99, failures and the ratio.
``--raw`` adds the same measurement with a minimal HTTP/1.1 generator (no locust overhead)
on a fresh store (``--raw-only``: that alone); ``--repeat N`` runs N interleaved (main,
``/healthz``) pairs of ``--time`` seconds each and reports the pair with the median ratio,
since this shared machine's speed drifts by tens of percent between runs. ``--short`` is
the CI variant: a few seconds, exit 1 on any unexpected failure (deliberate bad requests
only pass with their exact problem code).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil

from loadtests.harness import (
    ROOT,
    DevService,
    drop_pg_schema,
    http_request,
    percentile,
    pg_url,
    run_drive,
    stable_genesis,
)
from loadtests.prepare import holders_needed, prepare_claims, prepare_intake, raw_requests

CACHE = Path(tempfile.gettempdir()) / "qev-loadtests"
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
WRITES = ("POST bid (new)", "POST bid (replace)", "POST bid (identical)")
TARGETS = {
    "intake": "acked bids/s >= 1500 and p99 <= 100 ms",
    "claims": "proof reads >= 3000 rps",
    "proofs": "proof reads >= 3000 rps",
}


@dataclass
class Phase:
    """One locust (or raw) phase's figures."""

    label: str
    seconds: float
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> stats
    failures: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)  # cores used: service, generator, machine

    def count(self, names: tuple[str, ...] | None = None, ok: bool = True) -> int:
        """Successful (or failed) requests of ``names`` (all when None)."""
        key = "ok" if ok else "failures"
        return sum(r[key] for n, r in self.rows.items() if names is None or n in names)

    def rps(self, names: tuple[str, ...] | None = None) -> float:
        """Successful requests of ``names`` per second of the phase."""
        return self.count(names) / self.seconds if self.seconds else 0.0

    def pct(self, p: float, names: tuple[str, ...] | None = None) -> float:
        """Latency quantile (ms) over ``names`` combined."""
        hist: dict[float, int] = {}
        for n, r in self.rows.items():
            if names is None or n in names:
                for ms, c in r["hist"].items():
                    hist[ms] = hist.get(ms, 0) + c
        total = sum(hist.values())
        if not total:
            return 0.0
        rank, seen = p * total, 0
        for ms in sorted(hist):
            seen += hist[ms]
            if seen >= rank:
                return ms
        return max(hist)


def _service_cpu(service: DevService) -> dict[int, float]:
    """CPU seconds used so far by each of the service's processes (supervisor, workers)."""
    assert service.proc is not None
    root = psutil.Process(service.proc.pid)
    out = {}
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def _cpu_split(before: dict[int, float], after: dict[int, float], seconds: float) -> dict:
    """Cores used by the service in all, and by each process that used a tenth or more."""
    per = {pid: (after[pid] - before.get(pid, 0.0)) / seconds for pid in after}
    return {
        "service": sum(per.values()),
        "service_processes": sorted((round(v, 2) for v in per.values() if v >= 0.1), reverse=True),
    }


def _busy() -> float:
    """CPU seconds the whole machine has been busy (all processes, all cores)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


def _locust(
    service: DevService,
    user: str,
    *,
    data: Path | None,
    args: argparse.Namespace,
    work: Path,
    label: str,
) -> Phase:
    url = service.url
    prefix = work / f"locust-{label}"
    env = {
        **os.environ,
        "QEV_LOAD_DATA": str(data or ""),
        "QEV_LOAD_REPORT": f"{prefix}-report.json",
        "PYTHONPATH": str(ROOT),
    }
    cmd = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--skip-log-setup",
        "-u",
        str(args.users),
        "-r",
        str(args.spawn_rate or args.users),
        "-t",
        f"{args.time}s",
        "--stop-timeout",
        "5",
        "--host",
        url,
        "--json-file",
        str(prefix),
        "--csv",
        str(prefix),
        "--exit-code-on-error",
        "0",
        user,
    ]
    started, service_cpu, busy = time.monotonic(), _service_cpu(service), _busy()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(f"{prefix}.log", "wb") as log:
        proc = subprocess.run(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=args.time + 120,
            check=False,
            cwd=ROOT,
        )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        **_cpu_split(service_cpu, _service_cpu(service), wall),
        "generator": (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime)
        / wall,
        "machine": (_busy() - busy) / wall,
    }
    if proc.returncode != 0 or not Path(f"{prefix}.json").exists():
        raise SystemExit(f"locust failed ({proc.returncode}); see {prefix}.log")
    stats = orjson.loads(Path(f"{prefix}.json").read_bytes())
    phase = Phase(label, 0.0, cpu=cpu)
    first, last = float("inf"), 0.0
    for s in stats:
        hist = {float(k): int(v) for k, v in s["response_times"].items()}
        phase.rows[s["name"]] = {
            "ok": s["num_requests"] - s["num_failures"],
            "failures": s["num_failures"],
            "hist": hist,
        }
        if s["num_requests"]:
            first = min(first, s["start_time"])
            last = max(last, s["last_request_timestamp"])
    phase.seconds = max(last - first, 1e-3) if last else wall
    report = Path(f"{prefix}-report.json")
    phase.report = orjson.loads(report.read_bytes()) if report.exists() else {}
    failures_csv = Path(f"{prefix}_failures.csv")
    if failures_csv.exists():
        with failures_csv.open(newline="") as f:
            phase.failures = [
                {"name": r["Name"], "error": r["Error"][:300], "count": int(r["Occurrences"])}
                for r in csv.DictReader(f)
            ]
    return phase


def _raw(
    service: DevService,
    label: str,
    requests: list[bytes],
    expect: tuple[int, ...],
    connections: int,
    *,
    seconds: float,
) -> Phase:
    started, service_cpu, own_cpu = time.perf_counter(), _service_cpu(service), time.process_time()
    busy = _busy()
    # connections ramp up over 1 s, as locust spawns its users (-r = -u); sending stops after
    # ``seconds`` (or when the requests run out), so the phases of a pair last alike
    replies = run_drive(
        service.port,
        requests,
        connections,
        timeout=10.0,
        stagger=1 / connections,
        deadline=time.monotonic() + seconds,
    )
    replies = [r for r in replies if r.error != "not sent"]
    seconds = time.perf_counter() - started
    cpu = {
        **_cpu_split(service_cpu, _service_cpu(service), seconds),
        "generator": (time.process_time() - own_cpu) / seconds,
        "machine": (_busy() - busy) / seconds,
    }
    ok = [r for r in replies if r.status in expect]
    lat: dict[float, int] = {}
    for r in ok:
        ms = round(r.latency * 1000, 1)
        lat[ms] = lat.get(ms, 0) + 1
    phase = Phase(label, seconds, cpu=cpu)
    phase.rows[label] = {"ok": len(ok), "failures": len(replies) - len(ok), "hist": lat}
    statuses: dict[int, int] = {}
    for r in replies:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    phase.report = {"statuses": statuses, "p50": percentile([r.latency for r in ok], 0.5)}
    return phase


def _print_phase(p: Phase, names: list[str] | None = None) -> None:
    cpu = (
        f"  (CPU cores busy: service {p.cpu['service']:.2f} "
        f"{'+'.join(str(c) for c in p.cpu.get('service_processes', []))}, generator "
        f"{p.cpu['generator']:.2f}, whole machine {p.cpu['machine']:.2f} of {os.cpu_count()})"
        if p.cpu
        else ""
    )
    print(f"\n[{p.label}] {p.seconds:.1f} s{cpu}")
    print(f"  {'name':34} {'ok':>8} {'fail':>6} {'rps':>8} {'p50':>7} {'p95':>7} {'p99':>7}")
    for name in names or sorted(p.rows):
        if name not in p.rows or name == "Aggregated":
            continue
        r = p.rows[name]
        print(
            f"  {name:34} {r['ok']:8d} {r['failures']:6d} {r['ok'] / p.seconds:8.0f} "
            f"{p.pct(0.5, (name,)):7.1f} {p.pct(0.95, (name,)):7.1f} {p.pct(0.99, (name,)):7.1f}"
        )
    for f in p.failures[:10]:
        print(f"  FAILURE {f['name']}: {f['error']} x{f['count']}")


def _warm(url: str, paths: list[str]) -> None:
    """Load per-worker caches (trees, keys) before measuring: several connections."""
    for _ in range(4):
        for path in paths:
            with httpx.Client(base_url=url, timeout=10) as c:
                c.get(path)


def _store_url(kind: str, work: Path, tag: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{work / f'qev-{tag}.db'}", None
    schema = f"qev_load_{uuid.uuid4().hex[:10]}"
    return pg_url(schema), schema


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the scenario, print the table; exit status for ``--short``."""
    ap = argparse.ArgumentParser(prog="loadtests/run", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--scenario",
        choices=["intake", "claims", "proofs"],
        default="intake",
        help="claims: the claimant mix; proofs: allocation proofs only",
    )
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers")
    ap.add_argument("--users", type=int, default=32, help="locust users (fixed)")
    ap.add_argument("--spawn-rate", type=float, default=None, help="default: all at once")
    ap.add_argument("--time", type=int, default=30, help="seconds per phase")
    ap.add_argument("--pool", type=int, default=None, help="intake flows (default 3000/s)")
    ap.add_argument("--claims", type=int, default=2000, help="bids in the cleared auction")
    ap.add_argument("--raw", action="store_true", help="also measure with a raw generator")
    ap.add_argument("--raw-only", action="store_true", help="only the raw generator's phases")
    ap.add_argument(
        "--connections", type=int, default=None, help="raw generator connections (default: --users)"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="raw generator: interleaved (main, /healthz) pairs; figures from the median pair",
    )
    ap.add_argument("--seed", default="load")
    ap.add_argument("--short", action="store_true", help="CI: a few seconds, assert no failures")
    ap.add_argument("--out", type=Path, default=None, help="write figures as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the run's databases")
    args = ap.parse_args(argv)
    if args.short:
        args.time, args.users, args.claims = min(args.time, 4), min(args.users, 16), 300
        args.pool = args.pool or 8000
    args.connections = args.connections or args.users
    pool = args.pool or 3000 * args.time * (args.repeat if args.raw or args.raw_only else 1)
    work = Path(tempfile.mkdtemp(prefix="qev-load-"))
    data_dir = CACHE / f"keys-{args.seed}"  # stable keys: cached pre-sealed data stays valid
    genesis = stable_genesis()
    holders = holders_needed(pool) if args.scenario == "intake" else args.claims + 10
    store, schema = _store_url(args.store, work, "a")
    schemas = [schema]
    print(
        f"scenario={args.scenario} store={args.store} workers={args.workers} "
        f"users={args.users} time={args.time}s  (2 cores shared by service and generator)"
    )
    failures = 0
    summary: dict[str, Any] = {
        "scenario": args.scenario,
        "store": args.store,
        "workers": args.workers,
        "users": args.users,
        "time": args.time,
    }
    service = DevService(
        store,
        data_dir,
        genesis=genesis,
        seed=args.seed,
        holders=holders,
        workers=args.workers,
        log=work / "service.log",
    )
    try:
        service.start()
        t0 = time.monotonic()
        if args.scenario == "intake":
            auction = service.auction()
            data = CACHE / f"intake-{args.seed}-{auction['auction_id']}-{pool}.json"
            info = prepare_intake(auction, args.seed, pool, data)
            print(
                f"prepared {info['pool']} flows {info['requests']} in "
                f"{time.monotonic() - t0:.1f} s (cached: {data})"
            )
            user, key_names = "Bidder", list(WRITES)
        else:
            data = work / "claims.json"
            info = prepare_claims(store, service, seed=args.seed, count=args.claims, out=data)
            print(
                f"cleared past auction {info['auction_id']}: {info['bids']} bids, "
                f"{info['winners']} winners, in {time.monotonic() - t0:.1f} s"
            )
            d = orjson.loads(data.read_bytes())
            t = d["auction_id"]
            _warm(
                service.url,
                [f"/v1/auctions/{t}/allocations/{d['winners'][0]}", f"/v1/auctions/{t}/result"],
            )
            user = "Claimant" if args.scenario == "claims" else "ProofReader"
            key_names = ["GET allocation proof"]
        if not args.raw_only:  # locust phases
            main_phase = _locust(
                service, user, data=data, args=args, work=work, label=args.scenario
            )
            health = _locust(
                service, "HealthUser", data=None, args=args, work=work, label="healthz"
            )
            _print_phase(main_phase)
            _print_phase(health)
            if main_phase.report.get("exhausted"):
                print(
                    "  NOTE: the pre-sealed pool ran out before the time was up (rates use the "
                    "time actually measured); raise --pool"
                )
            key = tuple(key_names)
            rate, h_rate = main_phase.rps(key), health.rps()
            p99 = main_phase.pct(0.99, key)
            label = "acked bid writes/s" if args.scenario == "intake" else "proof reads/s"
            print(
                f"\n{label}: {rate:.0f}  p50 {main_phase.pct(0.5, key):.1f} ms  "
                f"p95 {main_phase.pct(0.95, key):.1f} ms  p99 {p99:.1f} ms  |  all requests "
                f"{main_phase.rps():.0f}/s"
            )
            print(
                f"healthz baseline: {h_rate:.0f}/s  p50 {health.pct(0.5):.1f} ms  "
                f"p99 {health.pct(0.99):.1f} ms   ratio {rate / h_rate if h_rate else 0:.2f}"
            )
            unexpected = main_phase.count(ok=False) + health.count(ok=False)
            print(f"unexpected failures: {unexpected}   target: {TARGETS[args.scenario]}")
            failures += unexpected
            summary["locust"] = {
                "rate": rate,
                "p50": main_phase.pct(0.5, key),
                "p95": main_phase.pct(0.95, key),
                "p99": p99,
                "all_rps": main_phase.rps(),
                "healthz": h_rate,
                "healthz_p99": health.pct(0.99),
                "failures": unexpected,
                "cpu": main_phase.cpu,
                "rows": {
                    n: {"ok": r["ok"], "failures": r["failures"]}
                    for n, r in main_phase.rows.items()
                },
            }
            if args.scenario == "intake":
                failures += _check_intake_store(
                    store, auction["auction_id"], main_phase, args.users
                )
    finally:
        service.stop()
    if args.raw or args.raw_only:
        failures += _raw_phase(
            args,
            work=work,
            data=data,
            genesis=genesis,
            holders=holders,
            data_dir=data_dir,
            schemas=schemas,
            summary=summary,
        )
    for s in schemas:
        if s:
            drop_pg_schema(s)
    if not args.keep:
        for db in work.glob("qev-*.db*"):
            db.unlink()
    if args.out:
        args.out.write_bytes(
            orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        )
    print(f"\nwork dir: {work}")
    if args.short and failures:
        print(f"FAIL: {failures} unexpected failures")
        return 1
    return 0


def _check_intake_store(store_url: str, auction_id: int, phase: Phase, users: int) -> int:
    """Live bids in the store = acknowledged new bids - acknowledged cancels (± in flight)."""
    from clearing.store import open_store

    store = open_store(store_url)
    try:
        live = store.live_bids(auction_id)
    finally:
        store.close()
    expected = phase.count(("POST bid (new)",)) - phase.count(("DELETE bid (cancel)",))
    sequences = [b.sequence for b in live]
    dup = len(sequences) - len(set(sequences))
    ok = abs(len(live) - expected) <= users and dup == 0
    print(
        f"store check: {len(live)} live bids, acked new - cancels = {expected} "
        f"(users in flight at stop: <= {users}), duplicate sequences {dup}: "
        f"{'ok' if ok else 'MISMATCH'}"
    )
    return 0 if ok else 1


def _raw_phase(
    args: argparse.Namespace,
    *,
    work: Path,
    data: Path,
    genesis: int,
    holders: int,
    data_dir: Path,
    schemas: list[str | None],
    summary: dict[str, Any],
) -> int:
    """The same workload from a minimal HTTP/1.1 generator, on a fresh store."""
    store, schema = _store_url(args.store, work, "raw")
    schemas.append(schema)
    service = DevService(
        store,
        data_dir,
        genesis=genesis,
        seed=args.seed,
        holders=holders,
        workers=args.workers,
        log=work / "service-raw.log",
    )
    try:
        service.start()
        if args.scenario == "intake":
            everything = raw_requests(orjson.loads(data.read_bytes())["flows"])
            # every pair sends bids of its own (a resent bid would be an identical 200)
            per_pair = len(everything) // args.repeat
            slices = [everything[i * per_pair : (i + 1) * per_pair] for i in range(args.repeat)]
            label, expect = "raw: POST bid (new+replace)", (201,)
        else:
            claims = work / "claims-raw.json"
            prepare_claims(store, service, seed=args.seed, count=args.claims, out=claims)
            d = orjson.loads(claims.read_bytes())
            t, winners = d["auction_id"], d["winners"]
            _warm(service.url, [f"/v1/auctions/{t}/allocations/{winners[0]}"])
            n = min(3000 * args.time, 60_000)
            proofs = [
                http_request("GET", f"/v1/auctions/{t}/allocations/{winners[i % len(winners)]}")
                for i in range(n)
            ]
            slices = [proofs] * args.repeat
            label, expect = "raw: GET allocation proof", (200,)
        pairs = []
        for requests in slices:  # main and /healthz phases interleaved: drift hits both
            main_phase = _raw(service, label, requests, expect, args.connections, seconds=args.time)
            health = _raw(
                service,
                "raw: GET /healthz",
                [http_request("GET", "/healthz")] * (20_000 * args.time),
                (200,),
                args.connections,
                seconds=args.time,
            )
            _print_phase(main_phase)
            _print_phase(health)
            pairs.append((main_phase, health))
    finally:
        service.stop()
    ratios = [m.rps() / h.rps() if h.rps() else 0.0 for m, h in pairs]
    # the pair with the median ratio gives the figures; the worst p99 of all pairs is kept
    main_phase, health = pairs[sorted(range(len(pairs)), key=ratios.__getitem__)[len(pairs) // 2]]
    rate, h_rate = main_phase.rps(), health.rps()
    p99 = max(m.pct(0.99) for m, _ in pairs)
    statuses: dict[int, int] = {}
    for m, _ in pairs:
        for code, n in m.report["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    if len(pairs) > 1:
        print(
            "\npairs (rate/s, healthz/s, ratio): "
            + "  ".join(
                f"{m.rps():.0f} {h.rps():.0f} {r:.2f}"
                for (m, h), r in zip(pairs, ratios, strict=True)
            )
        )
    median = ", median pair" if len(pairs) > 1 else ""
    print(
        f"\nraw generator ({args.connections} connections{median}): {rate:.0f}/s  "
        f"p50 {main_phase.pct(0.5):.1f} ms  p95 {main_phase.pct(0.95):.1f} ms  "
        f"p99 {p99:.1f} ms  |  healthz {h_rate:.0f}/s p99 {health.pct(0.99):.1f} ms  "
        f"ratio {rate / h_rate if h_rate else 0:.2f}  statuses {statuses}"
    )
    summary["raw"] = {
        "rate": rate,
        "p50": main_phase.pct(0.5),
        "p95": main_phase.pct(0.95),
        "p99": p99,
        "healthz": h_rate,
        "healthz_p99": health.pct(0.99),
        "statuses": statuses,
        "cpu": main_phase.cpu,
        "pairs": [
            {"rate": m.rps(), "healthz": h.rps(), "ratio": r, "p99": m.pct(0.99)}
            for (m, h), r in zip(pairs, ratios, strict=True)
        ],
    }
    return sum(m.count(ok=False) for m, _ in pairs)


if __name__ == "__main__":
    sys.exit(main())
