"""Issue 15: a whole month at scale on anvil, phase by phase (``benchmarks/month --bids N``).

For each N (``--bids 1000,10000`` runs the curve), on a fresh anvil (automine) behind a
counting JSON-RPC proxy (``benchmarks.month_proxy``):

setup (not measured)
    ``deploy_stack`` with a genesis that puts T an hour after now (real time), the keeper
    commits the auction key, N bids are sealed (``loadtests.harness.seal_many``, holders of
    the dev server's key derivation), and N redemption requests (10 sUSDai each, controller
    = holder i) are sent unsigned from anvil's unlocked account 0 as JSON-RPC batches with
    automine off, mined thousands to a block. 75% of the vault's USDai is then "deployed".
intake
    ``qev serve --workers 2`` (SQLite, or ``--store postgres``) as a subprocess, its chain
    reads through the proxy; the N sealed bids are POSTed over 32 keep-alive connections
    (``loadtests.harness.drive``); rate, p50/p99 and the service's RPC calls.
close
    anvil moves past T; ``benchmarks.month_close`` (a child process: its own peak RSS) runs
    ``Keeper.close_auction`` with each phase timed and its RPC calls and gas counted. The
    keeper's service clock is the chain's (the service's real clock stays before T; the
    store's freeze is the fence, so the service publishes the frozen book and results).
verify
    ``qev verify --service URL --auction T --rpc PROXY`` as a subprocess (time, RSS, RPC calls).

Prints one table (each phase: wall time, per-bid cost, RPC calls, gas) with the ratio of
per-bid cost at the largest N to the smallest; ``--markdown FILE`` writes it too.

anvil recomputes its whole state root for every block and keeps each block's state in
memory: at 100,000 requests a block costs ~1.2 s and ~60 MB whatever it holds, and anvil
takes no transaction while it mines. So under automine (a block per transaction) the
hundreds of claim and service transactions of a 100k close at the keeper's default sizes
take anvil, not the keeper, tens of minutes and more memory than this machine has.
``--mining burst`` builds blocks as a block builder would: everything pending once no
transaction has arrived for ``--quiet`` s (0.15), at most ``--slot`` s (2) after the first,
so the keeper's 8 pipelined transactions share a block; ``--mining eager`` mines as soon as
anvil is free. ``--skip-claims-from N`` leaves the claims and the queue service out from N
on; ``--claim-batch``, ``--claim-depth`` and ``--service-batch`` override the keeper's sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
from eth_account import Account
from web3 import Web3

from benchmarks.common import REPO, log
from clearing.calendar import REDEMPTION_WINDOW
from clearing.eip712 import Eip712Domain
from clearing.engine import Mode
from clearing.hexcodec import parse_address, to_checksum_address, to_hex
from clearing.sealing import derive_auction_secret, public_key_of
from clearing.signing import Signer
from clearing.store import open_store
from keeper.chain import Chain
from keeper.deploy import deploy_stack, transact
from keeper.jobs import Keeper, KeeperConfig
from keeper.senders import make_sender
from loadtests.harness import free_port, http_request, percentile, run_drive, seal_many

ANVIL = REPO / "node_modules" / ".bin" / "anvil"
QEV = REPO / ".venv" / "bin" / "qev"
CHAIN_ID = 31337
E18 = 10**18
SHARES = 10 * E18  # each request, and each sealed bid (loadtests.harness.seal_one)
LIQUIDITY_BPS = 8_000
SEED = "month"


def _key(label: str) -> bytes:
    return hashlib.sha256(b"qev-bench-month:" + label.encode()).digest()


MASTER = _key("master")
SERVICE_KEY = _key("service")


def rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        answer = json.loads(r.read())
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def rpc_batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    body = orjson.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    )
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        answers = sorted(orjson.loads(r.read()), key=lambda a: a["id"])
    errors = [a["error"] for a in answers if "error" in a]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(calls)} calls failed: {errors[0]}")
    return [a["result"] for a in answers]


def counts(proxy: str) -> Counter[str]:
    with urllib.request.urlopen(proxy + "/__count", timeout=30) as r:
        return Counter(json.loads(r.read()))


def rpc_total(c: Counter[str] | dict[str, int]) -> int:
    return sum(v for k, v in c.items() if not k.startswith("<"))


def wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def vm_hwm_mib(pid: int) -> float:
    """Peak RSS (VmHWM) of a live process."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by live processes ``pids``."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(x) for x in (task / "children").read_text().split()]
    return kids + [d for k in kids for d in descendants(k)]


def run_waited(cmd: list[str], log_path: Path, env: dict[str, str]) -> tuple[int, float, float]:
    """Run ``cmd``; (exit status, seconds, its peak RSS in MiB from wait4)."""
    t0 = time.perf_counter()
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=out, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss / 1024


def forwarded(i: int) -> str:
    """Holder ``i``'s client address (10.0.0.0/8)."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def request_data(controller: str, owner: str) -> str:
    sel = Web3.keccak(text="requestRedeem(uint256,address,address)")[:4].hex()
    return (
        "0x"
        + sel.removeprefix("0x")
        + f"{SHARES:064x}"
        + controller.lower().removeprefix("0x").rjust(64, "0")
        + owner.lower().removeprefix("0x").rjust(64, "0")
    )


def month(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One whole month with ``n`` bids; its figures."""
    out: dict[str, Any] = {"bids": n}
    procs: list[subprocess.Popen[bytes]] = []
    schema = f"qev_month_{n}_{os.getpid()}"
    try:
        anvil_port, proxy_port, service_port = free_port(), free_port(), free_port()
        anvil_url = f"http://127.0.0.1:{anvil_port}"
        proxy = f"http://127.0.0.1:{proxy_port}"
        procs.append(
            subprocess.Popen(
                [
                    str(ANVIL),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(anvil_port),
                    "--chain-id",
                    str(CHAIN_ID),
                    "--gas-limit",
                    "3000000000",
                    "--silent",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for(lambda: int(rpc(anvil_url, "eth_chainId"), 16) == CHAIN_ID, "anvil")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.month_proxy",
                    "--port",
                    str(proxy_port),
                    "--upstream",
                    anvil_url,
                ],
                cwd=REPO,
            )
        )
        wait_for(lambda: counts(proxy) is not None, "proxy")

        # --- setup (not measured) ---------------------------------------------------------
        t_setup = time.perf_counter()
        w3 = Web3(Web3.HTTPProvider(anvil_url, request_kwargs={"timeout": 300}))
        admin = w3.eth.accounts[0]
        urgent, house = Account.from_key(_key("urgent")), Account.from_key(_key("house"))
        for lane in (urgent, house):
            rpc(anvil_url, "anvil_setBalance", lane.address, hex(10**21))
        t_close = int(time.time()) + 3_600
        genesis = t_close - REDEMPTION_WINDOW
        dep = deploy_stack(
            w3,
            admin,
            [urgent.address, house.address],
            genesis=genesis,
            admin_fee_bps=100,
            fee_recipient=Account.from_key(_key("fee")).address,
            receipt_signer=to_checksum_address(Signer(SERVICE_KEY).address),
        )
        chain = Chain(w3, dep.vault, dep.settlement)
        assert chain.genesis() == genesis
        if args.store == "postgres":
            from loadtests.harness import pg_url

            store_url = pg_url(schema)
        else:
            store_url = f"sqlite:///{tmp / 'qev.db'}"
        domain = Eip712Domain("QEVSettlement", "1", CHAIN_ID, parse_address(dep.settlement))
        lanes = [make_sender(w3, a, poll_interval=0.01) for a in (urgent, house)]
        store = open_store(store_url)
        keeper = Keeper(
            chain, store, lanes[0], lanes[1], KeeperConfig(MASTER, domain, Mode.PAY_AS_BID)
        )
        assert keeper.open_auction(t_close)
        store.close()
        pk = public_key_of(derive_auction_secret(MASTER, t_close))
        auction = {
            "auction_id": t_close,
            "public_key": to_hex(pk),
            "chain_id": CHAIN_ID,
            "settlement": dep.settlement,
            "eip712": {"name": "QEVSettlement", "version": "1"},
        }
        t0 = time.perf_counter()
        specs = [(i, i + 1, 10 + (i * 7919) % 9990) for i in range(n)]
        sealed = seal_many(auction, SEED, specs, 2)
        out["seal_s"] = time.perf_counter() - t0
        log(f"N={n}: sealed {n} bids in {out['seal_s']:.1f} s")
        controllers = [orjson.loads(s.body)["controller"] for s in sealed]

        usdai, vault = chain.usdai, chain.vault
        total = n * SHARES
        transact(w3, usdai.functions.mint(admin, 2 * total), admin)
        transact(w3, usdai.functions.approve(vault.address, 2 * total), admin)
        transact(w3, vault.functions.deposit(2 * total, admin), admin)
        rpc(anvil_url, "evm_setAutomine", False)
        t0 = time.perf_counter()
        chunk = 2_000
        nonce = int(rpc(anvil_url, "eth_getTransactionCount", admin, "pending"), 16)
        for start in range(0, n, chunk):
            calls: list[tuple[str, list[Any]]] = [
                (
                    "eth_sendTransaction",
                    [
                        {
                            "from": admin,
                            "to": vault.address,
                            "gas": hex(400_000),
                            "nonce": hex(nonce + start + k),
                            "data": request_data(c, admin),
                        }
                    ],
                )
                for k, c in enumerate(controllers[start : start + chunk])
            ]
            hashes = rpc_batch(anvil_url, calls)
            rpc(anvil_url, "evm_mine")
            receipt = rpc(anvil_url, "eth_getTransactionReceipt", hashes[-1])
            if receipt is None or int(receipt["status"], 16) != 1:
                raise RuntimeError(f"requests {start}..: the last one failed ({receipt})")
        rpc(anvil_url, "evm_setAutomine", True)
        index = int(vault.functions.redemptionQueueInfo().call()[0])
        assert index == n, (index, n)
        assert chain.request(n).controller == parse_address(controllers[-1])
        out["requests_s"] = time.perf_counter() - t0
        held = int(usdai.functions.balanceOf(vault.address).call())
        deployed = held * 75 // 100
        transact(w3, usdai.functions.burn(vault.address, deployed), admin)
        transact(w3, vault.functions.setExternalAssets(deployed * 1_008 // 1_000), admin)
        out["setup_s"] = time.perf_counter() - t_setup
        log(f"N={n}: {n} requests in {out['requests_s']:.1f} s; setup {out['setup_s']:.1f} s")

        # --- the service --------------------------------------------------------------------
        key_file = tmp / "service.key"
        key_file.write_text(SERVICE_KEY.hex())
        key_file.chmod(0o600)
        config = tmp / "qev.toml"
        config.write_text(
            f'[chain]\nrpc_url = "{proxy}"\nvault = "{dep.vault}"\n'
            f'settlement = "{dep.settlement}"\nstore_url = "{store_url}"\n\n'
            f'[service]\nservice_key_file = "{key_file}"\nport = {service_port}\nworkers = 2\n'
            "client_rate = 1000000000.0\nclient_burst = 1000000000\n"
            "controller_lookup_budget = 1000000000\naccess_log = false\n"
            'trusted_proxies = ["127.0.0.1"]\n'
            'log_level = "warning"\nlog_format = "json"\n'
        )
        env = {**os.environ, "QEV_CONFIG": str(config)}
        service_log = open(tmp / "service.log", "wb")  # noqa: SIM115 - closed with the process
        service = subprocess.Popen(
            [str(QEV), "serve"],
            cwd=tmp,
            env=env,
            stdout=service_log,
            stderr=service_log,
            start_new_session=True,
        )
        procs.append(service)
        base = f"http://127.0.0.1:{service_port}"
        wait_for(lambda: httpx.get(base + "/readyz", timeout=2).status_code == 200, "qev serve")
        current = httpx.get(base + "/v1/auctions/current", timeout=10).json()
        assert int(current["auction_id"]) == t_close and current["public_key"] == to_hex(pk), (
            current
        )

        # --- intake -------------------------------------------------------------------------
        # each holder is its own client behind a trusted proxy (X-Forwarded-For): the
        # service's per-client limits (4 chain reads at once, a look-up budget) stay as set
        raw = [
            http_request("POST", f"/v1/auctions/{t_close}/bids", s.body).replace(
                b"\r\n", f"\r\nX-Forwarded-For: {forwarded(i)}\r\n".encode(), 1
            )
            for i, s in enumerate(sealed)
        ]
        del sealed
        c0 = counts(proxy)
        roles = {"anvil": [procs[0].pid, *descendants(procs[0].pid)], "RPC proxy": [procs[1].pid]}
        roles["service"] = [service.pid, *descendants(service.pid)]
        cpu0 = {role: cpu_seconds(pids) for role, pids in roles.items()}
        own0 = time.process_time()
        t0 = time.perf_counter()
        done = [0]

        def progress(_: int, __: Any) -> None:
            done[0] += 1
            if done[0] % max(1, n // 10) == 0:
                log(f"N={n}: intake {done[0]} replies, {time.perf_counter() - t0:.1f} s")

        replies = run_drive(
            service_port, raw, args.connections, timeout=30.0, stagger=0.002, on_reply=progress
        )
        intake_s = time.perf_counter() - t0
        cores = {role: (cpu_seconds(pids) - cpu0[role]) / intake_s for role, pids in roles.items()}
        cores["load generator"] = (time.process_time() - own0) / intake_s
        statuses = Counter(r.status for r in replies)
        acked = [r.latency for r in replies if r.status == 201]
        out["intake"] = {
            "seconds": intake_s,
            "acked": len(acked),
            "statuses": {str(k): v for k, v in statuses.items()},
            "rate": len(acked) / intake_s,
            "p50_ms": percentile(acked, 0.5) * 1000,
            "p99_ms": percentile(acked, 0.99) * 1000,
            "rpc": dict(counts(proxy) - c0),
            "cores": cores,  # CPU cores busy on average during intake, by process
        }
        log(f"N={n}: intake {out['intake']}")
        if len(acked) != n:
            bad = next(r for r in replies if r.status != 201)
            raise RuntimeError(f"intake: {statuses}; e.g. {bad.status} {bad.body[:300]!r}")
        del raw, replies
        if args.intake_only:
            return out

        # --- past T, the close --------------------------------------------------------------
        rpc(anvil_url, "evm_setNextBlockTimestamp", t_close + 2)
        rpc(anvil_url, "evm_mine")
        params = {
            "rpc": proxy,
            "direct_rpc": anvil_url,
            "count_url": proxy + "/__count",
            "vault": dep.vault,
            "settlement": dep.settlement,
            "store_url": store_url,
            "master": MASTER.hex(),
            "urgent_key": urgent.key.hex().removeprefix("0x"),
            "house_key": house.key.hex().removeprefix("0x"),
            "chain_id": CHAIN_ID,
            "auction_id": t_close,
            "liquidity_bps": LIQUIDITY_BPS,
            "workers": 2,
            "poll": args.poll,
            "claim_batch": args.claim_batch,
            "claim_depth": args.claim_depth,
            "service_batch": args.service_batch,
            "skip_chain_bulk": n >= args.skip_claims_from,
        }
        (tmp / "close.json").write_text(json.dumps(params))
        c0 = counts(proxy)
        miner = (
            None
            if args.mining == "auto"
            else Miner(anvil_url, *((args.quiet, args.slot) if args.mining == "burst" else ()))
        )
        status, close_s, close_rss = run_waited(
            [
                sys.executable,
                "-m",
                "benchmarks.month_close",
                str(tmp / "close.json"),
                str(tmp / "close.out.json"),
            ],
            tmp / "close.log",
            dict(os.environ),
        )
        if status != 0:
            raise RuntimeError(
                f"close failed ({status}): {(tmp / 'close.log').read_text()[-3000:]}"
            )
        if miner is not None:
            out["blocks_mined"] = miner.stop()
            out["mined"] = miner.mined
        close = json.loads((tmp / "close.out.json").read_text())
        close["process_s"] = close_s
        close["rss_wait4_mib"] = close_rss
        close["rpc_total"] = dict(counts(proxy) - c0)
        out["close"] = close
        log(
            f"N={n}: close {close['total_s']:.1f} s (process {close_s:.1f} s), done {close['done']}"
        )

        # --- verify -------------------------------------------------------------------------
        c0 = counts(proxy)
        status, verify_s, verify_rss = run_waited(
            [
                str(QEV),
                "verify",
                "--service",
                base,
                "--auction",
                str(t_close),
                "--rpc",
                proxy,
                "--vault",
                dep.vault,
                "--settlement",
                dep.settlement,
            ],
            tmp / "verify.log",
            env,
        )
        verify_out = (tmp / "verify.log").read_text()
        out["verify"] = {
            "status": status,
            "seconds": verify_s,
            "rss_mib": verify_rss,
            "rpc": dict(counts(proxy) - c0),
            "tail": verify_out.strip().splitlines()[-1:] if verify_out.strip() else [],
        }
        log(f"N={n}: verify exit {status} in {verify_s:.1f} s: {out['verify']['tail']}")
        if status != 0:
            log(verify_out[-3000:])

        pids = [service.pid, *descendants(service.pid)]
        out["service_rss_mib"] = {str(p): vm_hwm_mib(p) for p in pids}
        return out
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                if p is procs[-1] and len(procs) == 3:
                    os.killpg(p.pid, signal.SIGTERM)
                else:
                    p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        if args.store == "postgres":
            from loadtests.harness import drop_pg_schema

            drop_pg_schema(schema)


# --- the table --------------------------------------------------------------------------

CLOSE_ORDER = [
    "freeze",
    "commitBook",
    "other (key check, block lookups)",
    "snapshot reads",
    "open + validate",
    "clear",
    "trees",
    "persist (documents, store)",
    "settle",
    "push claims",
    "service queue",
    "reveal",
]
GAS_OF = {
    "commitBook": ["commitBook"],
    "settle": ["settleAuction"],
    "push claims": ["claimMultiple"],
    "service queue": ["serviceRedemptions"],
    "reveal": ["revealAuctionKey"],
}


def selector_names() -> dict[str, str]:
    """``{"0x" + selector: function name}`` of the settlement contract and the vault."""
    from eth_utils import function_abi_to_4byte_selector

    from keeper.artifacts import artifact

    return {
        "0x" + function_abi_to_4byte_selector(item).hex(): item["name"]
        for name in ("QEVSettlement", "StakedUSDaiQueue")
        for item in artifact(name)["abi"]
        if item.get("type") == "function"
    }


def rows_of(r: dict[str, Any]) -> dict[str, tuple[float, int, int, str]]:
    """``{phase: (seconds, rpc calls, gas, note)}`` of one run."""
    rows: dict[str, tuple[float, int, int, str]] = {}
    it = r["intake"]
    rows["intake (HTTP, acked bids)"] = (
        it["seconds"],
        rpc_total(it["rpc"]),
        0,
        f"{it['rate']:,.0f} bids/s, p50 {it['p50_ms']:.0f} ms, p99 {it['p99_ms']:.0f} ms"
        + (
            "; cores busy: " + ", ".join(f"{k} {v:.2f}" for k, v in it["cores"].items())
            if "cores" in it
            else ""
        ),
    )
    phases = {p["name"]: p for p in r["close"]["phases"]}
    named = selector_names()  # runs before the selector fix named claimMultiple by its selector
    gas = {named.get(k, k): v for k, v in r["close"]["gas"].items()}
    background = r["close"].get("background", {})
    for name in CLOSE_ORDER:
        p = phases.get(name)
        if p is None:
            if name in background:  # made on a thread of its own, beside the main sequence
                rows[name] = (background[name], 0, 0, "in the background, beside commitBook")
            continue
        g = sum(gas.get(f, [0, 0])[1] for f in GAS_OF.get(name, []))
        txs = sum(gas.get(f, [0, 0])[0] for f in GAS_OF.get(name, []))
        top = ", ".join(
            f"{k} {v:,}" for k, v in Counter(p["rpc"]).most_common(2) if not k.startswith("<")
        )
        rows[name] = (p["seconds"], rpc_total(p["rpc"]), g, (f"{txs} tx; " if txs else "") + top)
    c = r["close"]
    settle_end = phases["settle"]["end_s"] if "settle" in phases else float("nan")
    rows["= T to settlement confirmed"] = (settle_end, 0, 0, "")
    rows["= whole close"] = (
        c["total_s"],
        rpc_total(c["rpc_total"]),
        sum(v[1] for v in gas.values()),
        f"{c['claimed']:,} claims",
    )
    v = r["verify"]
    rows["verify (--service --rpc)"] = (
        v["seconds"],
        rpc_total(v["rpc"]),
        0,
        f"exit {v['status']}; " + " ".join(v["tail"])[:80],
    )
    return rows


def render(results: list[dict[str, Any]], markdown: bool) -> str:
    per = [rows_of(r) for r in results]
    names = list(per[-1])
    head = ["phase"]
    for r in results:
        head += [f"N={r['bids']:,}: time", "us/bid", "RPC calls", "gas"]
    if len(results) > 1:
        head += [f"per-bid ratio {results[-1]['bids']:,}/{results[0]['bids']:,}", "RPC ratio"]
    head += ["notes (largest N)"]
    body = []
    for name in names:
        row = [name]
        for r, rows in zip(results, per, strict=True):
            s, calls, gas, _ = rows.get(name, (float("nan"), 0, 0, ""))
            row += [
                f"{s:.2f} s" if s >= 1 else f"{s * 1000:.0f} ms",
                f"{s / r['bids'] * 1e6:,.0f}",
                f"{calls:,}",
                f"{gas:,}" if gas else "",
            ]
        if len(results) > 1:
            a, b = per[0].get(name), per[-1].get(name)
            if a and b and a[0] > 0:
                ratio = (b[0] / results[-1]["bids"]) / (a[0] / results[0]["bids"])
                rr = (
                    (b[1] / results[-1]["bids"]) / (a[1] / results[0]["bids"])
                    if a[1]
                    else float("nan")
                )
                row += [f"{ratio:.2f}x", f"{rr:.2f}x" if a[1] else ""]
            else:
                row += ["", ""]
        row.append(per[-1].get(name, (0, 0, 0, ""))[3])
        body.append(row)
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [
            fmt.format(*head),
            "  ".join("-" * w for w in widths),
            *(fmt.format(*row).rstrip() for row in body),
        ]
    )


def facts(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        svc = r.get("service_rss_mib", {})
        c = r["close"]
        lines.append(
            f"N={r['bids']:,}: peak RSS service {max(svc.values(), default=0):,.0f} MiB per "
            f"process ({sum(svc.values()):,.0f} MiB over its {len(svc)} processes), keeper "
            f"{c['peak_rss_mib']:,.0f} MiB (its validation workers "
            f"{c['children_peak_rss_mib']:,.0f} MiB), "
            f"verify {r['verify']['rss_mib']:,.0f} MiB; setup (not measured) "
            f"{r['setup_s']:.0f} s, of which sealing {r['seal_s']:.0f} s and the {r['bids']:,} "
            f"requests {r['requests_s']:.0f} s; keeper steps done: {', '.join(c['done'])}; "
            f"mining {r.get('mining', 'auto')}"
            + (
                f" ({r['blocks_mined']} blocks in the close; the fullest held "
                f"{max(p for p, _ in r['mined'])})"
                if r.get("mined")
                else ""
            )
            + f"; claim_batch {r.get('claim_batch', 64)}, claim_depth {r.get('claim_depth', 1)}, "
            f"service_batch {r.get('service_batch', 'all')}; load average at the end {r['load']}."
        )
    return "\n".join(lines)


class Miner:
    """Block building for the close, automine off (the pool polled every 5 ms).

    ``eager``: a block of everything pending as soon as the last block is done. ``burst``:
    a block of everything pending once no transaction has arrived for ``quiet`` seconds
    (at most ``slot`` seconds after the first one was seen), as a builder with a ``slot``
    block time packs a sender's burst of pipelined transactions. anvil takes no transaction
    while it mines and recomputes its whole state root per block (~1.2 s at 100k requests,
    whatever the block holds), so a block per transaction measures anvil, not the keeper.
    """

    def __init__(self, url: str, quiet: float = 0.0, slot: float = 0.0) -> None:
        import threading

        self.url, self.quiet, self.slot, self.blocks = url, quiet, slot, 0
        self.mined: list[tuple[int, float]] = []  # (transactions pending, seconds) per block
        self._stop = threading.Event()
        rpc(url, "evm_setAutomine", False)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen, first_at, changed_at = 0, 0.0, 0.0
        while not self._stop.is_set():
            pending = int(rpc(self.url, "txpool_status")["pending"], 16)
            now = time.perf_counter()
            if pending != seen:
                first_at = now if seen == 0 else first_at
                seen, changed_at = pending, now
            if pending and (now - changed_at >= self.quiet or now - first_at >= self.slot):
                rpc(self.url, "evm_mine")
                self.mined.append((pending, time.perf_counter() - now))
                self.blocks, seen = self.blocks + 1, 0
            else:
                self._stop.wait(0.005)

    def stop(self) -> int:
        """Stop, turn automine back on; the blocks it mined."""
        self._stop.set()
        self._thread.join(30)
        rpc(self.url, "evm_setAutomine", True)
        return self.blocks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/month", description=__doc__.split("\n")[0])
    p.add_argument("--bids", default="1000", help="N, or a comma list for the curve")
    p.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--poll", type=float, default=0.01, help="keeper receipt poll interval (s)")
    p.add_argument(
        "--mining",
        choices=["auto", "eager", "burst"],
        default="auto",
        help="auto: a block per transaction (anvil's automine); during the close, automine "
        "off and eager: a block of everything pending as soon as the node is free; burst: a "
        "block of everything pending once no transaction arrived for --quiet s, at most --slot "
        "s after the first (anvil recomputes its whole state root per block: ~1.2 s at 100k "
        "requests, and takes no transaction while it mines)",
    )
    p.add_argument("--quiet", type=float, default=0.15, help="--mining burst: quiet gap (s)")
    p.add_argument("--slot", type=float, default=2.0, help="--mining burst: block time (s)")
    p.add_argument(
        "--skip-claims-from",
        type=int,
        default=10**9,
        help="from this N on, leave the pushed claims and the queue service out of the close "
        "(on anvil each block then costs seconds: its state root is recomputed in full)",
    )
    p.add_argument(
        "--intake-only",
        action="store_true",
        help="stop after the intake (to profile the service); prints its figures alone",
    )
    p.add_argument("--claim-batch", type=int, default=KeeperConfig.claim_batch)
    p.add_argument("--claim-depth", type=int, default=KeeperConfig.claim_depth)
    p.add_argument("--service-batch", type=int, default=KeeperConfig.service_batch)
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="write every figure as JSON")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    p.add_argument(
        "--from-json",
        default=None,
        help="comma list of --json files of earlier runs: print (and --markdown) their table",
    )
    args = p.parse_args(argv)
    if args.from_json:
        saved = [r for f in args.from_json.split(",") for r in json.loads(Path(f).read_text())]
        saved.sort(key=lambda r: r["bids"])
        print(render(saved, markdown=False) + "\n\n" + facts(saved))
        if args.markdown:
            args.markdown.write_text(render(saved, markdown=True) + "\n\n" + facts(saved) + "\n")
        return 0
    if not ANVIL.exists():
        raise SystemExit(f"anvil not found at {ANVIL} (scripts/bootstrap)")
    sizes = sorted(int(x.replace("_", "")) for x in args.bids.split(","))
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = []
    for n in sizes:
        tmp = Path(tempfile.mkdtemp(prefix=f"qev-month-{n}-"))
        log(f"N={n}: work directory {tmp}")
        r = month(n, args, tmp)
        r.update(
            mining=args.mining
            + (f" (quiet {args.quiet:g} s, slot {args.slot:g} s)" * (args.mining == "burst")),
            claim_batch=args.claim_batch,
            claim_depth=args.claim_depth,
            service_batch=args.service_batch,
        )
        r["load"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        results.append(r)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        if not args.keep:
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
    if args.intake_only:
        for r in results:
            print(f"N={r['bids']}: intake {json.dumps(r['intake'])}")
        return 0
    text = render(results, markdown=False)
    print(text)
    print()
    print(facts(results))
    if args.markdown:
        args.markdown.write_text(
            f"Measured {started} with `benchmarks/month {' '.join(argv or sys.argv[1:])}` "
            f"on {os.cpu_count()} shared cores (noisy).\n\n"
            + render(results, markdown=True)
            + "\n\n"
            + facts(results)
            + "\n"
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"the orchestrator's own peak RSS {own:,.0f} MiB (sealing, the load generator)")
    failed = [r["bids"] for r in results if r["verify"]["status"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
