"""Markdown rows for RESULTS.md from ``loadtests/run --out FILE`` JSON files.

.venv/bin/python -m loadtests.table /tmp/qev-results/*.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

HEADER = (
    "| scenario | store | workers | users | generator | rate/s | p50 ms | p95 ms | p99 ms "
    "| healthz/s (p99 ms) | ratio | cores: service (per process) / generator / other "
    "| unexpected failures |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def rows(doc: dict) -> list[str]:
    """One row per generator (locust, raw) of one run."""
    out = []
    for gen in ("locust", "raw"):
        m = doc.get(gen)
        if not m:
            continue
        cpu = m.get("cpu") or {}
        other = cpu.get("machine", 0) - cpu.get("service", 0) - cpu.get("generator", 0)
        per = "+".join(str(c) for c in cpu.get("service_processes", []))
        cores = (
            f"{cpu.get('service', 0):.2f} ({per}) / {cpu.get('generator', 0):.2f} / "
            f"{max(other, 0):.2f}"
        )
        fails = m.get("failures", sum(v for k, v in m.get("statuses", {}).items() if k not in (
            "200", "201")))  # fmt: skip
        users = doc["users"] if gen == "locust" else f"{doc['users']} conns"
        out.append(
            f"| {doc['scenario']} | {doc['store']} | {doc['workers']} | {users} | {gen} "
            f"| {m['rate']:.0f} | {m['p50']:.0f} | {m['p95']:.0f} | {m['p99']:.0f} "
            f"| {m['healthz']:.0f} ({m['healthz_p99']:.0f}) | {m['rate'] / m['healthz']:.2f} "
            f"| {cores} | {fails} |"
        )
    return out


def main(paths: list[str]) -> None:
    """Print the header and the rows of every file, in the order given."""
    print(HEADER)
    for p in paths:
        for row in rows(orjson.loads(Path(p).read_bytes())):
            print(row)


if __name__ == "__main__":
    main(sys.argv[1:])
