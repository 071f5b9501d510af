"""``qev demo --key-mode threshold``: one month whose auction key a 3-of-5 keyper committee
holds (PROTOCOL 10), end to end on py-evm, SQLite and the real service.

The admin registers five keypers (accounts and X25519 identity keys, t = 3) and switches the
settlement contract to threshold mode. In the window's first hours the keypers run the DKG on
the service's bulletin board (HTTP): keyper 4 deals keyper 2 a wrong share and answers its
complaint with the same wrong share, so it is disqualified. The keeper commits the group key
(and the transcript hash); holders seal bids to it. Before release no two keypers can open a
bid. After T the keeper freezes the book and commits it on-chain; the close then waits, loudly,
for key shares; four keypers release theirs (keyper 5 is offline), any three open the book, and
the keeper combines them, clears, settles, pays, services the queue and reveals the key. The
published documents add the DKG transcript and the released shares, and ``qev verify``
checks them (transcript, every share against its public share, the combination, the X25519
key) besides everything it checks in single mode.
"""

from __future__ import annotations

import itertools
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from eth_account import Account
from pydantic import SecretStr
from web3 import Web3

from clearing import threshold as th
from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.calendar import REDEMPTION_WINDOW, AuctionCalendar
from clearing.dkg import Committee, DkgDeal, DkgSchedule, board_from_document
from clearing.eip712 import Eip712Domain
from clearing.engine import Mode
from clearing.errors import DecryptionError
from clearing.hexcodec import parse_address, to_checksum_address, to_hex
from clearing.keyfiles import load_or_create_key
from clearing.sealing import bid_info, open_sealed, public_key_of
from clearing.signing import Signer
from clearing.store import open_store
from keeper.chain import Chain
from keeper.deploy import deploy_stack, transact
from keeper.jobs import Keeper, KeeperConfig
from keeper.keyper import HttpBoard, Keyper
from keeper.redemptions import Web3Redemptions
from keeper.senders import make_sender
from keeper.threshold_key import ChainCommittees, SharesShortError, ThresholdKeys
from keeper.verify import fetch_documents, verify_documents
from keeper.verify_threshold import write_threshold_documents
from qev.demo import (
    DemoResult,
    LockedTesterProvider,
    Progress,
    _free_port,
    _key,
    _print_summary,
    _summary,
    _write,
)
from qev.sdk import BidderClient

E18 = 10**18
W = REDEMPTION_WINDOW
N, T_OF_N, PHASE = 5, 3, 2 * 3_600
CHEATER, VICTIM, OFFLINE = 4, 2, 5  # dealer 4 cheats keyper 2; keyper 5 is offline at release
MIN_FILL = 25 * E18


class CheatingDealer(Keyper):
    """Deals ``VICTIM`` a wrong share and answers its complaint with the same wrong share."""

    def make_deal(self, auction_id: int, committee: Committee, j: int) -> DkgDeal:
        deal = super().make_deal(auction_id, committee, j)
        poly = self.polynomial(auction_id, committee)
        wrong = th.seal_share(
            (poly(VICTIM) + 1) % th.L,
            committee.identity_keys[VICTIM - 1],
            self.info(auction_id, j, VICTIM),
        )
        shares = list(deal.sealed_shares)
        shares[VICTIM - 1] = wrong
        return DkgDeal(deal.auction_id, b"", j, deal.commitments, tuple(shares))

    def answer_value(self, auction_id: int, committee: Committee, j: int, keyper: int) -> int:
        return (super().answer_value(auction_id, committee, j, keyper) + 1) % th.L


def run_threshold_demo(
    holders: int = 60,
    out_dir: Path | None = None,
    mode: str = "pay_as_bid",
    seed: int = 11,
    quiet: bool = False,
) -> DemoResult:
    """Run the month in threshold key mode; the summary and whether verification passed."""
    say = Progress(quiet)
    rng = random.Random(seed)  # noqa: S311 - demo data, not keys
    provider = LockedTesterProvider()
    w3 = Web3(provider)
    tester: Any = provider.ethereum_tester
    admin = w3.eth.accounts[0]
    keys = tester.backend.account_keys
    urgent_acct = Account.from_key(keys[1].to_bytes())
    house_acct = Account.from_key(keys[2].to_bytes())
    tmp = Path(tempfile.mkdtemp(prefix="qev-demo-threshold-"))
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
    calendar = AuctionCalendar(genesis, W)
    schedule = DkgSchedule.of(calendar, auction_id, PHASE)
    domain = Eip712Domain("QEVSettlement", "1", int(w3.eth.chain_id), parse_address(dep.settlement))

    # --- the committee: five keypers, any three can open ---------------------------------
    accounts = [Signer(_key(f"keyper-account-{j}")) for j in range(1, N + 1)]
    identities = [_key(f"keyper-identity-{j}") for j in range(1, N + 1)]
    transact(
        w3,
        chain.settlement.functions.setKeyperCommittee(
            [to_checksum_address(a.address) for a in accounts],
            [public_key_of(i) for i in identities],
            T_OF_N,
            PHASE,
        ),
        admin,
    )
    transact(w3, chain.settlement.functions.setKeyMode(1), admin)
    say(
        f"contracts deployed on py-evm; keyper committee {T_OF_N}-of-{N} registered, key "
        f"mode threshold; auction T = {auction_id}, DKG phases of {PHASE // 3600} h from "
        f"{schedule.opens_at}"
    )

    # --- holders: deposits, requests in two windows --------------------------------------
    vault, usdai = chain.vault, chain.usdai
    signers = [Signer(_key(f"holder-{i}")) for i in range(holders)]
    sizes = [rng.randint(20, 2_000) * E18 for _ in signers]
    total = sum(sizes)
    transact(w3, usdai.functions.mint(admin, 2 * total), admin)
    transact(w3, usdai.functions.approve(vault.address, 2 * total), admin)
    transact(w3, vault.functions.deposit(2 * total, admin), admin)
    rids: list[int] = []

    def request(i: int) -> None:
        fn = vault.functions.requestRedeem(sizes[i], to_checksum_address(signers[i].address), admin)
        rids.append(int(transact(w3, fn, admin)["logs"][-1]["topics"][3].hex(), 16))

    first_window = holders * 3 // 5
    for i in range(first_window):
        request(i)

    # --- the service (with the board) and the keeper ---------------------------------------
    def chain_clock() -> int:
        return int(w3.eth.get_block("latest")["timestamp"])

    def advance_to(timestamp: int) -> None:
        tester.time_travel(timestamp)
        tester.mine_blocks(1)

    store_url = f"sqlite:///{tmp / 'qev.db'}"
    keeper_store = open_store(store_url)
    settings = ServiceSettings(
        store_url=SecretStr(store_url),
        chain_id=domain.chain_id,
        settlement=dep.settlement,
        genesis=genesis,
        service_key_file=tmp / "service.key",
        controller_rate=1e6,
        controller_burst=10**6,
        client_rate=1e6,
        client_burst=10**6,
    )
    app = build_app(
        settings,
        Web3Redemptions(chain),
        clock=chain_clock,
        committees=ChainCommittees(Chain(w3, dep.vault, dep.settlement), ttl=0),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    keys_source = ThresholdKeys(chain, keeper_store, domain, calendar, service_clock=chain_clock)
    keeper = Keeper(
        chain,
        keeper_store,
        make_sender(w3, urgent_acct),
        make_sender(w3, house_acct),
        KeeperConfig(
            b"",  # no master secret: nobody holds the key
            domain,
            Mode(mode),
            min_fill=MIN_FILL,
            liquidity_bps=6_000,
            workers=2,
            key_source=keys_source,
        ),
        log=say,
        service_clock=chain_clock,
    )
    boards = [HttpBoard(url) for _ in range(N)]
    keypers = [
        (CheatingDealer if j == CHEATER else Keyper)(
            Chain(w3, dep.vault, dep.settlement),
            boards[j - 1],
            identities[j - 1],
            accounts[j - 1],
            domain=domain,
            calendar=calendar,
        )
        for j in range(1, N + 1)
    ]
    clients: list[BidderClient] = []
    try:
        # --- the DKG, phase by phase, on the board ---------------------------------------
        advance_to(schedule.opens_at + 60)
        for k in keypers:
            k.run_dkg(auction_id, chain_clock())
        for i in range(first_window, holders):  # requests in the auction's own window
            request(i)
        held = usdai.functions.balanceOf(vault.address).call()
        deployed = held * 88 // 100  # most USDai works in strategies, a month of yield
        transact(w3, usdai.functions.burn(vault.address, deployed), admin)
        transact(w3, vault.functions.setExternalAssets(deployed * 1_008 // 1_000), admin)
        advance_to(schedule.deals_end + 60)
        for k in keypers:
            k.run_dkg(auction_id, chain_clock())
        advance_to(schedule.complaints_end + 60)
        for k in keypers:
            k.run_dkg(auction_id, chain_clock())
        board = httpx.get(f"{url}/v1/auctions/{auction_id}/dkg", timeout=30).json()
        say(
            f"DKG on the board: {len(board['deals'])} deals, complaints "
            f"{[(c['keyper'], c['dealer']) for c in board['complaints']]}, answers "
            f"{[(a['dealer'], a['keyper']) for a in board['answers']]}"
        )
        assert keeper.open_auction(auction_id) is False  # the DKG is not final yet
        advance_to(schedule.final_at + 60)
        assert keeper.open_auction(auction_id) is True
        transcript = httpx.get(f"{url}/v1/auctions/{auction_id}/dkg/transcript", timeout=30).json()
        state = chain.key_state(auction_id)
        say(
            f"DKG final: qualified {transcript['qualified']} (dealer {CHEATER} disqualified: "
            f"its answer fails the Feldman check); keeper committed public key "
            f"{to_hex(state.public_key)} and transcript hash {to_hex(state.commitment)}"
        )

        # --- holders bid; the key is nobody's ----------------------------------------------
        clients = [BidderClient(url, s, chain=chain) for s in signers]
        counts = {"sent": 0, "replaced": 0, "cancelled": 0, "refused": 0, "invalid_inside": 0}
        envelopes = []
        for i, (c, rid) in enumerate(zip(clients, rids, strict=True)):
            bp = rng.choice(
                [rng.randint(10, 300), rng.randint(300, 1_200), rng.randint(1_200, 3_000)]
            )
            shares = sizes[i] if i % 5 else sizes[i] // 2
            if i % 17 == 9:
                bp = 5  # out of range: found only at close
                counts["invalid_inside"] += 1
            done = c.bid(rid, shares, bp)
            envelopes.append(done.envelope)
            counts["sent"] += 1
            if i % 10 == 3:
                envelopes[-1] = c.bid(rid, shares, min(bp + 150, 10_000)).envelope
                counts["replaced"] += 1
            if i % 23 == 5:
                c.cancel(auction_id, rid, envelopes.pop().ciphertext_hash)
                counts["cancelled"] += 1
        say(
            f"bids: {counts['sent']} sealed to the committee's key, {counts['replaced']} replaced, "
            f"{counts['cancelled']} cancelled"
        )
        info = bid_info(domain.chain_id, domain.verifying_contract, auction_id)
        final = board_from_document(
            httpx.get(f"{url}/v1/auctions/{auction_id}/dkg", timeout=30).json(), domain
        )
        pair = {j: keypers[j - 1].secret_share(final, j) for j in (1, 2)}
        guesses = [
            th.combine(pair, 2),
            pair[1],
            pair[2],
            (pair[1] + pair[2]) % th.L,
        ]
        opened = 0
        for guess in guesses:
            try:
                open_sealed(envelopes[0].ciphertext, th.x25519_private_key(guess), info)
                opened += 1
            except DecryptionError:
                pass
        assert opened == 0
        say("before release: keypers 1 and 2 pooling their secret shares cannot open a bid")

        # --- close: book first, then the shares ---------------------------------------------
        advance_to(auction_id + 60)
        try:
            keeper.close_auction(auction_id)
            raise AssertionError("the close cannot finish without key shares")
        except SharesShortError as e:
            say(f"keeper: book frozen and committed on-chain; {e}: waiting for the keypers")
        released = []
        for j, k in enumerate(keypers, start=1):
            if j == OFFLINE:
                continue
            released += k.release(auction_id, chain_clock())
        shares = httpx.get(f"{url}/v1/auctions/{auction_id}/dkg/shares", timeout=30).json()
        say(f"keypers released {len(shares['shares'])} shares (keyper {OFFLINE} offline)")
        values = {int(s["keyper"]): int(s["share"]) for s in shares["shares"]}
        for trio in itertools.combinations(sorted(values), T_OF_N):
            sk = th.x25519_private_key(th.combine({j: values[j] for j in trio}, T_OF_N))
            open_sealed(envelopes[0].ciphertext, sk, info)  # any three open the book
        say(f"any {T_OF_N} released shares open the book; the keeper combines them")
        report = keeper.close_auction(auction_id)
        say(f"keeper close: done {report.done}, skipped {report.skipped}")
        again = keeper.close_auction(auction_id)
        assert not again.done, again.done

        # --- verify like an outsider ---------------------------------------------------------
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
            docs, report=report, chain=chain, counts=counts, clients=clients, auction_id=auction_id
        )
        summary["threshold"] = {
            "committee": f"{T_OF_N}-of-{N}",
            "qualified": transcript["qualified"],
            "complaints": [(c["keyper"], c["dealer"]) for c in transcript["complaints"]],
            "shares_released": sorted(values),
            "transcript_hash": transcript["transcript_hash"],
        }
        if out_dir is not None:
            _write(out_dir, docs)
            write_threshold_documents(out_dir, docs)
            say(f"artifacts written to {out_dir}")
    finally:
        for c in clients:
            c.close()
        for b in boards:
            b.close()
        server.should_exit = True
        thread.join(timeout=10)
        keeper_store.close()
    _print_summary(summary, quiet)
    if not quiet:
        t = summary["threshold"]
        print(
            f"  keypers {t['committee']}: qualified dealers {t['qualified']}, complaints "
            f"{t['complaints']}, shares released by {t['shares_released']}"
        )
    return DemoResult(auction_id, summary, verification.ok, out_dir)


__all__ = ["CheatingDealer", "run_threshold_demo"]
