"""The holder's page in real headless Chromium against the real service, anvil and the keeper.

An injected EIP-1193 wallet (a test key in the driver, anvil behind it) connects; the holder
bids, gets a receipt (shown, downloaded, kept in the journal), replaces, cancels (signed and
``incrementNonce``), bids again; time moves past T; the keeper closes (leaving the claims to
the holders); the page shows the outcome or the exclusion reason and the proof, and claims.
Bad input shows a clear message and sends nothing. Screenshots of each step are saved under
the test's tmp dir (``screenshots/``).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from clearing.hexcodec import from_hex, parse_address, to_checksum_address
from clearing.receipts import Receipt, ReceiptKind
from keeper.jobs import Keeper
from tests.web.browser_support import E18, Browser, Stack, build_stack

pytestmark = [pytest.mark.node, pytest.mark.browser]

ANVIL_CHAIN_ID = 31337


@pytest.fixture
def stack(tmp_path, anvil, monkeypatch) -> Stack:
    for name in [n for n in __import__("os").environ if n.startswith("QEV_")]:
        monkeypatch.delenv(name)
    s = build_stack(tmp_path, anvil, monkeypatch, holds=2)
    yield s
    s.stop_service()


@pytest.fixture
def browser(tmp_path, request) -> Browser:
    b = Browser(tmp_path / "screenshots")
    yield b
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:  # what the page showed, for the failure report
        b.screenshot("failure")
        try:
            shown = b("evaluate", expression="document.getElementById('message').textContent")
            log = b("log")
            print(f"page message: {shown!r}\nwallet calls: {log['wallet']}")
            print("console:", *log["problems"][-20:], sep="\n  ")
        except AssertionError as e:
            print(f"no page state: {e}")
    b.close()


def receipt_of(raw: dict) -> Receipt:
    return Receipt(
        int(raw["auction_id"]),
        int(raw["redemption_id"]),
        parse_address(raw["controller"]),
        from_hex(raw["ciphertext_hash"], 32),
        int(raw["sequence"]),
        int(raw["received_at"]),
        ReceiptKind(int(raw["kind"])),
        from_hex(raw["service_signature"], 65),
    )


def journal(browser: Browser) -> list[dict]:
    return json.loads(
        browser("evaluate", expression="localStorage.getItem('qev.journal.v1') || '[]'")
    )


def bid(browser: Browser, request: int | None, shares: str, discount: str) -> dict[str, str]:
    if request is not None:
        browser("select", selector="#request", value=str(request))
    browser("fill", selector="#shares", value=shares)
    browser("fill", selector="#discount", value=discount)
    browser("click", selector="#submit")
    return browser.message()


def check_traffic(log: dict, origin: str, secrets: list[str]) -> list[dict]:
    """Every request went to the service's origin; bids left the page only sealed."""
    posts = []
    for r in log["requests"]:
        assert urlsplit(r["url"]).netloc == urlsplit(origin).netloc, r["url"]
        for secret in secrets:
            assert secret not in r["url"] and secret not in (r["body"] or ""), (secret, r)
        if r["method"] == "POST":
            body = json.loads(r["body"])
            assert sorted(body) == ["ciphertext", "controller", "redemption_id", "signature"]
            assert len(from_hex(body["ciphertext"])) == 368
            posts.append(body)
    assert not [p for p in log["problems"] if "Content Security Policy" in p or "Trusted Type" in p]
    return posts


def test_holder_bids_replaces_cancels_and_claims_from_the_page(stack, browser, monkeypatch):
    T, rid, other = stack.auction, stack.requests[0], stack.requests[1]
    settlement = stack.chain.settlement
    api = httpx.Client(base_url=stack.url, timeout=10)
    signer = to_checksum_address(stack.chain.receipt_signer())

    browser.open(stack.url, stack.holder_key, stack.anvil.url, ANVIL_CHAIN_ID)
    assert str(T) in browser("text", selector="#auction-id")
    assert (
        browser("text", selector="#bundle-hash") == stack.server.config.app.state.web_bundle_sha256
    )
    browser.screenshot("loaded")

    # connect: the key is checked against auctionKey(T), the requests come from the vault
    browser("click", selector="#connect")
    browser("wait", selector="#key-check.ok", contains="matches auctionKey(T)")
    assert browser("text", selector="#account").startswith(stack.holder)
    browser("wait", selector=f'#requests-body tr[data-redemption="{rid}"]')
    assert (
        browser("text", selector=f'#requests-body tr[data-redemption="{rid}"] .pending') == "1000"
    )
    browser("fill", selector="#shares", value="500")
    browser("fill", selector="#discount", value="2.5")
    preview = browser("text", selector="#preview")
    assert "give up 12.5 sUSDai (2.5 %)" in preview and "receive 487.5 USDai" in preview
    browser.screenshot("connected-form")

    # bid: sealed, signed twice in the wallet, receipt verified against receiptSigner()
    msg = bid(browser, rid, "500", "2.5")
    assert msg["kind"] == "ok" and "Bid accepted: receipt #" in msg["text"], msg
    shown = json.loads(browser("text", selector="#receipt-json"))
    status = api.get(f"/v1/auctions/{T}/bids/{rid}").json()
    assert status["status"] == "live" and status["receipt"] == shown
    assert to_checksum_address(receipt_of(shown).signer_address()) == signer
    download = browser("download", selector="#download-receipt")
    assert download["name"] == f"qev-receipt-{T}-{rid}-{shown['sequence']}.json"
    assert json.loads(download["content"]) == shown
    assert [e["status"] for e in journal(browser)] == ["live"]
    browser.screenshot("receipt")
    first_hash = shown["ciphertext_hash"]

    # replace: a new envelope supersedes the live one
    browser(
        "click", selector=f'#journal li[data-status="live"][data-redemption="{rid}"] button.replace'
    )
    msg = bid(browser, None, "500", "3")
    assert msg["kind"] == "ok" and msg["text"].startswith("Bid replaced"), msg
    status = api.get(f"/v1/auctions/{T}/bids/{rid}").json()
    assert status["receipt"]["ciphertext_hash"] != first_hash
    assert status["receipt"]["sequence"] > shown["sequence"]
    assert sorted(e["status"] for e in journal(browser)) == ["live", "superseded"]
    browser.screenshot("replaced")

    # cancel: a signed CancelBid (kind-1 receipt), then incrementNonce on-chain
    browser(
        "click", selector=f'#journal li[data-status="live"][data-redemption="{rid}"] button.cancel'
    )
    msg = browser.message(timeout=150_000)
    assert (
        msg["kind"] == "ok"
        and "cancel receipt #" in msg["text"]
        and "incrementNonce" in msg["text"]
    ), msg
    status = api.get(f"/v1/auctions/{T}/bids/{rid}").json()
    assert status["status"] == "cancelled" and status["cancel_receipt"]["kind"] == 1
    assert settlement.functions.nonce(T, rid).call() == 1
    assert to_checksum_address(receipt_of(status["cancel_receipt"]).signer_address()) == signer
    browser.screenshot("cancelled")

    # bid again (the page reads the new nonce), and bid on the second request
    msg = bid(browser, rid, "400", "2")
    assert msg["kind"] == "ok" and "Bid accepted" in msg["text"], msg
    browser("select", selector="#request", value=str(other))
    browser("click", selector="#max")
    msg = bid(
        browser,
        None,
        browser("evaluate", expression="document.getElementById('shares').value"),
        "1",
    )
    assert msg["kind"] == "ok", msg
    assert api.get(f"/v1/auctions/{T}/bids/{other}").json()["status"] == "live"
    # the holder cancels the second bid on-chain from elsewhere: it will be excluded
    stack.holder_tx(settlement.functions.incrementNonce(T, other))
    traffic = browser("log")
    posts = check_traffic(
        traffic, stack.url, [str(400 * E18), str(500 * E18), "0x" + format(400 * E18, "x")]
    )
    assert len(posts) == 4
    assert traffic["wallet"].count("eth_signTypedData_v4") == 2 * 4 + 1  # 4 bids, 1 cancel
    assert traffic["wallet"].count("eth_sendTransaction") == 1  # incrementNonce
    browser.screenshot("bids-live")

    # time passes T: the page shows the next auction, and T as closed
    stack.move_past(T + 1)
    browser("click", selector="#refresh")
    browser("wait", selector="#auction-id", contains=str(T + 30 * 86_400))
    browser(
        "wait",
        selector=f'#journal li[data-auction="{T}"] .result',
        contains="waiting for the keeper",
    )
    browser.screenshot("closed")

    # the keeper closes T but stops after the settlement, before it pushes the claims and
    # services the queue (as a keeper that is still busy, or down, would): the holder claims
    with monkeypatch.context() as m:
        m.setattr(Keeper, "_push_claims", lambda self, auction_id, report: None)
        m.setattr(Keeper, "_service_queue", lambda self, report: None)
        m.setattr(Keeper, "_reveal", lambda self, auction_id, secret, report: None)
        report = stack.keeper.close_auction(T)
    assert report.done == ["freeze", "clear", "settle"], report
    result = api.get(f"/v1/auctions/{T}/result").json()
    outcome = result["outcomes"][str(rid)]
    assert outcome["status"] == "filled" and outcome["shares_filled"] == str(400 * E18)
    assert [(e["redemption_id"], e["reason"]) for e in result["excluded"]] == [
        (str(other), "stale_nonce")
    ]

    browser("click", selector="#refresh")
    live = f'#journal li[data-auction="{T}"][data-status="live"][data-redemption="{rid}"]'
    text = browser("wait", selector=f"{live} .result", contains="filled")
    assert text.startswith("filled: 400 sUSDai filled, 8 given up, payout 392 USDai")
    assert "proof ✓ against the root settled on-chain; not claimed yet" in text
    proof = json.loads(browser("text", selector=f"{live} details.proof pre"))
    allocation = api.get(f"/v1/auctions/{T}/allocations/{rid}").json()
    assert proof["allocation_root"] == allocation["allocation_root"] == result["allocation_root"]
    assert proof["proof"] == allocation["proof"] and proof["leaf"] == allocation["leaf"]
    excluded = browser("text", selector=f'#journal li[data-redemption="{other}"] .result')
    assert excluded.startswith("excluded: stale_nonce (the nonce changed on-chain")
    superseded = browser("text", selector='#journal li[data-status="superseded"] .result')
    assert superseded == "replaced by a later bid"
    browser.screenshot("outcome")

    # claim from the page: the payout goes to the holder
    before = stack.chain.usdai.functions.balanceOf(stack.holder).call()
    browser("click", selector=f"{live} button.claim")
    msg = browser.message(timeout=150_000)
    assert msg["kind"] == "ok" and msg["text"].startswith("Claimed: 392 USDai paid to"), msg
    assert settlement.functions.isClaimed(T, rid).call()
    assert stack.chain.usdai.functions.balanceOf(stack.holder).call() - before == int(
        outcome["payout"]
    )
    browser("wait", selector=f"{live} .result", contains="; claimed")
    assert browser("count", selector=f"{live} button.claim") == 0
    browser.screenshot("claimed")

    # the keeper finishes: the leaf is already claimed, the rest of the queue is serviced
    report = stack.keeper.close_auction(T)
    assert "claims" in report.skipped and "service" in report.done, report

    # the journal survives a reload
    browser("reload")
    assert len(journal(browser)) == 4
    browser("wait", selector=f"{live} .result", contains="; claimed")
    check_traffic(browser("log"), stack.url, [])
    browser.screenshot("reloaded")
    assert len(browser.shots) == 10


def test_bad_input_shows_a_message_and_sends_nothing(stack, browser):
    T, rid = stack.auction, stack.requests[0]
    api = httpx.Client(base_url=stack.url, timeout=10)
    browser.open(stack.url, stack.holder_key, stack.anvil.url, ANVIL_CHAIN_ID)

    msg = bid(browser, None, "500", "2.5")  # no wallet yet
    assert msg == {"kind": "error", "text": "Connect a wallet first."}
    browser("click", selector="#connect")
    browser("wait", selector="#key-check.ok")
    browser("wait", selector=f'#requests-body tr[data-redemption="{rid}"]')
    browser("log")  # forget the page's reads so far

    cases = [
        ("0", "2.5", "Enter a number of shares greater than 0.", "zero-shares"),
        ("abc", "2.5", "Enter the shares as a number of sUSDai", "shares-not-a-number"),
        (
            "1000.5",
            "2.5",
            f"Request #{rid} has only 1000 sUSDai pending: bid at most that.",
            "over-pending",
        ),
        ("500", "0.05", "The discount must be between 0.1 % and 100 %", "discount-too-low"),
        ("500", "150", "The discount must be between 0.1 % and 100 %", "discount-too-high"),
        (
            "500",
            "2.555",
            "Enter the discount in percent with at most two decimals",
            "discount-precision",
        ),
    ]
    for shares, discount, expected, name in cases:
        msg = bid(browser, rid, shares, discount)
        assert msg["kind"] == "error" and msg["text"].startswith(expected), (name, msg)
        browser.screenshot(f"bad-{name}")

    # wrong network: said at once, and the form refuses
    browser("set_chain", chainId=1)
    browser("wait", selector="#message", contains="Wrong network")
    assert "(wrong network)" in browser("text", selector="#account")
    msg = bid(browser, None, "500", "2.5")
    assert msg["kind"] == "error" and msg["text"].startswith(
        "Wrong network: your wallet is on chain 1"
    ), msg
    browser.screenshot("bad-wrong-network")
    browser("click", selector="#switch-network")
    browser("wait", selector="#key-check.ok")
    assert "(wrong network)" not in browser("text", selector="#account")

    # the wallet refuses to sign: nothing is sent
    browser("reject", methods=["eth_signTypedData_v4"])
    msg = bid(browser, rid, "500", "2.5")
    assert msg == {
        "kind": "error",
        "text": "You rejected the request in your wallet. Nothing was sent.",
    }
    browser("reject", methods=[])
    browser.screenshot("bad-rejected-in-wallet")

    log = browser("log")
    assert not [r for r in log["requests"] if r["method"] != "GET"], log["requests"]
    assert "eth_sendTransaction" not in log["wallet"]
    assert log["wallet"].count("eth_signTypedData_v4") == 1  # the one the wallet refused
    assert api.get(f"/v1/auctions/{T}/bids/{rid}").json()["code"] == "not_found"

    # the service goes down: the page says so before anything is signed
    stack.stop_service()
    msg = bid(browser, rid, "500", "2.5")
    assert msg["kind"] == "error", msg
    assert msg["text"].startswith("The service cannot be reached. Nothing was signed or sent"), msg
    browser.screenshot("bad-service-down")
    log = browser("log")
    assert not [r for r in log["requests"] if r["method"] != "GET"], log["requests"]
    assert (
        "eth_signTypedData_v4" not in log["wallet"] and "eth_sendTransaction" not in log["wallet"]
    )
    assert Path(browser.shots[-1]).exists()
