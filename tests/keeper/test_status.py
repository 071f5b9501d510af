"""``qev.status`` on the py-evm month: the auction before T, past T, settled with its claims
not pushed, and revealed; with and without the service's documents (the real app in
process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from clearing.calendar import AuctionCalendar
from clearing.errors import ChainReadError
from clearing.hashing import keccak256
from clearing.hexcodec import to_hex
from clearing.sealing import derive_auction_secret, public_key_of
from clearing.store.base import BidStore
from keeper.chain import E18
from keeper.errors import FatalError
from keeper.loop import tick
from qev.status import (
    AuctionStatus,
    collect_status,
    countdown,
    format_amount,
    format_time,
    render_status,
    status_json,
)

from .conftest import Env
from .month import MASTER, RESULT, SERVICE_KEY, SETTLEMENT, Month, W, artifact, expected_book_root

Documents = Callable[[str], object | None]


@contextmanager
def service(month: Month, store: BidStore, tmp: Path) -> Iterator[Documents]:
    """The service's documents as ``qev status`` gets them: parsed JSON, None when not there."""
    from fastapi.testclient import TestClient

    from clearing.api.server import build_app
    from clearing.api.settings import ServiceSettings
    from keeper.redemptions import Web3Redemptions

    (tmp / "service.key").write_text(SERVICE_KEY.hex())
    (tmp / "service.key").chmod(0o600)
    settings = ServiceSettings.model_validate(  # store_url coerced, whatever its type
        {
            "store_url": f"sqlite:///{tmp / 'unused.db'}",
            "chain_id": month.domain.chain_id,
            "settlement": month.deployment.settlement,
            "genesis": month.genesis,
            "service_key_file": tmp / "service.key",
        }
    )
    app = build_app(
        settings,
        Web3Redemptions(month.chain),
        store=store,
        clock=lambda: int(month.w3.eth.get_block("latest")["timestamp"]),
    )
    with TestClient(app) as client:

        def get(path: str) -> object | None:
            r = client.get(path)
            return r.json() if r.status_code == 200 else None

        yield get


def status_of(m: Month, auction_id: int, documents: Documents | None = None) -> AuctionStatus:
    _, now = m.chain.latest_block()
    return collect_status(
        m.chain, auction_id, now=now, calendar=AuctionCalendar(m.genesis), documents=documents
    )


def lines(status: AuctionStatus) -> dict[str, list[str]]:
    """The rendered text as label -> values (continuation lines join their label's list)."""
    rows = render_status(status).splitlines()
    width = rows[0].index(str(status.auction_id))  # the value column
    out: dict[str, list[str]] = {}
    label = ""
    for row in rows:
        head, value = row[:width].strip(), row[width:]
        assert head or label, row
        assert value and not value.startswith(" "), row  # every value starts in one column
        label = head or label
        out.setdefault(label, []).append(value)
    return out


def amount(wei: int | str) -> str:
    return format_amount(int(wei), places=6)


def queue_views(m: Month) -> tuple[int, int, int, int]:
    """(pending shares, locked shares, USDai set aside, free liquidity) read here directly."""
    pending = int(m.chain.vault.functions.redemptionQueueInfo().call()[3])
    held, aside = m.chain.vault.functions.balances().call()
    return pending, int(m.chain.vault.functions.qevLockedShares().call()), aside, held - aside


class Refusing:
    """A housekeeping lane whose node refuses every transaction (claims, queue)."""

    def __init__(self, real: Any) -> None:
        self.real, self.refused = real, 0

    @property
    def address(self) -> str:
        return str(self.real.address)

    def simulate(self, fn: Any, *, block: int | str = "pending") -> bytes:
        return bytes(self.real.simulate(fn, block=block))

    def send(self, fn: Any, *, label: str) -> Any:
        self.refused += 1
        raise FatalError(f"{label}: refused by the test")


def test_units() -> None:
    assert format_amount(0) == "0"
    assert format_amount(1) == "0.000000000000000001"
    assert format_amount(1, places=6) == "<0.000001"
    assert format_amount(1_234_567 * E18 + 5 * E18 // 10) == "1,234,567.5"
    assert format_amount(2 * E18 + 123_456_789, places=6) == "2"
    assert format_amount(1_005_999_999_999_999_999, places=6) == "1.005999"  # cut, not rounded
    assert format_amount(-2 * E18) == "-2"
    assert format_time(1_767_225_600) == "2026-01-01T00:00:00Z"
    assert countdown(1_000 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5, 1_000) == "in 2d 03:04:05"
    assert countdown(1_000 + 65, 1_000) == "in 00:01:05"
    assert countdown(1_000, 1_000) == "now"
    assert countdown(1_000, 1_030) == "30 s ago"
    assert countdown(1_000, 1_000 + 5 * 60 + 59) == "5 min ago"
    assert countdown(1_000, 1_000 + 3 * 3_600 + 120) == "3 h 2 min ago"
    assert countdown(1_000, 1_000 + 2 * 86_400 + 7_200) == "2 d 2 h ago"


def test_before_t_the_next_auction_is_open(env: Env, tmp_path: Path) -> None:
    m = env.month
    store = env.store()
    nxt = m.auction_id + W
    _, now = m.chain.latest_block()
    assert now == m.auction_id + 60  # the month ends one minute past T
    with service(m, store, tmp_path) as docs:
        before = status_of(m, nxt, docs)
        assert (before.status, before.key_committed, before.public_key) == ("open", False, None)
        assert m.keeper(store).open_auction(nxt)  # one block, a second or so later
        s = status_of(m, nxt, docs)
    _, now = m.chain.latest_block()
    secret = derive_auction_secret(MASTER, nxt)
    assert (s.auction_id, s.opens_at, s.closes_at, s.now) == (nxt, m.auction_id, nxt, now)
    assert (s.status, s.key_committed, s.revealed) == ("open", True, False)
    assert s.public_key == to_hex(public_key_of(secret))
    assert s.commitment == to_hex(keccak256(secret))
    assert s.service is not None
    assert (s.service.status, s.bids) == ("open", None)  # counts are published at close
    assert (s.book_root, s.settlement) == (None, None)
    # the queue: every request still pending, nothing locked or set aside yet
    assert s.queue.pending_shares == sum(m.pending.values())
    assert (s.queue.locked_shares, s.queue.set_aside) == (0, 0)
    assert (s.queue.free_liquidity, s.queue.share_price) == (m.free_liquidity, m.price)
    assert s.queue.serviceable_shares > 0  # matured requests wait for the close

    text = lines(s)
    assert text["auction"] == [str(nxt)]
    assert text["window"] == [f"{format_time(m.auction_id)} .. {format_time(nxt)}"]
    assert text["status"] == ["open"]
    assert now - m.auction_id < 120
    assert text["closes"] == [f"{format_time(nxt)} ({countdown(nxt, now)})"]
    assert text["closes"][0].startswith(f"{format_time(nxt)} (in 29d 23:5")
    assert text["bids"] == ["unknown (published at close), service: open"]
    assert text["key committed"] == [
        f"yes, public key {to_hex(public_key_of(secret))}",
        f"commitment {to_hex(keccak256(secret))}",
    ]
    assert text["book root"] == ["not on-chain yet"]
    assert (text["settlement"], text["claims"]) == (["not settled"], ["-"])
    assert text["queue"][0] == f"pending {amount(sum(m.pending.values()))} sUSDai (locked 0 sUSDai)"
    assert text["queue"][2] == f"set aside 0 USDai, free liquidity {amount(m.free_liquidity)} USDai"
    assert text["reveal"] == ["not revealed"]

    doc = status_json(s)
    assert (doc["closes_in_s"], doc["bids"], doc["settlement"], doc["claims"]) == (
        nxt - now,
        None,
        None,
        None,
    )
    assert doc["queue"]["pending_shares"] == str(sum(m.pending.values()))


def test_past_t_before_the_keeper_closes(env: Env, tmp_path: Path) -> None:
    m = env.month
    store = env.store()
    with service(m, store, tmp_path) as docs:
        s = status_of(m, m.auction_id, docs)
    assert (s.status, s.key_committed, s.revealed) == ("closing", True, False)
    assert s.service is not None
    assert s.service.status == "closed"
    assert s.bids == len(m.plan) == 15  # the live envelopes, the service's unfrozen book
    assert s.service.book_frozen is False
    assert s.service.book_root == to_hex(expected_book_root(m))
    assert (s.book_root, s.settlement) == (None, None)  # nothing on-chain yet
    text = lines(s)
    assert text["status"] == ["closing"]
    assert text["closes"] == [f"{format_time(m.auction_id)} (1 min ago)"]
    assert text["bids"] == ["15 live envelopes, book not frozen yet, service: closed"]
    assert text["book root"] == [
        f"{to_hex(expected_book_root(m))} (service, not frozen yet; not on-chain yet)"
    ]

    # without the service the count is unknown; the chain still answers
    alone = status_of(m, m.auction_id)
    assert (alone.service, alone.bids, alone.status) == (None, None, "closing")
    assert lines(alone)["bids"] == ["unknown (no service given)"]
    assert status_json(alone)["bids"] is None


def test_settled_with_claims_not_pushed(env: Env, tmp_path: Path) -> None:
    m = env.month
    store = env.store()
    house = Refusing(m.keeper(store).housekeeping)
    keeper = m.keeper(store, house=house)
    with pytest.raises(FatalError, match="claimMultiple"):
        keeper.close_auction(m.auction_id)
    assert house.refused == 1
    result, settlement = (
        artifact(store, m.auction_id, RESULT),
        artifact(store, m.auction_id, SETTLEMENT),
    )
    with service(m, store, tmp_path) as docs:
        s = status_of(m, m.auction_id, docs)
    assert (s.status, s.revealed) == ("settled", False)
    st = s.settlement
    assert st is not None
    book_root = to_hex(expected_book_root(m))
    assert s.book_root == st.bid_book_root == result["bid_book_root"] == book_root
    assert st.allocation_root == result["allocation_root"]
    assert (st.total_shares, st.total_burnt, st.total_payout) == (
        int(result["total_shares"]),
        int(result["total_burnt"]),
        int(result["total_payout"]),
    )
    assert st.fee_shares == int(result["admin_fee_shares"])
    assert (st.tx_hash, st.tx_block) == (settlement["tx"], settlement["block"])
    assert st.tx_hash == result["settlement_tx"]
    assert st.settled_at == m.w3.eth.get_block(settlement["block"])["timestamp"]
    assert (st.claimed_shares, st.claimed_payout, st.claims_complete) == (0, 0, False)
    # the queue: the winners' filled shares are locked until claimed; nothing serviced
    pending, locked, aside, free = queue_views(m)
    assert s.queue.locked_shares == locked == st.total_shares
    assert (
        (s.queue.pending_shares, s.queue.set_aside)
        == (pending, aside)
        == (
            sum(m.pending.values()),
            0,
        )
    )
    assert s.queue.free_liquidity == free == m.free_liquidity - st.total_payout
    assert s.queue.serviceable_shares > 0
    assert s.service is not None
    assert (s.service.status, s.bids, s.service.book_frozen) == ("settled", 15, True)
    assert (s.service.valid, s.service.excluded, s.service.winners) == (
        len(result["outcomes"]),
        len(result["excluded"]),
        result["winners"],
    )

    text = lines(s)
    assert text["status"] == ["settled"]
    assert text["book root"] == [f"{book_root} (on-chain)"]
    assert text["settlement"][1] == f"tx {st.tx_hash} (block {st.tx_block})"
    assert text["settlement"][2] == f"allocation root {result['allocation_root']}"
    assert text["settlement"][3] == (
        f"filled {amount(result['total_shares'])} sUSDai, "
        f"burnt {amount(result['total_burnt'])} sUSDai"
    )
    assert text["claims"] == [
        f"0 sUSDai of {amount(result['total_shares'])} sUSDai",
        f"0 USDai of {amount(result['total_payout'])} USDai: pending",
    ]
    assert text["bids"] == [
        f"15 live envelopes, book frozen, {len(result['outcomes'])} valid, "
        f"{len(result['excluded'])} excluded, {result['winners']} winners, service: settled"
    ]
    assert text["reveal"] == ["not revealed"]
    doc = status_json(s)
    assert doc["settlement"]["total_payout"] == result["total_payout"]
    assert doc["claims"] == {
        "claimed_shares": "0",
        "claimed_payout": "0",
        "total_shares": result["total_shares"],
        "total_payout": result["total_payout"],
        "complete": False,
    }
    assert doc["queue"]["locked_shares"] == result["total_shares"]


def test_revealed_after_the_whole_close(env: Env, tmp_path: Path) -> None:
    m = env.month
    store = env.store()
    assert tick(m.keeper(store), AuctionCalendar(m.genesis), 3) == [m.auction_id]
    result = artifact(store, m.auction_id, RESULT)
    with service(m, store, tmp_path) as docs:
        s = status_of(m, m.auction_id, docs)
    assert (s.status, s.revealed, s.key_committed) == ("revealed", True, True)
    st = s.settlement
    assert st is not None
    assert st.claims_complete
    assert (st.claimed_shares, st.claimed_payout) == (
        int(result["total_shares"]),
        int(result["total_payout"]),
    )
    pending, locked, aside, free = queue_views(m)
    assert (s.queue.pending_shares, s.queue.locked_shares) == (pending, locked)
    assert locked == 0
    assert (s.queue.set_aside, s.queue.free_liquidity) == (aside, free)
    assert aside > 0  # the FIFO queue was serviced
    assert s.queue.serviceable_shares == 0  # and got everything the liquidity could pay
    text = lines(s)
    assert text["status"] == ["revealed"]
    assert text["reveal"] == ["revealed"]
    assert text["claims"] == [
        f"{amount(result['total_shares'])} sUSDai of {amount(result['total_shares'])} sUSDai",
        f"{amount(result['total_payout'])} USDai of {amount(result['total_payout'])} USDai: "
        "all pushed",
    ]
    assert text["queue"][1] == "nothing serviceable now"
    assert (
        text["queue"][2] == f"set aside {amount(aside)} USDai, free liquidity {amount(free)} USDai"
    )
    doc = status_json(s)
    assert (doc["status"], doc["revealed"], doc["claims"]["complete"]) == ("revealed", True, True)
    assert doc["settlement"]["tx"] == result["settlement_tx"]
    assert doc["queue"]["set_aside"] == str(aside)
    assert doc["service"]["status"] == "revealed"


def test_the_service_and_the_event_lookup_are_optional(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = env.month
    store = env.store()
    tick(m.keeper(store), AuctionCalendar(m.genesis), 3)

    def unreachable(path: str) -> object | None:
        raise ConnectionError(f"connect to http://user:secret@service.example{path} refused")

    def no_logs(*_: Any) -> None:
        raise ChainReadError("AuctionSettled logs failed: range too large")

    monkeypatch.setattr(m.chain, "settlement_tx", no_logs)
    s = status_of(m, m.auction_id, unreachable)
    assert s.status == "revealed"
    assert s.settlement is not None and s.settlement.tx_hash is None
    assert s.service is not None and (s.service.status, s.bids) == (None, None)
    assert (
        s.notes[0]
        == "settlement transaction not found: AuctionSettled logs failed: range too large"
    )
    base = f"/v1/auctions/{m.auction_id}"
    refused = "ConnectionError: connect to http://***@service.example/... refused"  # redacted
    # the auction document and the book; no /result without a service status that has one
    assert s.notes[1:] == (f"{base}: {refused}", f"{base}/book: {refused}")
    text = lines(s)
    assert text["settlement"][1] == "tx not found"
    assert text["bids"] == ["unknown (book not available)"]
    assert text["note"] == list(s.notes)
    assert status_json(s)["notes"] == list(s.notes)

    with pytest.raises(ValueError, match="not an auction id"):
        status_of(m, m.auction_id + 1)
