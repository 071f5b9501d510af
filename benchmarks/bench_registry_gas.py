"""Gas of the ``registry`` target at scale: the keeper's postBids and reorder batches on anvil.

``.venv/bin/python -m benchmarks.bench_registry_gas [--bids 10000] [--post-gas 12000000] ...``

On a fresh anvil (npm ``@foundry-rs/anvil``, loopback, automine): the vault model with its
draft-only views (``hideModelViews``), the draft registry model (1% admin fee) and this
repository's settlement contract for the key. N redemption requests (controllers hold at most
50 each, the real vault's cap) are sent from anvil's unlocked account. N sealed bids
go straight into a SQLite store (rates 10..3000 bp; 70% on the whole request, 20% on half of it,
10% on more than is pending), the keeper commits the auction key, anvil moves past T, and the
registry keeper's close runs as in production: rule 0 at the snapshot, ``postBids`` in batches
bounded by ``--post-bids`` and ``--post-gas`` (estimated), ``settleAuction``, the vault's
``reorderRedemptions`` in batches bounded by ``--reorder-bids`` and ``--reorder-gas``, the queue
serviced by walking it, the key revealed.

Prints (and with ``--out`` writes as JSON): the batches of each kind with the bids and gas of
each (gas used by the mined transaction), per-bid gas, the totals for N bids, and each step's
wall time. Gas is the model's: the draft's ``redemption(id)`` copies every request it walks to
memory where this model reads two fields, so the draft's postBids may cost more per bid.

Measured 2026-12-01 (N = 10,000, default caps 200 bids / 12M gas per postBids, 400 / 12M per
reorder, 300 requests / 12M per service; anvil, 32M block gas limit):

| call | batches | bids per batch (median) | gas per batch (median) | gas per bid | total gas |
|---|---|---|---|---|---|
| postBids | 670 | 15 (5..18) | 11,549,966 | 771,018 | 7,710,177,081 |
| reorderRedemptions | 59 | 172 (5..193) | 11,904,241 | 68,936 | 689,355,997 |

serviceRedemptions 280,789,221 gas; the whole close 8.68e9 gas, 24.6 min on anvil (rule 0's
20,000 reads 8 min, posting 12.6 min). postBids is dominated by the registry's per-bid
``redemption(id)``, whose walk over up to 150 earlier requests (cold storage: about 630k gas)
computes a ``sharesAhead`` the registry does not use; at 300 requests the same bid costs 231k.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from clearing.bidding import seal_bid
from clearing.eip712 import Eip712Domain
from clearing.hexcodec import parse_address, to_checksum_address
from clearing.model import Bid
from clearing.sealing import derive_auction_secret, public_key_of
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import PutBid
from keeper.chain import Chain
from keeper.deploy import deploy_stack, transact
from keeper.duties.registry import RegistryBatches, RegistryKeeper
from keeper.jobs import KeeperConfig
from keeper.senders import make_sender
from keeper.targets.registry import Registry, deploy_registry

REPO = Path(__file__).resolve().parent.parent
ANVIL = REPO / "node_modules" / ".bin" / "anvil"
E18 = 10**18
W = 30 * 86_400
PER_CONTROLLER = 50  # the real vault's MAX_ACTIVE_REDEMPTIONS_COUNT
BLOCK_GAS_LIMIT = 32_000_000  # Arbitrum One's
SETUP_GAS_LIMIT = 4_000_000_000
SETUP_CHUNK = 1_000  # requests mined per setup block


def _key(label: str) -> bytes:
    return hashlib.sha256(b"qev-bench-registry:" + label.encode()).digest()


def _log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Anvil:
    """One anvil process on a free loopback port, and raw JSON-RPC."""

    def __init__(self) -> None:
        if not ANVIL.exists() or shutil.which("node") is None:
            raise SystemExit("anvil (npm @foundry-rs/anvil) is not installed: run `npm ci`")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                str(ANVIL),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--gas-limit",
                "32000000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.rpc("eth_chainId")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.05)

    def _post(self, body: Any) -> Any:
        request = urllib.request.Request(
            self.url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def rpc(self, method: str, *params: Any) -> Any:
        answer = self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class GasRecorder:
    """A sender that records (label, gas used) of every transaction it sends."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[tuple[str, int]] = []

    @property
    def address(self) -> str:
        return str(self.inner.address)

    def simulate(self, fn: Any, *, block: int | str) -> bytes:
        return bytes(self.inner.simulate(fn, block=block))

    def send(self, fn: Any, *, label: str) -> Any:
        receipt = self.inner.send(fn, label=label)
        self.sent.append((label, int(receipt.gas_used)))
        return receipt


def _batch_size(label: str) -> int:
    """Bids in a batch from the keeper's label (``bids a..b`` or ``reorderRedemptions(T, n)``)."""
    if " bids " in label:
        a, b = label.rsplit(" bids ", 1)[1].split("..")
        return int(b) - int(a) + 1
    return int(label.rsplit(", ", 1)[1].rstrip(")"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.bids
    rng = random.Random(args.seed)  # benchmark data, not keys
    anvil = Anvil()
    try:
        w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 120}))
        admin = w3.eth.accounts[0]
        urgent = Account.from_key(_key("urgent"))
        house = Account.from_key(_key("housekeeping"))
        for lane in (urgent, house):
            anvil.rpc("anvil_setBalance", lane.address, hex(10**22))
        service = Signer(_key("service"))
        dep = deploy_stack(
            w3,
            admin,
            [urgent.address, house.address],
            receipt_signer=to_checksum_address(service.address),
        )
        registry_address = deploy_registry(
            w3, admin, dep.vault, [urgent.address, house.address], admin_fee_rate=100
        )
        chain = Chain(w3, dep.vault, dep.settlement)
        genesis = chain.genesis()
        t = genesis + W
        vault, usdai = chain.vault, chain.usdai

        # --- N requests: controllers hold PER_CONTROLLER each ------------------------------
        t0 = time.perf_counter()
        holders = [Signer(_key(f"holder-{i}")) for i in range(-(-n // PER_CONTROLLER))]
        sizes = [rng.randint(20, 2_000) * E18 + rng.randint(0, 10**6) for _ in range(n)]
        total = sum(sizes)
        transact(w3, usdai.functions.mint(admin, 2 * total), admin)
        transact(w3, usdai.functions.approve(vault.address, 2 * total), admin)
        transact(w3, vault.functions.deposit(2 * total, admin), admin)
        # setup only: many requests to a block (the keeper later runs under a 32M gas limit)
        anvil.rpc("evm_setBlockGasLimit", hex(SETUP_GAS_LIMIT))
        anvil.rpc("evm_setAutomine", False)
        for start in range(0, n, SETUP_CHUNK):
            for i in range(start, min(n, start + SETUP_CHUNK)):
                controller = to_checksum_address(holders[i // PER_CONTROLLER].address)
                fn = vault.functions.requestRedeem(sizes[i], controller, admin)
                tx = {
                    "from": admin,
                    "to": vault.address,
                    "data": fn._encode_transaction_data(),
                    "gas": hex(400_000),
                }
                anvil.rpc("eth_sendTransaction", tx)
            anvil.rpc("evm_mine")
        anvil.rpc("evm_setAutomine", True)
        anvil.rpc("evm_setBlockGasLimit", hex(BLOCK_GAS_LIMIT))
        deadline = time.monotonic() + 600
        while chain.queue_info().index < n:  # the node answers before it has mined them all
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {chain.queue_info().index} of {n} requests mined")
            time.sleep(0.1)
        held = int(usdai.functions.balanceOf(vault.address).call())
        deployed = held * 80 // 100  # most USDai works elsewhere: servicing is liquidity-bound
        transact(w3, usdai.functions.burn(vault.address, deployed), admin)
        transact(w3, vault.functions.setExternalAssets(deployed), admin)
        _log(f"{n} requests by {len(holders)} controllers in {time.perf_counter() - t0:.0f} s")

        # --- the keeper commits the key; N sealed bids go into the store ------------------
        tmp = Path(tempfile.mkdtemp(prefix="qev-bench-registry-"))
        store = open_store(f"sqlite:///{tmp / 'qev.db'}")
        domain = Eip712Domain(
            "QEVRegistry", "1.0", int(w3.eth.chain_id), parse_address(registry_address)
        )
        master = _key("master")
        keeper_chain = Chain(w3, dep.vault, dep.settlement, genesis=genesis)
        urgent_lane = GasRecorder(make_sender(w3, urgent, poll_interval=0.005, deadline=120))
        house_lane = GasRecorder(make_sender(w3, house, poll_interval=0.005, deadline=120))
        keeper = RegistryKeeper(
            keeper_chain,
            store,
            urgent_lane,
            house_lane,
            KeeperConfig(master, domain, workers=args.workers),
            registry=Registry(keeper_chain, registry_address),
            batches=RegistryBatches(
                post_bids=args.post_bids,
                post_gas=args.post_gas,
                reorder_bids=args.reorder_bids,
                reorder_gas=args.reorder_gas,
            ),
            service_clock=lambda: keeper_chain.latest_block()[1],
        )
        keeper.open_auction(t)
        pk = public_key_of(derive_auction_secret(master, t))
        t0 = time.perf_counter()
        ops = []
        for i, size in enumerate(sizes):
            rid = i + 1
            kind = rng.random()
            shares = size if kind < 0.7 else size // 2 if kind < 0.9 else size + rng.randint(1, E18)
            bp = rng.randint(10, 3_000)
            holder = holders[i // PER_CONTROLLER]
            env = seal_bid(holder, Bid(t, rid, shares, bp, 0), domain, pk)
            ops.append(
                PutBid(
                    t,
                    rid,
                    env.controller,
                    env.ciphertext,
                    env.ciphertext_hash,
                    env.signature,
                    t - 3_600,
                )
            )
        for start in range(0, n, 1_000):
            store.apply(ops[start : start + 1_000])
        _log(f"{n} bids sealed and stored in {time.perf_counter() - t0:.0f} s")

        # --- past T: the keeper's close ----------------------------------------------------
        transact(w3, vault.functions.hideModelViews(True), admin)  # the draft vault's views only
        anvil.rpc("evm_setNextBlockTimestamp", t + 60)
        anvil.rpc("evm_mine")
        steps: dict[str, float] = {}
        last = [time.perf_counter()]

        def on_step(name: str, done: bool) -> None:
            now = time.perf_counter()
            steps[name] = round(now - last[0], 1)
            last[0] = now
            _log(f"step {name} ({'done' if done else 'skipped'}) in {steps[name]} s")

        t0 = time.perf_counter()
        report = keeper.close_auction(t, on_step=on_step)
        close_s = time.perf_counter() - t0
        assert report.done[-1] == "reveal", report.done
        posts = [
            (_batch_size(lbl), gas)
            for lbl, gas in urgent_lane.sent
            if lbl.startswith("registry.postBids")
        ]
        reorders = [
            (_batch_size(lbl), gas)
            for lbl, gas in urgent_lane.sent
            if lbl.startswith("vault.reorder")
        ]
        posted = sum(b for b, _ in posts)
        state = keeper.registry.auction(t)
        assert state.bid_count == state.processed == posted, (state, posted)
        store.close()
    finally:
        anvil.close()

    def figures(batches: list[tuple[int, int]]) -> dict[str, Any]:
        gas = [g for _, g in batches]
        bids = [b for b, _ in batches]
        return {
            "batches": len(batches),
            "bids_per_batch": {
                "min": min(bids),
                "median": statistics.median(bids),
                "max": max(bids),
            },
            "gas_per_batch": {"min": min(gas), "median": statistics.median(gas), "max": max(gas)},
            "gas_per_bid": round(sum(gas) / sum(bids)),
            "total_gas": sum(gas),
        }

    return {
        "bids": n,
        "valid_bids_posted": posted,
        "post_bids_cap": args.post_bids,
        "post_gas_cap": args.post_gas,
        "reorder_bids_cap": args.reorder_bids,
        "reorder_gas_cap": args.reorder_gas,
        "postBids": figures(posts),
        "reorderRedemptions": figures(reorders),
        "other_gas": {
            k: v for k, v in report.gas.items() if k not in ("postBids", "reorderRedemptions")
        },
        "total_gas": sum(report.gas.values()),
        "close_seconds": round(close_s, 1),
        "step_seconds": steps,
    }


def _table(r: dict[str, Any]) -> str:
    lines = [
        f"registry target, {r['bids']:,} sealed bids "
        f"({r['valid_bids_posted']:,} valid, all posted)",
        f"caps: postBids {r['post_bids_cap']} bids / {r['post_gas_cap']:,} gas, "
        f"reorder {r['reorder_bids_cap']} bids / {r['reorder_gas_cap']:,} gas",
        "",
        "| call | batches | bids/batch (min/median/max) | gas/batch (min/median/max) "
        "| gas/bid | total gas |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("postBids", "reorderRedemptions"):
        f = r[name]
        b, g = f["bids_per_batch"], f["gas_per_batch"]
        lines.append(
            f"| {name} | {f['batches']} | {b['min']}/{b['median']}/{b['max']} | "
            f"{g['min']:,}/{g['median']:,.0f}/{g['max']:,} | {f['gas_per_bid']:,} "
            f"| {f['total_gas']:,} |"
        )
    lines += [
        "",
        f"other transactions: {r['other_gas']}",
        f"all transactions of the close: {r['total_gas']:,} gas; close {r['close_seconds']} s "
        f"(steps {r['step_seconds']})",
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bids", type=int, default=10_000)
    p.add_argument("--post-bids", type=int, default=RegistryBatches.post_bids)
    p.add_argument("--post-gas", type=int, default=RegistryBatches.post_gas)
    p.add_argument("--reorder-bids", type=int, default=RegistryBatches.reorder_bids)
    p.add_argument("--reorder-gas", type=int, default=RegistryBatches.reorder_gas)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=20_261_201)
    p.add_argument("--out", type=Path, default=None, help="write the figures here (JSON)")
    args = p.parse_args()
    result = run(args)
    print(_table(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
