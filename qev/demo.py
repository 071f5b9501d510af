"""``qev demo``: one whole month on embedded defaults, end to end.

In-process EVM (py-evm), SQLite in a temp dir, the real service on uvicorn on a free
loopback port, contracts deployed from the committed artifacts, holders with deposits and
redemption requests over two windows, sealed bids over HTTP through the SDK (some replaced,
some cancelled, some invalid), time moved to T, the keeper's full close, claims, queue
servicing, key reveal, and ``qev verify`` passing.
"""

from __future__ import annotations

import hashlib
import random
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from eth_account import Account
from pydantic import SecretStr
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import Wei

from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.calendar import REDEMPTION_WINDOW
from clearing.eip712 import Eip712Domain
from clearing.engine import Mode
from clearing.hexcodec import parse_address, to_checksum_address
from clearing.keyfiles import load_or_create_key
from clearing.model import PLAINTEXT_LENGTH, Bid, Envelope, SignedBid
from clearing.sealing import bid_info, seal
from clearing.signing import Signer
from clearing.store import open_store
from keeper.chain import Chain
from keeper.deploy import deploy_stack, transact
from keeper.jobs import Keeper, KeeperConfig, KeeperStateError
from keeper.redemptions import Web3Redemptions
from keeper.senders import make_sender
from keeper.verify import DOCUMENT_FILES, fetch_documents, verify_documents
from qev.sdk import BidderClient, ServiceProblemError

E18 = 10**18
W = REDEMPTION_WINDOW
# The service's clock runs this far behind the chain, as a real server's may: a request
# made on-chain just after T can still get a bid in, and rule 0 excludes it (not_matured).
SERVICE_LAG = 120
MIN_FILL = 25 * E18  # the operator's smallest partial fill (sUSDai)


class LockedTesterProvider(EthereumTesterProvider):
    """py-evm is not thread-safe: the service thread and the main thread share one lock."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()

    def make_request(self, method: Any, params: Any) -> Any:
        with self._lock:
            return super().make_request(method, params)


@dataclass
class DemoResult:
    """What the demo produced (for tests and the summary)."""

    auction_id: int
    summary: dict[str, Any]
    verified: bool
    out_dir: Path | None


def _key(label: str) -> bytes:
    return hashlib.sha256(b"qev-demo:" + label.encode()).digest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Progress:
    """Timestamped progress lines."""

    def __init__(self, quiet: bool) -> None:
        self.t0, self.quiet = time.perf_counter(), quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:5.1f}s] {message}", flush=True)


def run_demo(
    holders: int = 200,
    out_dir: Path | None = None,
    mode: str = "pay_as_bid",
    seed: int = 7,
    quiet: bool = False,
    *,
    target: str = "merkle",
) -> DemoResult:
    """Run the month; returns the summary and whether the independent verification passed.

    ``target = "registry"`` runs the month against USD.AI's draft QEV registry instead
    (``run_registry_demo``; ``mode`` plays no part there: every valid bid is posted).
    """
    if target == "registry":
        return run_registry_demo(holders=holders, out_dir=out_dir, seed=seed, quiet=quiet)
    if target != "merkle":
        raise ValueError(f"unknown target {target!r}: merkle or registry")
    say = Progress(quiet)
    rng = random.Random(seed)  # noqa: S311 - demo data, not keys
    provider = LockedTesterProvider()
    w3 = Web3(provider)
    tester: Any = provider.ethereum_tester
    admin = w3.eth.accounts[0]
    keys = tester.backend.account_keys
    urgent_acct = Account.from_key(keys[1].to_bytes())
    house_acct = Account.from_key(keys[2].to_bytes())
    tmp = Path(tempfile.mkdtemp(prefix="qev-demo-"))
    service_address = Signer(load_or_create_key(tmp / "service.key")).address
    dep = deploy_stack(
        w3,
        admin,
        [urgent_acct.address, house_acct.address],
        admin_fee_bps=100,
        fee_recipient=admin,
        receipt_signer=to_checksum_address(service_address),
    )
    chain = Chain(w3, dep.vault, dep.settlement)
    genesis = chain.genesis()
    auction_id = genesis + 2 * W
    say(
        f"contracts deployed on py-evm (chain {w3.eth.chain_id}); "
        f"genesis {genesis}, auction T = {auction_id}"
    )

    # --- holders: deposits and redemption requests in two windows -----------------------
    vault, usdai = chain.vault, chain.usdai
    signers = [Signer(_key(f"holder-{i}")) for i in range(holders)]
    sizes = [rng.randint(20, 2_000) * E18 for _ in signers]
    total = sum(sizes)
    transact(w3, usdai.functions.mint(admin, 2 * total), admin)
    transact(w3, usdai.functions.approve(vault.address, 2 * total), admin)
    transact(w3, vault.functions.deposit(2 * total, admin), admin)
    first_window = holders * 3 // 5
    rids: list[int] = []
    for i, (s, size) in enumerate(zip(signers, sizes, strict=True)):
        if i == first_window:
            tester.time_travel(genesis + W + 3600)  # into the auction's own window
        receipt = transact(
            w3, vault.functions.requestRedeem(size, to_checksum_address(s.address), admin), admin
        )
        rids.append(int(receipt["logs"][-1]["topics"][3].hex(), 16))
    # most USDai works in strategies (NAV unchanged), then a month of yield
    held = usdai.functions.balanceOf(vault.address).call()
    deployed = held * 88 // 100
    transact(w3, usdai.functions.burn(vault.address, deployed), admin)
    transact(w3, vault.functions.setExternalAssets(deployed * 1_008 // 1_000), admin)
    say(
        f"{holders} holders requested {total // E18:,} sUSDai over two windows; "
        f"free liquidity {chain.free_liquidity() // E18:,} USDai, "
        f"share price {chain.share_price() / E18:.4f}"
    )

    # --- keeper opens the auction; the service takes sealed bids ------------------------
    store_url = f"sqlite:///{tmp / 'qev.db'}"
    keeper_store = open_store(store_url)
    master = _key("keeper-master-secret")
    urgent, house = make_sender(w3, urgent_acct), make_sender(w3, house_acct)
    settings = ServiceSettings(
        store_url=SecretStr(store_url),
        chain_id=w3.eth.chain_id,
        settlement=dep.settlement,
        genesis=genesis,
        service_key_file=tmp / "service.key",
        controller_rate=1e6,
        controller_burst=10**6,
        client_rate=1e6,
        client_burst=10**6,
    )
    domain = Eip712Domain(
        settings.domain_name(),
        settings.domain_version(),
        w3.eth.chain_id,
        parse_address(dep.settlement),
    )

    def chain_clock() -> int:
        return int(w3.eth.get_block("latest")["timestamp"])

    def service_clock() -> int:
        return chain_clock() - SERVICE_LAG

    keeper = Keeper(
        chain,
        keeper_store,
        urgent,
        house,
        KeeperConfig(master, domain, Mode(mode), min_fill=MIN_FILL, liquidity_bps=6_000, workers=2),
        log=say,
        service_clock=service_clock,
    )
    keeper.open_auction(auction_id)

    app = build_app(settings, Web3Redemptions(chain), clock=service_clock)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    say(
        f"service on {url} (SQLite {tmp / 'qev.db'}), receipts signed by "
        f"{to_checksum_address(service_address)} (registered on-chain as receiptSigner)"
    )

    clients: list[BidderClient] = []
    counts = {"sent": 0, "replaced": 0, "cancelled": 0, "refused": 0, "invalid_inside": 0}
    try:
        # every holder pins the receipt signer and the auction key from the chain
        clients = [BidderClient(url, s, chain=chain) for s in signers]
        auction = clients[0].auction()
        live: dict[int, Envelope] = {}
        for i, (c, rid) in enumerate(zip(clients, rids, strict=True)):
            bp = rng.choice(
                [rng.randint(10, 300), rng.randint(300, 1_200), rng.randint(1_200, 3_000)]
            )
            shares = sizes[i] if i % 5 else sizes[i] // 2
            if (
                i % 29 == 13
            ):  # wrong size: zero shares (excluded at close, the service can't see it)
                shares = 0
                counts["invalid_inside"] += 1
            if i % 31 == 7:  # out-of-range discount
                bp = 5
                counts["invalid_inside"] += 1
            done = c.bid(rid, shares, bp)
            counts["sent"] += 1
            live[rid] = done.envelope
            if i % 10 == 3:  # changed their mind
                live[rid] = c.bid(rid, shares, min(bp + 150, 10_000)).envelope
                counts["replaced"] += 1
            if i % 23 == 5:  # cancelled with a signed CancelBid
                c.cancel(auction_id, rid, live.pop(rid).ciphertext_hash)
                counts["cancelled"] += 1
        # a holder bids on someone else's request: refused at intake (not_controller)
        try:
            clients[0].bid(rids[1], E18, 500)
        except ServiceProblemError as e:
            counts["refused"] += 1
            assert e.code == "not_controller"
        # an inner bid signed by the wrong key: the service cannot see it; rule 0 excludes it
        forger, victim = signers[2], signers[3]
        bid = Bid(auction_id, rids[3], sizes[3], 900, 0)
        inner = SignedBid(bid, forger.sign_digest(bid.digest(domain)))
        ct = seal(
            inner.encode(),
            bytes.fromhex(auction["public_key"][2:]),
            bid_info(domain.chain_id, domain.verifying_contract, auction_id),
        )
        env = Envelope(auction_id, rids[3], victim.address, ct, b"")
        env = Envelope(
            auction_id, rids[3], victim.address, ct, victim.sign_digest(env.digest(domain))
        )
        clients[3].submit_envelope(env)
        counts["invalid_inside"] += 1
        # one holder cancels on-chain (incrementNonce) after bidding: the bid goes stale
        staler = signers[4]
        w3.eth.send_transaction(
            {"from": admin, "to": to_checksum_address(staler.address), "value": Wei(E18)}
        )
        fn = chain.settlement.functions.incrementNonce(auction_id, rids[4])
        stale_sender = make_sender(w3, Account.from_key(_key("holder-4")))
        stale_sender.send(fn, label="incrementNonce")
        counts["invalid_inside"] += 1
        pk = bytes.fromhex(auction["public_key"][2:])
        info = bid_info(domain.chain_id, domain.verifying_contract, auction_id)

        def sealed(i: int, rid: int, plaintext: bytes) -> Envelope:
            """Holder i's signed envelope for ``rid`` around any plaintext (not via the SDK)."""
            ct = seal(plaintext, pk, info)
            env = Envelope(auction_id, rid, signers[i].address, ct, b"")
            return Envelope(
                auction_id, rid, signers[i].address, ct, signers[i].sign_digest(env.digest(domain))
            )

        def signed_bid(i: int, bid: Bid) -> bytes:
            return SignedBid(bid, signers[i].sign_digest(bid.digest(domain))).encode()

        # inside the seal, found only at close: a ciphertext that is not HPKE at all, a
        # plaintext that is not the ABI encoding, and an inner bid for another request
        garbage = hashlib.sha256(b"not hpke").digest() * 12
        env = Envelope(auction_id, rids[5], signers[5].address, garbage, b"")
        clients[5].submit_envelope(
            Envelope(
                auction_id,
                rids[5],
                signers[5].address,
                garbage,
                signers[5].sign_digest(env.digest(domain)),
            )
        )
        clients[6].submit_envelope(sealed(6, rids[6], b"\x01" * PLAINTEXT_LENGTH))
        clients[8].submit_envelope(
            sealed(8, rids[8], signed_bid(8, Bid(auction_id, rids[9], sizes[8], 700, 0)))
        )
        counts["invalid_inside"] += 3
        # full discount (basisPoint 10000: the whole request burnt, nothing paid) and a bid
        # for twice the request's shares (clipped to its pending shares)
        clients[10].bid(rids[10], sizes[10], 10_000)
        clients[11].bid(rids[11], 2 * sizes[11], 2_500)
        # the head of the queue is serviced before T: its holder's bid has nothing pending
        head = rids[0]
        transact(w3, vault.functions.serviceRedemptions(sizes[0]), admin)
        assert chain.request(head).pending_shares == 0
        counts["invalid_inside"] += 1
        say(
            f"bids: {counts['sent']} sealed and sent, {counts['replaced']} replaced, "
            f"{counts['cancelled']} cancelled, {counts['refused']} refused at intake, "
            f"{counts['invalid_inside']} invalid inside the seal (found only at close)"
        )

        # --- close: time moves to T; the service's clock is still 2 minutes behind ----------
        tester.time_travel(
            auction_id
        )  # mines a block at T-1: the next one, at T, is the first >= T
        late = signers[-1]
        late_receipt = transact(
            w3,
            vault.functions.requestRedeem(E18 * 50, to_checksum_address(late.address), admin),
            admin,
        )
        late_rid = int(late_receipt["logs"][-1]["topics"][3].hex(), 16)
        clients[-1].bid(late_rid, 50 * E18, 900)  # accepted: the service says T-120
        counts["invalid_inside"] += 1
        say(
            f"request {late_rid} made on-chain at T (in the snapshot block) got a bid in while the "
            "service's clock still said T-120: matures after T, so rule 0 excludes it"
        )
        try:
            keeper.close_auction(auction_id)
        except KeeperStateError as e:  # the keeper waits for the service's clock too
            say(f"keeper: {e}")
        tester.time_travel(auction_id + SERVICE_LAG + 60)
        tester.mine_blocks(1)
        say("both clocks past T: bidding closed")
        keeper.cfg.liquidity_bps = _packaging(keeper, auction_id, say)
        report = keeper.close_auction(auction_id)
        say(f"keeper close: done {report.done}, skipped {report.skipped}")
        again = keeper.close_auction(auction_id)  # idempotent: a restarted keeper changes nothing
        assert not again.done, again.done

        # --- verify like an outsider, from the service and the chain -------------------------
        import httpx

        def get(path: str) -> Any:
            r = httpx.get(url + path, timeout=30)
            if r.status_code == 409 and path.endswith("allocation-tree"):
                return None
            r.raise_for_status()
            return r.json()

        docs = fetch_documents(get, auction_id)
        verification = verify_documents(docs, chain)
        say(
            f"qev verify: {len(verification.checks)} checks, "
            f"{'OK' if verification.ok else 'FAILED'}"
        )
        for d in verification.differences:
            say(f"  difference: {d}")
        summary = _summary(
            docs,
            report=report,
            chain=chain,
            counts=counts,
            clients=clients,
            auction_id=auction_id,
        )
        if out_dir is not None:
            _write(out_dir, docs)
            say(f"artifacts written to {out_dir}")
    finally:
        for c in clients:
            c.close()
        server.should_exit = True
        thread.join(timeout=10)
        keeper_store.close()
    _print_summary(summary, quiet)
    return DemoResult(auction_id, summary, verification.ok, out_dir)


def _packaging(keeper: Keeper, auction_id: int, say: Progress) -> int:
    """Basis points of the free liquidity to package so the marginal bid shows its rule.

    The demo looks at the bids the way the keeper will (it holds the master secret) and picks
    the share of the free liquidity that puts a large bid at the margin with some room:
    pay-as-bid, room under ``min_fill`` (excluded ``below_min_fill``); uniform, room for
    about half of it (a partially filled marginal winner at the clearing rate).
    """
    from clearing.engine import payout_of, rank_bids
    from clearing.validation import AuctionContext, validate_book

    chain = keeper.chain
    found = chain.first_block_at_or_after(auction_id)
    assert found is not None
    block = found[0]
    bids = keeper.store.live_bids(auction_id)
    envelopes = [
        Envelope(auction_id, b.redemption_id, b.controller, b.ciphertext, b.signature) for b in bids
    ]
    snap = chain.snapshot(auction_id, (e.redemption_id for e in envelopes), block)
    ctx = AuctionContext(auction_id, keeper.cfg.domain, keeper.secret(auction_id))
    ranked = rank_bids(validate_book(envelopes, ctx, snap.requests)[0])
    price, free = snap.price, snap.free_liquidity
    uniform = keeper.cfg.mode is Mode.UNIFORM

    def margin(k: int) -> int:
        """The liquidity that puts bid k at the margin with the room described above."""
        rate = ranked[k].basis_point if uniform else None
        before = sum(payout_of(b.size, rate or b.basis_point, price) for b in ranked[:k])
        room = ranked[k].size // 2 if uniform else MIN_FILL // 2
        return before + payout_of(room, ranked[k].basis_point, price)

    big = [k for k in range(1, len(ranked)) if ranked[k].size >= 4 * MIN_FILL]
    fits = [k for k in big if margin(k) <= free * 9 // 10]
    k = fits[-1] if fits else big[0]
    bps = min(margin(k) * 10_000 // free, 10_000)
    say(
        f"packaging {bps / 100:.2f}% of the free liquidity: bid #{k + 1} "
        f"(redemption {ranked[k].redemption_id}) is at the margin"
    )
    return bps


def _summary(
    docs: dict[str, Any],
    *,
    report: Any,
    chain: Chain,
    counts: dict[str, int],
    clients: list[BidderClient],
    auction_id: int,
) -> dict[str, Any]:
    result = docs["result"]
    winners = [rid for rid, o in result["outcomes"].items() if int(o["shares_filled"]) > 0]
    # a few winners check their own allocation proof through the SDK
    checked = 0
    for rid in winners[:3]:
        owner = next(
            c
            for c in clients
            if to_checksum_address(c.signer.address) == result["requests"][rid]["controller"]
        )
        proof = owner.allocation(auction_id, int(rid))
        paid = chain.usdai.functions.balanceOf(to_checksum_address(owner.signer.address)).call()
        assert paid == int(proof["leaf"]["payout"]), (paid, proof["leaf"]["payout"])
        checked += 1
    settled = chain.settled(auction_id)
    return {
        "auction_id": auction_id,
        "bids": counts,
        "valid_bids": len(result["outcomes"]),
        "excluded": {
            e["reason"]: sum(1 for x in result["excluded"] if x["reason"] == e["reason"])
            for e in result["excluded"]
        },
        "winners": result["winners"],
        "unfilled": {
            r: sum(1 for o in result["outcomes"].values() if o["reason"] == r)
            for r in sorted({o["reason"] for o in result["outcomes"].values() if o["reason"]})
        },
        "partial": sum(1 for o in result["outcomes"].values() if o["status"] == "partial"),
        "clearing_rate_bps": result["clearing_rate"],
        "liquidity": int(result["liquidity"]),
        "shares_filled": int(result["total_shares"]),
        "shares_burnt": int(result["total_burnt"]),
        "usdai_paid": int(result["total_payout"]),
        "claimed_on_chain": settled.claimed_payout,
        "leftover_liquidity": int(result["leftover"]),
        "queue_serviced_shares": report.serviced_shares,
        "gas": report.gas,
        "bid_book_root": result["bid_book_root"],
        "allocation_root": result["allocation_root"],
        "self_checked_claims": checked,
        "key_revealed": chain.key_state(auction_id).revealed,
    }


def _write(out_dir: Path, docs: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for key, name in DOCUMENT_FILES.items():
        if key == "allocation-tree":
            continue
        (out_dir / name).write_bytes(orjson.dumps(docs[key], option=orjson.OPT_INDENT_2))
    if docs["allocation-tree"] is not None:
        (out_dir / "allocation-tree.json").write_bytes(
            orjson.dumps(docs["allocation-tree"], option=orjson.OPT_INDENT_2)
        )
    if docs["book"]["tree"] is not None:
        (out_dir / "bid-book-tree.json").write_bytes(
            orjson.dumps(docs["book"]["tree"], option=orjson.OPT_INDENT_2)
        )


def _usd(wei: int) -> str:
    return f"{wei / E18:,.2f}"


def _print_summary(s: dict[str, Any], quiet: bool) -> None:
    if quiet:
        return
    print()
    print(f"auction {s['auction_id']}")
    print(f"  valid bids {s['valid_bids']}, excluded {s['excluded']}")
    print(f"  winners {s['winners']} at a clearing rate of {s['clearing_rate_bps']} bps")
    print(f"  shares filled {_usd(s['shares_filled'])}, burnt {_usd(s['shares_burnt'])}")
    print(
        f"  USDai paid {_usd(s['usdai_paid'])} of {_usd(s['liquidity'])} packaged "
        f"(claimed on-chain {_usd(s['claimed_on_chain'])})"
    )
    print(
        f"  leftover {_usd(s['leftover_liquidity'])}; "
        f"FIFO queue serviced {_usd(s['queue_serviced_shares'])} shares"
    )
    print(f"  gas {s['gas']}")
    print(f"  bid-book root   {s['bid_book_root']}")
    print(f"  allocation root {s['allocation_root']}")
    print(
        f"  key revealed: {s['key_revealed']}; "
        f"{s['self_checked_claims']} holders checked their proof and payout"
    )


# --- the registry target ----------------------------------------------------------------------

REGISTRY_FEE_BPS = 100  # the draft's admin fee
REGISTRY_BATCHES = {"post_bids": 40, "reorder_bids": 60}  # several batches of each in the demo


def _one_shot_estimate(state: Any, transaction: Any) -> int:
    """py-evm's default gas estimator bisects (about 13 EVM runs); the demo's in-process chain
    runs the call once at the block gas limit and answers intrinsic + 1.5 x execution gas.
    Only the demo node's answer changes: the keeper still estimates, bounds and signs as it
    would against any node."""
    from eth.vm.spoof import SpoofTransaction

    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(
            SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0)
        )
        if computation.is_error:
            raise computation.error
        used = computation.get_gas_used()
    finally:
        state.revert(snapshot)
    return int(min(state.gas_limit, transaction.intrinsic_gas + used * 3 // 2))


def run_registry_demo(
    holders: int = 200,
    out_dir: Path | None = None,
    seed: int = 7,
    quiet: bool = False,
) -> DemoResult:
    """The month against USD.AI's draft QEV registry (``qev demo --target registry``).

    Same sealed intake, receipts and published documents as the merkle demo; at close the
    keeper posts every valid bid to the registry in rule-2 order (gas-bounded batches),
    settles it there, has the vault reorder the queue (burning each discount, splitting partial
    bids into new requests, the fee once per call), services the queue by walking it from the
    head and reveals the key. The vault shows only the draft's views (its model-only
    ``balances()``, ``genesisTimestamp()`` and ``qevRedemptionInfo()`` are hidden), and the
    verification is the registry target's (the bids on-chain are exactly the valid sealed bids
    in rule-2 order; burns, new ids, fees and the queue order as the draft's rules give).
    """
    from keeper.duties.registry import RegistryBatches, RegistryKeeper
    from keeper.targets.registry import Registry, deploy_registry

    say = Progress(quiet)
    rng = random.Random(seed)  # noqa: S311 - demo data, not keys
    provider = LockedTesterProvider()
    w3 = Web3(provider)
    tester: Any = provider.ethereum_tester
    tester.backend.chain.gas_estimator = _one_shot_estimate
    admin = w3.eth.accounts[0]
    keys = tester.backend.account_keys
    urgent_acct = Account.from_key(keys[1].to_bytes())
    house_acct = Account.from_key(keys[2].to_bytes())
    tmp = Path(tempfile.mkdtemp(prefix="qev-demo-registry-"))
    service_address = Signer(load_or_create_key(tmp / "service.key")).address
    keepers = [urgent_acct.address, house_acct.address]
    dep = deploy_stack(w3, admin, keepers, receipt_signer=to_checksum_address(service_address))
    registry_address = deploy_registry(
        w3, admin, dep.vault, keepers, admin_fee_rate=REGISTRY_FEE_BPS, fee_recipient=admin
    )
    # holders and the service read through `chain`; the keeper gets a binding of its own that
    # first reads the vault after its model-only views are hidden (at close, below)
    chain = Chain(w3, dep.vault, dep.settlement)
    genesis = chain.genesis()
    auction_id = genesis + 2 * W
    keeper_chain = Chain(w3, dep.vault, dep.settlement, genesis=genesis)
    registry = Registry(keeper_chain, registry_address)
    say(
        f"contracts deployed on py-evm (chain {w3.eth.chain_id}): QEV registry "
        f"{registry_address} (fee {REGISTRY_FEE_BPS} bp), settlement contract for the key and "
        f"the receipt signer; genesis {genesis}, auction T = {auction_id}"
    )

    # --- holders: deposits and redemption requests in two windows -----------------------
    vault, usdai = chain.vault, chain.usdai
    signers = [Signer(_key(f"holder-{i}")) for i in range(holders)]
    sizes = [rng.randint(20, 2_000) * E18 for _ in signers]
    total = sum(sizes)
    transact(w3, usdai.functions.mint(admin, 2 * total), admin)
    transact(w3, usdai.functions.approve(vault.address, 2 * total), admin)
    transact(w3, vault.functions.deposit(2 * total, admin), admin)
    first_window = holders * 3 // 5
    rids: list[int] = []
    for i, (s, size) in enumerate(zip(signers, sizes, strict=True)):
        if i == first_window:
            tester.time_travel(genesis + W + 3600)
        receipt = transact(
            w3, vault.functions.requestRedeem(size, to_checksum_address(s.address), admin), admin
        )
        rids.append(int(receipt["logs"][-1]["topics"][3].hex(), 16))
    held = usdai.functions.balanceOf(vault.address).call()
    deployed = held * 85 // 100
    transact(w3, usdai.functions.burn(vault.address, deployed), admin)
    transact(w3, vault.functions.setExternalAssets(deployed * 1_008 // 1_000), admin)
    say(
        f"{holders} holders requested {total // E18:,} sUSDai over two windows; "
        f"free liquidity {chain.free_liquidity() // E18:,} USDai, "
        f"share price {chain.share_price() / E18:.4f}"
    )

    # --- keeper opens the auction; the service takes sealed bids in the registry's domain ----
    store_url = f"sqlite:///{tmp / 'qev.db'}"
    keeper_store = open_store(store_url)
    master = _key("keeper-master-secret")
    settings = ServiceSettings(
        store_url=SecretStr(store_url),
        chain_id=w3.eth.chain_id,
        settlement=registry_address,  # the EIP-712 verifying contract (PROTOCOL Appendix B.5)
        target="registry",
        genesis=genesis,
        service_key_file=tmp / "service.key",
        controller_rate=1e6,
        controller_burst=10**6,
        client_rate=1e6,
        client_burst=10**6,
    )
    domain = Eip712Domain(
        settings.domain_name(),
        settings.domain_version(),
        w3.eth.chain_id,
        parse_address(registry_address),
    )

    def chain_clock() -> int:
        return int(w3.eth.get_block("latest")["timestamp"])

    def service_clock() -> int:
        return chain_clock() - SERVICE_LAG

    keeper = RegistryKeeper(
        keeper_chain,
        keeper_store,
        make_sender(w3, urgent_acct),
        make_sender(w3, house_acct),
        KeeperConfig(master, domain, workers=2),
        registry=registry,
        batches=RegistryBatches(
            post_bids=REGISTRY_BATCHES["post_bids"],
            reorder_bids=REGISTRY_BATCHES["reorder_bids"],
        ),
        log=say,
        service_clock=service_clock,
    )
    keeper.open_auction(auction_id)

    app = build_app(settings, Web3Redemptions(chain), clock=service_clock)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    say(f"service on {url}: sealed bids in the {domain.name} {domain.version} domain")

    clients: list[BidderClient] = []
    counts = {"sent": 0, "replaced": 0, "cancelled": 0, "refused": 0, "invalid_inside": 0}
    summary: dict[str, Any] = {}
    ok = False
    try:
        clients = [BidderClient(url, s, chain=chain) for s in signers]
        auction = clients[0].auction()
        live: dict[int, Envelope] = {}
        for i, (c, rid) in enumerate(zip(clients, rids, strict=True)):
            bp = rng.choice(
                [rng.randint(10, 300), rng.randint(300, 1_200), rng.randint(1_200, 3_000)]
            )
            shares = sizes[i] if i % 5 else sizes[i] // 2  # every fifth: half (a new request)
            if i % 29 == 13:
                shares = 0
                counts["invalid_inside"] += 1
            if i % 31 == 7:
                bp = 5
                counts["invalid_inside"] += 1
            live[rid] = c.bid(rid, shares, bp).envelope
            counts["sent"] += 1
            if i % 10 == 3:
                live[rid] = c.bid(rid, shares, min(bp + 150, 10_000)).envelope
                counts["replaced"] += 1
            if i % 23 == 5:
                c.cancel(auction_id, rid, live.pop(rid).ciphertext_hash)
                counts["cancelled"] += 1
        try:
            clients[0].bid(rids[1], E18, 500)
        except ServiceProblemError as e:
            counts["refused"] += 1
            assert e.code == "not_controller"
        # inside the seal, found only at close: an inner bid signed by another key
        forger, victim = signers[2], signers[3]
        bid = Bid(auction_id, rids[3], sizes[3], 900, 0)
        inner = SignedBid(bid, forger.sign_digest(bid.digest(domain)))
        pk = bytes.fromhex(auction["public_key"][2:])
        info = bid_info(domain.chain_id, domain.verifying_contract, auction_id)
        ct = seal(inner.encode(), pk, info)
        env = Envelope(auction_id, rids[3], victim.address, ct, b"")
        clients[3].submit_envelope(
            Envelope(
                auction_id, rids[3], victim.address, ct, victim.sign_digest(env.digest(domain))
            )
        )
        counts["invalid_inside"] += 1
        # one holder cancels on the registry (incrementNonce) after bidding: the bid goes stale
        staler = signers[4]
        w3.eth.send_transaction(
            {"from": admin, "to": to_checksum_address(staler.address), "value": Wei(E18)}
        )
        make_sender(w3, Account.from_key(_key("holder-4"))).send(
            registry.contract.functions.incrementNonce(auction_id, rids[4]), label="incrementNonce"
        )
        counts["invalid_inside"] += 1
        clients[10].bid(rids[10], sizes[10], 10_000)  # all of it burnt, nothing paid
        clients[11].bid(rids[11], 2 * sizes[11], 2_500)  # more than pending: the whole request
        # the head of the queue is serviced before T: its holder's bid has nothing pending
        transact(w3, vault.functions.serviceRedemptions(sizes[0]), admin)
        counts["invalid_inside"] += 1
        say(
            f"bids: {counts['sent']} sealed and sent, {counts['replaced']} replaced, "
            f"{counts['cancelled']} cancelled, {counts['refused']} refused at intake, "
            f"{counts['invalid_inside']} invalid inside the seal (found only at close)"
        )

        # --- close ---------------------------------------------------------------------------
        tester.time_travel(auction_id)
        late = signers[-1]
        late_receipt = transact(
            w3,
            vault.functions.requestRedeem(E18 * 50, to_checksum_address(late.address), admin),
            admin,
        )
        late_rid = int(late_receipt["logs"][-1]["topics"][3].hex(), 16)
        clients[-1].bid(late_rid, 50 * E18, 900)  # the service still says T-120: accepted
        counts["invalid_inside"] += 1
        # the keeper meets the draft's vault: no balances(), genesisTimestamp() or
        # qevRedemptionInfo(); it reads requests with redemption(id) (a walk of up to 150
        # requests each: py-evm takes a while over them)
        transact(w3, vault.functions.hideModelViews(True), admin)
        tester.time_travel(auction_id + SERVICE_LAG + 60)
        tester.mine_blocks(1)
        say("both clocks past T: bidding closed; the vault shows only the draft's views")
        queue_before = [r.redemption_id for r in keeper_chain.queue(limit=3)]
        report = keeper.close_auction(auction_id)
        say(f"keeper close: done {report.done}, skipped {report.skipped}")
        again = keeper.close_auction(auction_id)
        assert not again.done, again.done

        import httpx

        def get(path: str) -> Any:
            r = httpx.get(url + path, timeout=30)
            r.raise_for_status()
            return r.json()

        docs = fetch_documents(get, auction_id)
        # `qev verify`'s entry point: it sees result.target = registry and checks by its rules
        verification = verify_documents(docs, Chain(w3, dep.vault, dep.settlement, genesis=genesis))
        ok = verification.ok
        say(f"qev verify: {len(verification.checks)} checks, {'OK' if ok else 'FAILED'}")
        for d in verification.differences:
            say(f"  difference: {d}")
        summary = _registry_summary(
            docs,
            report=report,
            chain=keeper_chain,
            registry=registry,
            counts=counts,
            auction_id=auction_id,
            queue_before=queue_before,
        )
        if out_dir is not None:
            _write(out_dir, docs)
            say(f"artifacts written to {out_dir}")
    finally:
        for c in clients:
            c.close()
        server.should_exit = True
        thread.join(timeout=10)
        keeper_store.close()
    _print_registry_summary(summary, quiet)
    return DemoResult(auction_id, summary, ok, out_dir)


def _registry_summary(
    docs: dict[str, Any],
    *,
    report: Any,
    chain: Chain,
    registry: Any,
    counts: dict[str, int],
    auction_id: int,
    queue_before: list[int],
) -> dict[str, Any]:
    result = docs["result"]
    reorder = result["reorder"] or {}
    moved = reorder.get("moved", [])
    state = registry.auction(auction_id)
    queue_after = [r.redemption_id for r in chain.queue(limit=3)]
    return {
        "auction_id": auction_id,
        "target": "registry",
        "bids": counts,
        "valid_bids": len(result["bids"]),
        "excluded": {
            e["reason"]: sum(1 for x in result["excluded"] if x["reason"] == e["reason"])
            for e in result["excluded"]
        },
        "posted": state.bid_count,
        "reordered": state.processed,
        "post_batches": report.batches.get("postBids", []),
        "reorder_batches": report.batches.get("reorderRedemptions", []),
        "new_requests": sum(1 for m in moved if m["redemption_id"] != m["queue_id"]),
        "shares_burnt": int(reorder.get("total_burnt", 0)),
        "fee_shares": int(reorder.get("fee_shares", 0)),
        "queue_head_before": queue_before[:3],
        "queue_head_after_service": queue_after[:3],
        "queue_serviced_shares": report.serviced_shares,
        "gas": report.gas,
        "bid_book_root": result["bid_book_root"],
        "key_revealed": chain.key_state(auction_id).revealed,
    }


def _print_registry_summary(s: dict[str, Any], quiet: bool) -> None:
    if quiet or not s:
        return
    print()
    print(f"auction {s['auction_id']} (registry target)")
    print(f"  valid bids {s['valid_bids']}, excluded {s['excluded']}")
    print(
        f"  posted {s['posted']} in {len(s['post_batches'])} postBids batches "
        f"(gas {s['post_batches']}), reordered {s['reordered']} in "
        f"{len(s['reorder_batches'])} batches (gas {s['reorder_batches']})"
    )
    print(
        f"  shares burnt {_usd(s['shares_burnt'])}, admin fee {_usd(s['fee_shares'])} sUSDai, "
        f"{s['new_requests']} partial bids became new requests"
    )
    print(
        f"  queue head before {s['queue_head_before']}; FIFO serviced "
        f"{_usd(s['queue_serviced_shares'])} shares after the reorder"
    )
    print(f"  gas {s['gas']}")
    print(f"  bid-book root {s['bid_book_root']}; key revealed: {s['key_revealed']}")


__all__ = ["DemoResult", "run_demo", "run_registry_demo"]
