"""The keeper's whole close of one auction, timed phase by phase (a child of ``benchmarks/month``).

``python -m benchmarks.month_close PARAMS.json OUT.json``: builds a ``Keeper`` as
``keeper.factory`` would (two local-key lanes, the store, the chain through the counting
proxy) and runs ``close_auction``. The keeper's code is not changed: its steps are timed by
wrapping its methods and the functions ``keeper.jobs`` calls (freeze, commitBook, snapshot
reads, open+validate, clear, trees, persist, settle, claims, queue service, reveal); at each
boundary the proxy's RPC counters are read, so each phase gets its own calls. Gas per phase
comes from the receipts of the blocks the close mined (read afterwards, not timed).
"""

from __future__ import annotations

import functools
import json
import resource
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import function_abi_to_4byte_selector
from web3 import Web3

import keeper.jobs as jobs
from clearing.eip712 import Eip712Domain
from clearing.engine import Mode
from clearing.hexcodec import parse_address
from clearing.store import open_store
from keeper.chain import Chain
from keeper.factory import http_web3
from keeper.jobs import Keeper, KeeperConfig
from keeper.senders import make_sender

# the close's RPC-bound glue (key check, block lookups, is_settled) is "other"
OTHER = "other (key check, block lookups)"


class Phases:
    """Wall time and RPC calls per named phase; ``mark(name)`` ends the current one."""

    def __init__(self, count_url: str) -> None:
        self.count_url = count_url
        self.seconds: dict[str, float] = {}
        self.rpc: dict[str, Counter[str]] = {}
        self.order: list[str] = []
        self.ends: dict[str, float] = {}
        self.current = OTHER
        self.background: dict[str, float] = {}  # seconds of calls made off the main thread
        self.t0 = time.perf_counter()
        self.start = self.t0
        self.counts = self._counts()

    def _counts(self) -> Counter[str]:
        with urllib.request.urlopen(self.count_url, timeout=30) as r:
            return Counter(json.loads(r.read()))

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        counts = self._counts()
        cur = self.current
        if cur not in self.seconds:
            self.order.append(cur)
            self.seconds[cur] = 0.0
            self.rpc[cur] = Counter()
        self.seconds[cur] += now - self.t0
        self.rpc[cur].update(counts - self.counts)
        self.ends[cur] = now - self.start
        self.current, self.t0 = name, time.perf_counter()
        self.counts = self._counts()  # the read itself is not forwarded, so not counted


def wrap(owner: Any, attr: str, phases: Phases, name: str, after: str = OTHER) -> None:
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        phases.mark(name)
        try:
            return fn(*args, **kwargs)
        finally:
            phases.mark(after)

    setattr(owner, attr, timed)


def wrap_background(owner: Any, attr: str, phases: Phases, name: str) -> None:
    """Like ``wrap``, but a call on another thread than the main one (the keeper's snapshot
    reads, made beside ``commitBook``) is only timed: it is no phase of the main thread's
    sequence, and its RPC calls count in the phase it overlaps."""
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            phases.mark(name)
            try:
                return fn(*args, **kwargs)
            finally:
                phases.mark(OTHER)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases.background[name] = phases.background.get(name, 0.0) + time.perf_counter() - t0

    setattr(owner, attr, timed)


def gas_by_function(w3: Any, chain: Chain, first: int, last: int) -> dict[str, list[int]]:
    """``{function: [transactions, gas used]}`` of the blocks ``first..last``."""
    names: dict[str, str] = {}
    for contract in (chain.settlement, chain.vault):
        for item in contract.abi:
            if item.get("type") == "function":  # tuple arguments need the canonical types
                names["0x" + function_abi_to_4byte_selector(item).hex()] = item["name"]
    out: dict[str, list[int]] = {}
    for number in range(first, last + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            data = tx["input"]
            data = data.hex() if isinstance(data, bytes) else str(data)
            data = data if data.startswith("0x") else "0x" + data
            name = names.get(data[:10], data[:10])
            receipt = w3.eth.get_transaction_receipt(tx["hash"])
            entry = out.setdefault(name, [0, 0])
            entry[0] += 1
            entry[1] += int(receipt["gasUsed"])
    return out


def main() -> int:
    params = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    w3 = http_web3(params["rpc"], 120)  # the keeper's own provider (eth_chainId cached)
    direct = Web3(Web3.HTTPProvider(params["direct_rpc"], request_kwargs={"timeout": 120}))
    chain = Chain(w3, params["vault"], params["settlement"])
    store = open_store(params["store_url"])
    lanes = [
        make_sender(w3, Account.from_key(bytes.fromhex(params[k])), poll_interval=params["poll"])
        for k in ("urgent_key", "house_key")
    ]
    domain = Eip712Domain(
        "QEVSettlement", "1", params["chain_id"], parse_address(chain.settlement.address)
    )
    config = KeeperConfig(
        bytes.fromhex(params["master"]),
        domain,
        Mode.PAY_AS_BID,
        liquidity_bps=params["liquidity_bps"],
        workers=params["workers"],
        claim_batch=params.get("claim_batch", KeeperConfig.claim_batch),
        claim_depth=params.get("claim_depth", KeeperConfig.claim_depth),
        service_batch=params.get("service_batch", KeeperConfig.service_batch),
    )
    keeper = Keeper(
        chain,
        store,
        lanes[0],
        lanes[1],
        config,
        log=lambda m: print(f"  keeper: {m}", file=sys.stderr, flush=True),
        service_clock=lambda: chain.latest_block()[1],
    )
    if params.get("skip_chain_bulk"):
        # anvil recomputes its whole state root per block (~2 s and ~60 MB of history per
        # block at 100k requests): the claims and the queue service are left out of the run
        def skipped(name: str) -> Any:
            def step(self: Keeper, *args: Any) -> None:
                self._step(args[-1], name, False)

            return step

        Keeper._push_claims = skipped("claims")  # type: ignore[method-assign]
        Keeper._service_queue = skipped("service")  # type: ignore[method-assign]
    first_block = int(direct.eth.block_number) + 1
    phases = Phases(params["count_url"])
    wrap(Keeper, "_frozen_book", phases, "freeze")
    wrap(Keeper, "_commit_book", phases, "commitBook")
    wrap_background(Chain, "snapshot", phases, "snapshot reads")
    wrap(jobs, "validate_book_parallel", phases, "open + validate")
    wrap(jobs, "clear", phases, "clear")
    wrap(jobs, "allocation_tree", phases, "trees", after="persist (documents, store)")
    wrap(Keeper, "_settle", phases, "settle")
    wrap(Keeper, "_push_claims", phases, "push claims")
    wrap(Keeper, "_service_queue", phases, "service queue")
    wrap(Keeper, "_reveal", phases, "reveal")
    steps: list[tuple[str, bool, float]] = []
    t0 = time.perf_counter()
    report = keeper.close_auction(
        params["auction_id"],
        on_step=lambda name, done: steps.append((name, done, time.perf_counter() - t0)),
    )
    phases.mark(OTHER)
    total = time.perf_counter() - t0
    last_block = int(direct.eth.block_number)
    gas = gas_by_function(
        direct, Chain(direct, params["vault"], params["settlement"]), first_block, last_block
    )
    store.close()
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out.write_text(
        json.dumps(
            {
                "total_s": total,
                "steps": steps,
                "done": report.done,
                "skipped": report.skipped,
                "claimed": report.claimed,
                "serviced_shares": str(report.serviced_shares),
                "report_gas": report.gas,
                "phases": [
                    {
                        "name": n,
                        "seconds": phases.seconds[n],
                        "rpc": dict(phases.rpc[n]),
                        "end_s": phases.ends[n],
                    }
                    for n in phases.order
                ],
                "background": phases.background,
                "gas": gas,
                "peak_rss_mib": self_rss,
                "children_peak_rss_mib": child_rss,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
