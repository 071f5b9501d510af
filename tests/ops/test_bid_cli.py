"""``qev bid`` made safe, on anvil with a deployed dev stack, a real service and the keeper.

Each test gets a fresh anvil, ``qev deploy --dev``, holders made with ``qev devchain holder``,
the service (uvicorn in a thread, its clock injected so that it reaches T with the chain)
and a keeper built from the same config (``build_keeper``) for the close.
"""

from __future__ import annotations

import json
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from clearing.keyfiles import Passphrase, create_key, create_keystore
from keeper.chain import Chain
from qev.cli import main
from tests.integration.conftest import start_server
from tests.ops.conftest import run_qev
from tests.ops.test_deploy import FAST, PASSPHRASE

E18 = 10**18
BPS = 10_000


class ServiceClock:
    """The service's clock: the wall clock, until a test moves it to T with the chain."""

    def __init__(self) -> None:
        self.fixed: int | None = None

    def __call__(self) -> int:
        return self.fixed if self.fixed is not None else int(time.time())


@dataclass
class Holder:
    key_file: Path
    address: str
    rid: int
    shares: int


@dataclass
class Stack:
    tmp: Path
    anvil: Any
    chain: Chain
    url: str
    clock: ServiceClock
    keeper: Any
    auction: int
    journal: Path
    env: dict[str, str]
    holders: list[Holder] = field(default_factory=list)

    def holder(self, capsys, usdai: int = 1000) -> Holder:
        """``qev devchain holder``: a new account with a redemption request for every share."""
        key_file = self.tmp / f"holder-{len(self.holders)}.key"
        create_key(key_file, "holder key")
        assert main(["devchain", "holder", "--file", str(key_file), "--usdai", str(usdai)]) == 0
        line = capsys.readouterr().out.strip().splitlines()[-1]
        m = re.fullmatch(r"holder (0x[0-9a-fA-F]{40}): redemption (\d+) for (\d+) shares", line)
        assert m, line
        h = Holder(key_file, m[1], int(m[2]), int(m[3]))
        self.holders.append(h)
        return h

    def bid(self, capsys, holder: Holder | None, *args: str) -> tuple[int, str, str]:
        """``qev bid ARGS`` in process: (exit code, stdout, stderr)."""
        argv = ["bid", *args, "--service", self.url]
        if holder is not None:
            argv += ["--key-file", str(holder.key_file), "--redemption-id", str(holder.rid)]
        capsys.readouterr()  # what the keeper and the setup logged before
        code = main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    def bid_json(self, capsys, holder: Holder, *args: str) -> dict[str, Any]:
        code, out, err = self.bid(capsys, holder, *args, "--json")
        assert code == 0, err
        return dict(json.loads(out))

    def service_status(self, rid: int, auction: int | None = None) -> httpx.Response:
        return httpx.get(f"{self.url}/v1/auctions/{auction or self.auction}/bids/{rid}")

    def send(self, holder: Holder, fn: Any) -> str:
        """A transaction from the holder's own key."""
        account = Account.from_key(bytes.fromhex(holder.key_file.read_text().strip()))
        w3 = self.chain.w3
        tx = fn.build_transaction(
            {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
        )
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
        return "0x" + bytes(tx_hash).hex()

    def increment_nonce(self, holder: Holder) -> None:
        self.send(holder, self.chain.settlement.functions.incrementNonce(self.auction, holder.rid))

    def nonce(self, holder: Holder) -> int:
        return int(self.chain.settlement.functions.nonce(self.auction, holder.rid).call())

    def close(self) -> Any:
        """Chain and service clocks past T, then the keeper's close."""
        self.anvil.rpc("evm_setNextBlockTimestamp", self.auction + 1)
        self.anvil.rpc("evm_mine")
        self.clock.fixed = self.auction + 1
        return self.keeper.close_auction(self.auction)


def one_line(err: str) -> str:
    """The stderr of a failed command: exactly one line, no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("qev bid: ")
    return lines[0]


def _stack(tmp_path: Path, anvil, monkeypatch, liquidity_bps: int) -> Iterator[Stack]:
    from clearing.api.server import build_app
    from keeper.factory import build_keeper
    from keeper.redemptions import Web3Redemptions
    from keeper.settings import KeeperSettings
    from qev.commands.common import settings_of
    from qev.commands.serve import resolved_settings

    pw = Passphrase(value=PASSPHRASE)
    keys = tmp_path / "keys"
    for name in ("service", "urgent", "housekeeping"):
        create_keystore(keys / f"{name}.json", pw, scrypt_n=FAST)
    create_key(keys / "master.key", "master secret")
    config = tmp_path / "qev.toml"
    config.write_text(
        f'[chain]\nrpc_url = "{anvil.url}"\ndeployment_file = "{tmp_path / "deployment.json"}"\n'
        f'store_url = "sqlite:///{tmp_path / "qev.db"}"\n'
        f'[service]\nservice_key_file = "{keys / "service.json"}"\n'
        f'[keeper]\nmaster_secret_file = "{keys / "master.key"}"\n'
        f'urgent_key_file = "{keys / "urgent.json"}"\n'
        f'housekeeping_key_file = "{keys / "housekeeping.json"}"\n'
        f"confirmations = 1\nliquidity_bps = {liquidity_bps}\n"
        "claim_depth = 3\nclaim_batch = 150\n"
        "[deploy]\nfirst_auction_in = 300\n"
    )
    journal = tmp_path / "journal" / "bids.jsonl"
    env = {
        "QEV_CONFIG": str(config),
        "QEV_KEYSTORE_PASSPHRASE": PASSPHRASE,
        "QEV_JOURNAL_FILE": str(journal),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["deploy", "--dev", "--fund", "2"]) == 0

    settings, chain = resolved_settings(None)
    clock = ServiceClock()
    app = build_app(settings, Web3Redemptions(chain), clock=clock, access_log=False)
    url, server, thread = start_server(app)
    keeper, calendar = build_keeper(settings_of(None, KeeperSettings))
    assert (keeper.cfg.claim_depth, keeper.cfg.claim_batch) == (3, 150)  # from [keeper]
    keeper.service_clock = clock
    _, now = chain.latest_block()
    auction = calendar.current(now)
    assert auction - now <= 300
    keeper.open_auction(auction)  # the window opens: the key is committed on-chain
    try:
        yield Stack(tmp_path, anvil, chain, url, clock, keeper, auction, journal, env)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def stack(tmp_path: Path, anvil, monkeypatch, capsys) -> Iterator[Stack]:
    yield from _stack(tmp_path, anvil, monkeypatch, liquidity_bps=10_000)
    capsys.readouterr()


@pytest.fixture
def scarce(tmp_path: Path, anvil, monkeypatch, capsys) -> Iterator[Stack]:
    """1% of the free liquidity packaged for the auction: some bids win, some lose."""
    yield from _stack(tmp_path, anvil, monkeypatch, liquidity_bps=100)
    capsys.readouterr()


def journal_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _burnt(x: int, bp: int) -> int:
    return x * bp // BPS


def _payout(x: int, bp: int, price: int) -> int:
    return (x - _burnt(x, bp)) * price // E18


def _largest_fill(size: int, bp: int, price: int, remaining: int) -> int:
    """Rule 3's marginal fill: the largest x < size with payout(x) <= remaining."""
    x = min(size - 1, remaining * E18 * BPS // (price * (BPS - bp)) + 2)
    while _payout(x, bp, price) > remaining:
        x -= 1
    return x


# --- submit: everything checked before anything is sent ------------------------------


def test_submit_checks_amounts_request_and_live_bid_before_sending(stack: Stack, capsys):
    a, b = stack.holder(capsys), stack.holder(capsys)
    assert a.shares == b.shares == 1000 * E18
    refused = {
        ("--bp", "250"): (2, "needs --shares"),
        ("--shares", "12.5"): (2, "needs a discount"),
        ("--shares", "12.5", "--bp", "5"): (2, "outside the protocol's range"),
        ("--shares", "12.5", "--bp", "10001"): (2, "outside the protocol's range"),
        ("--shares", "12.5", "--discount", "1.5"): (2, "needs a unit"),
        ("--shares", "12.5", "--discount", "1.234%"): (2, "not a whole number of basis points"),
        ("--shares", "12.5", "--bp", "1500"): (2, "--allow-large-discount"),
        ("--shares", "0", "--bp", "250"): (2, "must be more than 0"),
        ("--shares", "12,5", "--bp", "250"): (2, "use a dot"),
        ("--shares", "1.0000000000000000001", "--bp", "250"): (2, "more than 18 decimals"),
        ("--shares", "1000.000000000000000001", "--bp", "250"): (
            5,
            f"1000000000000000000001 shares (wei) is more than the {1000 * E18} pending",
        ),
    }
    for args, (code, message) in refused.items():
        got, out, err = stack.bid(capsys, a, "submit", *args)
        assert (got, out) == (code, ""), (args, err)
        assert message in one_line(err), (args, err)
    # someone else's request, and one that does not exist
    not_mine = ["--key-file", str(b.key_file), "--redemption-id", str(a.rid)]
    code, _, err = stack.bid(capsys, None, "submit", *not_mine, "--shares", "1", "--bp", "250")
    assert code == 5 and f"is controlled by {a.address}, not by this key" in one_line(err)
    missing = ["--key-file", str(a.key_file), "--redemption-id", "999"]
    code, _, err = stack.bid(capsys, None, "submit", *missing, "--shares", "1", "--bp", "250")
    assert code == 5 and "there is no redemption request 999 on-chain" in one_line(err)
    # nothing reached the service, nothing was journalled
    for rid in (a.rid, b.rid, 999):
        assert stack.service_status(rid).json()["code"] == "not_found"
    assert stack.journal.read_text() == ""  # created (0600) before any check, still empty

    # a good bid, in human units in and out
    code, out, err = stack.bid(capsys, a, "submit", "--shares", "12.5", "--discount", "1.5%")
    assert code == 0, err
    assert out.startswith(f"bid accepted: redemption {a.rid}, auction {stack.auction}\n")
    assert "shares     12.5 sUSDai of 1,000 sUSDai pending" in out
    assert "discount   1.5% (150 bp): at most 0.1875 sUSDai given up" in out
    assert "if filled  about 12.3125 USDai" in out
    assert "nonce      0 (read on-chain)" in out
    assert stat.S_IMODE(stack.journal.stat().st_mode) == 0o600
    assert stat.S_IMODE(stack.journal.parent.stat().st_mode) == 0o700
    submit, receipt = journal_records(stack.journal)
    assert submit["event"] == "submit" and receipt["event"] == "receipt"
    assert (submit["shares"], submit["basis_point"], submit["nonce"]) == (
        "12500000000000000000",
        150,
        "0",
    )
    assert submit["service"] == stack.url and submit["auction_id"] == stack.auction
    assert submit["controller"] == a.address and submit["redemption_id"] == str(a.rid)
    assert len(submit["ciphertext"]) == 2 + 2 * 368
    live = stack.service_status(a.rid).json()
    assert live["status"] == "live"
    assert live["receipt"]["ciphertext_hash"] == submit["ciphertext_hash"]
    assert (receipt["kind"], receipt["sequence"]) == (0, live["receipt"]["sequence"])
    assert receipt["service_signer"].lower() == "0x" + stack.chain.receipt_signer().hex()
    assert not any("key" in name for r in journal_records(stack.journal) for name in r)

    # --shares all: every pending share, wei in --json
    out_b = stack.bid_json(capsys, b, "submit", "--shares", "all", "--bp", "250")
    assert out_b["shares"] == str(1000 * E18) == out_b["pending_shares"]
    assert (out_b["basis_point"], out_b["nonce"], out_b["created"]) == (250, "0", True)
    assert out_b["payout_if_filled"] == str(975 * E18)

    # a bad replacement never replaces the good live bid; a good one needs --replace
    first = live["receipt"]
    for args, code, message in (
        (("--shares", "20", "--bp", "5"), 2, "outside the protocol's range"),
        (("--shares", "0", "--bp", "200"), 2, "must be more than 0"),
        (
            ("--shares", "20", "--discount", "2%"),
            5,
            "already has a live bid in auction "
            f"{stack.auction} (envelope {first['ciphertext_hash']}, sequence "
            f"{first['sequence']}: 12.5 sUSDai at a 1.5% discount (150 bp), nonce 0); "
            "pass --replace",
        ),
    ):
        got, _, err = stack.bid(capsys, a, "submit", *args)
        assert got == code and message in one_line(err), err
        assert stack.service_status(a.rid).json()["receipt"] == first
    code, out, err = stack.bid(capsys, a, "submit", "--shares", "20", "--bp", "200", "--replace")
    assert code == 0, err
    assert f"replacing your live bid {first['ciphertext_hash']}" in out
    replaced = stack.service_status(a.rid).json()["receipt"]
    assert replaced["sequence"] == first["sequence"] + 2
    status = stack.bid_json(capsys, a, "status")
    assert status["state"] == "live" and status["warnings"] == []
    assert status["bid"]["shares"] == str(20 * E18) and status["bid"]["basis_point"] == 200
    assert status["receipt"] == replaced

    # a request made after T on the chain while the service still says T is open: it
    # matures at the next boundary, so it could not take part (rule 0: not_matured)
    stack.anvil.rpc("evm_setNextBlockTimestamp", stack.auction + 5)
    stack.anvil.rpc("evm_mine")
    late = stack.holder(capsys)
    code, _, err = stack.bid(capsys, late, "submit", "--shares", "all", "--bp", "100")
    assert code == 5
    assert (
        f"matures at {stack.auction + 30 * 86_400}, after auction {stack.auction} closes"
        in one_line(err)
    )
    assert stack.service_status(late.rid).json()["code"] == "not_found"


# --- nonce from the chain, statuses after the close, a claim pushed by the keeper ----------


def test_nonce_from_chain_and_status_live_won_lost_excluded(scarce: Stack, capsys):
    s = scarce
    a, b, c, d = (s.holder(capsys) for _ in range(4))
    # d cancels on-chain first: the next bid must carry the chain's nonce, 1, not 0
    s.increment_nonce(d)
    assert s.nonce(d) == 1
    out_d = s.bid_json(capsys, d, "submit", "--shares", "50", "--discount", "10%")
    assert (out_d["nonce"], out_d["basis_point"]) == ("1", 1000)
    assert journal_records(s.journal)[-2]["nonce"] == "1"
    assert s.bid_json(capsys, d, "status")["warnings"] == []
    s.increment_nonce(d)  # on-chain cancel of that bid: status must say so before the close
    status_d = s.bid_json(capsys, d, "status")
    assert status_d["state"] == "live"
    assert status_d["warnings"] == [
        "cancelled on-chain: the nonce is now 2, the bid was signed with nonce 1: it will be "
        "excluded (stale_nonce) unless you bid again"
    ]
    code, out, _ = s.bid(capsys, d, "status")
    assert code == 0 and "warning    cancelled on-chain: the nonce is now 2" in out

    s.bid_json(capsys, a, "submit", "--shares", "20", "--discount", "5%")
    s.bid_json(capsys, b, "submit", "--shares", "100", "--discount", "1%")
    s.bid_json(capsys, c, "submit", "--shares", "100", "--bp", "50")
    assert s.bid_json(capsys, a, "status")["state"] == "live"

    report = s.close()
    assert report.done == ["freeze", "clear", "settle", "claims", "service", "reveal"]
    result = httpx.get(f"{s.url}/v1/auctions/{s.auction}/result").json()
    price, free = int(result["price"]), int(result["free_liquidity"])
    assert price == E18 and free == 4000 * E18
    liquidity = free * 100 // BPS
    assert int(result["liquidity"]) == liquidity == 40 * E18

    # no --auction: the current auction is the next one, where these holders have no bid;
    # status falls back to the journal's auction
    won = s.bid_json(capsys, a, "status")
    assert (won["auction_id"], won["state"], won["reason"]) == (s.auction, "won", None)
    payout_a = _payout(20 * E18, 500, price)
    assert payout_a == 19 * E18
    assert won["outcome"]["status"] == "filled"
    assert won["outcome"]["shares_filled"] == str(20 * E18)
    assert won["outcome"]["shares_burnt"] == str(E18)
    assert won["outcome"]["payout"] == str(payout_a)
    pushed = s.chain.settlement.events.AllocationClaimed().get_logs(
        from_block=0, argument_filters={"auctionId": s.auction, "redemptionId": a.rid}
    )
    push_tx = "0x" + bytes(pushed[0]["transactionHash"]).hex()
    assert won["claimed"] is True and won["claim_tx"] == push_tx

    partial = s.bid_json(capsys, b, "status")
    filled_b = _largest_fill(100 * E18, 100, price, liquidity - payout_a)
    assert (partial["state"], partial["outcome"]["status"]) == ("won", "partial")
    assert partial["outcome"]["shares_filled"] == str(filled_b)
    assert partial["outcome"]["payout"] == str(_payout(filled_b, 100, price))
    assert int(partial["outcome"]["payout"]) <= 21 * E18 < _payout(filled_b + 1, 100, price)

    lost = s.bid_json(capsys, c, "status")
    assert (lost["state"], lost["reason"]) == ("lost", "liquidity_exhausted")
    assert lost["outcome"]["payout"] == "0" and lost["claimed"] is None

    excluded = s.bid_json(capsys, d, "status")
    assert (excluded["state"], excluded["reason"]) == ("excluded", "stale_nonce")
    assert excluded["bid"] == {
        "shares": str(50 * E18),
        "basis_point": 1000,
        "nonce": "1",
        "sealed_at": excluded["bid"]["sealed_at"],
    }
    code, out, _ = s.bid(capsys, d, "status")
    assert code == 0
    assert out.startswith(
        f"redemption {d.rid}, auction {s.auction} (revealed): excluded (stale_nonce)"
    )
    assert "your bid   50 sUSDai at a 10% discount (1000 bp), nonce 1" in out
    code, out, _ = s.bid(capsys, a, "status")
    assert (
        code == 0 and "outcome    filled: filled 20 sUSDai, burnt 1 sUSDai, payout 19 USDai" in out
    )
    assert f"claimed    yes in {push_tx}" in out

    # the keeper pushed the claims: claim says so and names the push
    code, out, err = s.bid(capsys, a, "claim")
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"already claimed: redemption {a.rid}, auction {s.auction}: 19 USDai paid in {push_tx}"
    )
    code, _, err = s.bid(capsys, c, "claim")
    assert code == 5 and f"redemption {c.rid} has no allocation in auction" in one_line(err)
    proof = s.bid_json(capsys, b, "proof")
    assert proof["settled_root_matches"] is True
    assert proof["leaf"]["shares_filled"] == str(filled_b)
    assert proof["allocation_root"] == result["allocation_root"]


# --- cancel finds the live envelope ------------------------------------------------------


def test_cancel_finds_the_live_envelope_in_the_journal_else_at_the_service(stack: Stack, capsys):
    a = stack.holder(capsys)
    code, _, err = stack.bid(capsys, a, "cancel")
    assert code == 5 and "nothing to cancel" in one_line(err)

    first = stack.bid_json(capsys, a, "submit", "--shares", "10", "--bp", "100")
    code, out, err = stack.bid(capsys, a, "cancel")
    assert code == 0, err
    assert f"envelope   {first['ciphertext_hash']} (found in the journal)" in out
    assert "bid        10 sUSDai at a 1% discount (100 bp), nonce 0" in out
    assert stack.service_status(a.rid).json()["status"] == "cancelled"
    cancel, receipt = journal_records(stack.journal)[-2:]
    assert (cancel["event"], cancel["ciphertext_hash"]) == ("cancel", first["ciphertext_hash"])
    assert (receipt["event"], receipt["kind"]) == ("receipt", 1)
    assert receipt["sequence"] == first["sequence"] + 1
    assert stack.bid_json(capsys, a, "status")["state"] == "cancelled"

    # a bid sealed with another journal (another machine): this journal knows no live bid,
    # so the live envelope comes from the service (its receipt checked)
    other = stack.tmp / "other-journal.jsonl"
    second = stack.bid_json(
        capsys, a, "submit", "--shares", "11", "--bp", "100", "--journal", str(other)
    )
    cancelled = stack.bid_json(capsys, a, "cancel")
    assert (cancelled["found_in"], cancelled["ciphertext_hash"]) == (
        "service",
        second["ciphertext_hash"],
    )
    assert cancelled["bid"] is None  # its plaintext is only in the other journal

    # this journal's live bid was replaced elsewhere: its hash is stale, the service's is used
    mine = stack.bid_json(capsys, a, "submit", "--shares", "12", "--bp", "100")
    theirs = stack.bid_json(
        capsys, a, "submit", "--shares", "13", "--bp", "100", "--replace", "--journal", str(other)
    )
    assert theirs["replaced"] == mine["ciphertext_hash"]
    cancelled = stack.bid_json(capsys, a, "cancel")
    assert (cancelled["found_in"], cancelled["ciphertext_hash"]) == (
        "service",
        theirs["ciphertext_hash"],
    )
    failed = [r for r in journal_records(stack.journal) if r["event"] == "failed"]
    assert len(failed) == 1 and failed[0]["ciphertext_hash"] == mine["ciphertext_hash"]
    assert "stale_cancel" in failed[0]["error"]
    body = stack.service_status(a.rid).json()
    assert body["status"] == "cancelled"
    assert body["receipt"]["ciphertext_hash"] == theirs["ciphertext_hash"]


# --- the holder's own claim ----------------------------------------------------------------


def test_claim_sends_the_holders_own_claim_transaction(stack: Stack, capsys):
    a = stack.holder(capsys)
    stack.keeper._push_claims = lambda auction_id, report: None  # a keeper that pushes none
    stack.bid_json(capsys, a, "submit", "--shares", "10", "--discount", "2%")
    code, _, err = stack.bid(capsys, a, "claim")
    assert code == 5 and f"auction {stack.auction} is not settled on-chain yet" in one_line(err)

    stack.close()
    status = stack.bid_json(capsys, a, "status")
    payout = _payout(10 * E18, 200, E18)
    assert (status["state"], status["outcome"]["payout"]) == ("won", str(payout))
    assert status["claimed"] is False
    usdai = stack.chain.usdai.functions.balanceOf(a.address)
    before = int(usdai.call())
    code, out, err = stack.bid(capsys, a, "claim")
    assert code == 0, err
    m = re.fullmatch(
        rf"claimed: redemption {a.rid}, auction {stack.auction}: 9\.8 USDai paid to "
        rf"{a.address} in (0x[0-9a-f]{{64}})",
        out.splitlines()[0],
    )
    assert m, out
    tx = stack.chain.w3.eth.get_transaction(m[1])
    assert tx["from"] == a.address and tx["to"] == stack.chain.settlement.address
    assert stack.chain.is_claimed(stack.auction, a.rid)
    assert int(usdai.call()) == before + payout == before + 98 * E18 // 10
    claim = journal_records(stack.journal)[-1]
    assert (claim["event"], claim["tx"], claim["pushed"]) == ("claim", m[1], False)
    again = stack.bid_json(capsys, a, "claim")
    assert (again["already_claimed"], again["tx"], again["payout"]) == (True, m[1], str(payout))
    assert stack.bid_json(capsys, a, "status")["claim_tx"] == m[1]


# --- one line for every problem ------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_problems_are_one_line_with_their_exit_code(stack: Stack, capsys, monkeypatch):
    from pydantic import SecretStr

    from clearing.api.server import build_app
    from keeper.redemptions import Web3Redemptions
    from qev.commands.serve import resolved_settings

    a = stack.holder(capsys)
    good = ["--shares", "1", "--bp", "100"]
    down = f"http://127.0.0.1:{_closed_port()}"

    def run(*args: str, service: str | None = None) -> tuple[int, str]:
        argv = ["bid", *args, "--service", service or stack.url, "--redemption-id", str(a.rid)]
        if "--key-file" not in args:
            argv += ["--key-file", str(a.key_file)]
        capsys.readouterr()
        code = main(argv)
        out, err = capsys.readouterr()
        assert out == ""
        return code, one_line(err)

    code, line = run("submit", *good, service=down)
    assert code == 4 and "service unreachable" in line
    for action in ("status", "cancel", "proof", "claim"):
        code, line = run(action, service=down)
        assert code == 4 and "service unreachable" in line, (action, line)
    # key files: missing, readable by others, a keystore with the wrong passphrase
    code, line = run("submit", *good, "--key-file", str(stack.tmp / "nope.key"))
    assert code == 2 and "does not exist" in line
    loose = stack.tmp / "loose.key"
    loose.write_text(a.key_file.read_text())
    loose.chmod(0o644)
    code, line = run("submit", *good, "--key-file", str(loose))
    assert code == 2 and "readable by others" in line
    keystore = stack.tmp / "holder.json"
    create_keystore(keystore, Passphrase(value="another passphrase"), scrypt_n=FAST)
    code, line = run("status", "--key-file", str(keystore))
    assert code == 2 and "wrong passphrase" in line
    # a journal others can read
    stack.journal.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    stack.journal.write_text("")
    stack.journal.chmod(0o644)
    code, line = run("submit", *good)
    assert code == 2 and "readable by others (chmod 600 it)" in line
    stack.journal.chmod(0o600)
    # the chain: an RPC that is down (exit 3), no chain configured at all (exit 2)
    code, line = run("submit", *good, "--rpc", down)
    assert code == 3 and "RPC unreachable" in line
    monkeypatch.delenv("QEV_CONFIG")
    code, line = run("submit", *good)
    assert code == 2 and "missing setting rpc_url" in line
    monkeypatch.setenv("QEV_CONFIG", stack.env["QEV_CONFIG"])

    # a service that is not the one the chain names: another auction key, another signer
    settings, chain = resolved_settings(None)
    rogue_master = stack.tmp / "rogue-master.key"
    rogue_signer = stack.tmp / "rogue-service.key"
    create_key(rogue_master, "master secret")
    create_key(rogue_signer, "receipt signing key")
    for update, message in (
        ({"master_secret_file": rogue_master}, "is not the one committed on-chain"),
        ({"service_key_file": rogue_signer}, "but the chain's receipt signer is"),
    ):
        rogue = settings.model_copy(
            update={**update, "store_url": SecretStr(f"sqlite:///{stack.tmp / 'rogue.db'}")}
        )
        app = build_app(rogue, Web3Redemptions(chain), access_log=False)
        url, server, thread = start_server(app)
        try:
            code, line = run("submit", *good, service=url)
            assert code == 5 and message in line, line
            assert httpx.get(f"{url}/v1/auctions/{stack.auction}/bids/{a.rid}").status_code == 404
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    assert stack.service_status(a.rid).status_code == 404

    # the same from a real process: one line, no traceback
    env = {**stack.env, "QEV_BIDDER_KEY_FILE": str(a.key_file)}
    proc = run_qev(
        "bid", "submit", "--service", down, "--redemption-id", str(a.rid), *good, env=env
    )
    assert proc.returncode == 4 and proc.stdout == ""
    assert "service unreachable" in one_line(proc.stderr)
