"""Threshold mode end to end (PROTOCOL 10): the keeper commits the DKG's key, holders bid to
it over HTTP, no two keypers can open a bid before release, the close commits the book and
then waits loudly (ERROR lines, a gauge, the loop's error metric) until three keypers
release, any three released shares open every bid, and verification passes."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from clearing import threshold as th
from clearing.calendar import AuctionCalendar
from clearing.dkg import board_from_document
from clearing.errors import DecryptionError
from clearing.hexcodec import to_hex
from clearing.sealing import bid_info, open_sealed, public_key_of
from keeper.keyper import Keyper, dealer_polynomial
from keeper.loop import KeeperMetrics, tick
from keeper.threshold_key import SharesShortError, book_commitment
from keeper.verify import fetch_documents, verify_documents
from keeper.verify_threshold import read_threshold_documents, write_threshold_documents
from qev.cli import main
from qev.sdk import BidderClient

from .support import E18, T_OF_N, Net, W


def _board(net: Net) -> Any:
    r = httpx.get(f"{net.url}/v1/auctions/{net.world.auction_id}/dkg", timeout=30)
    return board_from_document(r.json(), net.world.domain)


def _bids(net: Net) -> list[bytes]:
    """Every holder bids through the SDK (key and receipt signer pinned from the chain)."""
    w = net.world
    ciphertexts = []
    for i, (holder, rid) in enumerate(zip(w.holders, w.rids, strict=True)):
        client = BidderClient(net.url, holder, chain=w.chain)
        try:
            done = client.bid(rid, (100 + 10 * i) * E18, 200 + 150 * i)
        finally:
            client.close()
        ciphertexts.append(done.envelope.ciphertext)
    return ciphertexts


def _opens(ciphertext: bytes, key: bytes, info: bytes) -> bool:
    try:
        open_sealed(ciphertext, key, info)
    except DecryptionError:
        return False
    return True


def test_threshold_month_end_to_end(
    net: Net, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = net.world
    keypers = net.committee()
    keys = net.threshold_keys()
    keeper = net.keeper(keys)
    w.advance_to(w.schedule.opens_at + 10)
    assert keeper.open_auction(w.auction_id) is False  # the DKG has not even started
    net.run_dkg(keypers, finish=False)
    assert keeper.open_auction(w.auction_id) is False  # not final yet
    w.advance_to(w.schedule.final_at + 60)
    assert keeper.open_auction(w.auction_id) is True
    assert keeper.open_auction(w.auction_id) is False  # idempotent
    state = w.chain.key_state(w.auction_id)
    board = _board(net)
    outcome = board.outcome(w.domain.chain_id, w.domain.verifying_contract)
    assert (state.public_key, state.commitment) == (outcome.public_key, outcome.transcript_hash)

    ciphertexts = _bids(net)
    info = bid_info(w.domain.chain_id, w.domain.verifying_contract, w.auction_id)
    # before release: any two keypers pooling all they hold (secret shares, the shares dealt
    # to them, their own polynomials) open nothing
    shares = {j: k.secret_share(board, j) for j, k in enumerate(keypers, start=1)}
    for a, b in itertools.combinations(range(1, 6), 2):
        polys = [
            dealer_polynomial(w.identities[j - 1], w.domain, w.auction_id, board.committee)
            for j in (a, b)
        ]
        guesses = [
            th.combine({a: shares[a], b: shares[b]}, 2),
            shares[a],
            shares[b],
            (shares[a] + shares[b]) % th.L,
            (polys[0].coefficients[0] + polys[1].coefficients[0]) % th.L,
        ]
        for guess in guesses:
            key = th.x25519_private_key(guess)
            assert public_key_of(key) != state.public_key
            assert not any(_opens(c, key, info) for c in ciphertexts)

    # after T: the book is frozen and committed, then the close waits for shares, loudly
    w.advance_to(w.auction_id + 60)
    for k in keypers:  # nobody releases before commitBook
        assert k.release(w.auction_id, w.now()) == []
    assert not book_commitment(w.chain, w.auction_id).committed
    caplog.set_level(logging.INFO, logger="qev.keeper")
    with pytest.raises(SharesShortError, match="0 valid key shares of the 3"):
        keeper.close_auction(w.auction_id)
    assert book_commitment(w.chain, w.auction_id).committed
    assert keeper.store.get_artifact(w.auction_id, "result") is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "0 of 3 key shares released" in errors[-1].getMessage()
    assert keys.shares_gauge.labels(auction=str(w.auction_id), threshold="3")._value.get() == 0

    # two keypers release: still short; the loop logs "needs attention" and counts it
    for j in (1, 4):
        assert keypers[j - 1].release(w.auction_id, w.now()) == [f"share {w.auction_id} {j}"]
    metrics = KeeperMetrics()
    calendar = AuctionCalendar(w.genesis, W)
    caplog.clear()
    from keeper.loop import run

    run(
        keeper,
        calendar,
        poll_seconds=1,
        lookback=3,
        metrics=metrics,
        sleep=lambda _: None,
        iterations=1,
    )
    assert metrics.errors.labels("not_enough_shares")._value.get() == 1
    assert any(
        r.levelno == logging.ERROR and "2 of 3 key shares released" in r.getMessage()
        for r in caplog.records
    )
    assert any(
        r.levelno == logging.ERROR and r.getMessage().startswith("needs attention")
        for r in caplog.records
    )
    # a third keyper releases (keyper 5 stays offline): the close finishes
    assert keypers[1].release(w.auction_id, w.now()) == [f"share {w.auction_id} 2"]
    assert keypers[1].release(w.auction_id, w.now()) == []  # idempotent
    assert tick(keeper, calendar, 3) == [w.auction_id]
    assert keys.shares_gauge.labels(auction=str(w.auction_id), threshold="3")._value.get() == 3
    assert w.chain.is_settled(w.auction_id)
    revealed = w.chain.key_state(w.auction_id)
    assert revealed.revealed and public_key_of(revealed.private_key) == state.public_key
    # any three released shares open every bid; the revealed key is their combination
    released = {j: s.share for j, s in _board(net).shares.items()}
    assert sorted(released) == [1, 2, 4]
    sk = th.x25519_private_key(th.combine(released, T_OF_N))
    assert sk == revealed.private_key
    assert all(_opens(c, sk, info) for c in ciphertexts)
    result = keeper.store.get_artifact(w.auction_id, "result")
    assert result is not None and b'"excluded":[]' in result

    # an outsider verifies everything, the threshold part included, from HTTP and a folder
    def get(path: str) -> Any:
        r = httpx.get(net.url + path, timeout=30)
        if r.status_code == 409 and path.endswith("allocation-tree"):
            return None
        r.raise_for_status()
        return r.json()

    docs = fetch_documents(get, w.auction_id)
    assert docs["key"]["key_mode"] == "threshold"
    report = verify_documents(docs, w.chain)
    assert report.ok, report.differences
    for check in (
        "transcript hash (recomputed)",
        "on-chain commitment = transcript hash",
        "released share 4: s_j * B == S_j",
        "shares [1, 2, 4] combine to the revealed key",
        "on-chain committed book root (commitBook)",
    ):
        assert check in report.checks
    assert "on-chain key commitment" not in report.checks  # the single-mode check
    folder = tmp_path / "published"
    folder.mkdir()
    import json

    from keeper.verify import DOCUMENT_FILES

    for name, file in DOCUMENT_FILES.items():
        (folder / file).write_text(json.dumps(docs[name]))
    write_threshold_documents(folder, docs)
    again: dict[str, Any] = {}
    read_threshold_documents(folder, again)
    assert again["transcript"] == docs["transcript"]
    assert main(["verify", "--dir", str(folder)]) == 0
    # tampering is found: a share swapped, a dealer dropped from the transcript
    tampered = json.loads(json.dumps(docs))
    tampered["shares"]["shares"][0]["share"] = str(released[2])
    assert not verify_documents(tampered, w.chain).ok
    dropped = json.loads(json.dumps(docs))
    dropped["transcript"]["deals"] = dropped["transcript"]["deals"][1:]
    got = verify_documents(dropped, w.chain).differences
    assert any(d.startswith("transcript hash (recomputed)") for d in got)
    assert to_hex(outcome.public_key) == docs["auction"]["public_key"]


def test_a_keyper_never_releases_for_another_key(net: Net) -> None:
    """A key committed on-chain that is not the board's DKG gets no share."""
    w = net.world
    keypers = net.committee()
    net.run_dkg(keypers)
    from keeper.deploy import transact

    transact(
        w.w3,
        w.chain.settlement.functions.commitAuctionKey(w.auction_id, b"\x09" * 32, b"\x08" * 32),
        w.urgent.address,
    )
    w.advance_to(w.auction_id + 10)
    transact(
        w.w3,
        w.chain.settlement.functions.commitBook(w.auction_id, bytes(32), 0),
        w.urgent.address,
    )
    assert all(k.release(w.auction_id, w.now()) == [] for k in keypers)
    assert _board(net).shares == {}
    keeper = net.keeper()
    from keeper.jobs import KeeperStateError

    with pytest.raises(KeeperStateError, match="not the board's DKG"):
        keeper.close_auction(w.auction_id)


def test_keyper_killed_mid_dkg_and_restarted(net: Net) -> None:
    """Keyper 1 dies right after the service stored its deal (the answer lost), and again
    right after its complaint; each restart (a new process: new objects, nothing kept)
    finds its messages on the board, posts nothing twice and ends with a valid share."""
    from .test_dkg_http import WrongShare

    w = net.world
    s = w.schedule

    class DiesAfterPost:
        """A board client whose process dies once the service has stored the post."""

        def __init__(self, inner: Any, kind: str) -> None:
            self.inner, self.kind = inner, kind

        def board(self, auction_id: int) -> Any:
            return self.inner.board(auction_id)

        def post(self, auction_id: int, path: str, body: dict[str, Any]) -> Any:
            stored = self.inner.post(auction_id, path, body)
            if path == self.kind:
                raise KeyboardInterrupt(f"killed after {path} was stored")
            return stored

    others = [net.keyper(2), net.keyper(3, WrongShare), net.keyper(4), net.keyper(5)]
    w.advance_to(s.opens_at + 10)
    first = net.keyper(1)
    first.http = DiesAfterPost(first.http, "deals")  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        first.run_dkg(w.auction_id, w.now())
    restarted = net.keyper(1)
    assert restarted.run_dkg(w.auction_id, w.now()) == []  # its deal is there already
    for k in others:
        k.run_dkg(w.auction_id, w.now())
    w.advance_to(s.deals_end + 10)
    dying = net.keyper(1)
    dying.http = DiesAfterPost(dying.http, "complaints")  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        dying.run_dkg(w.auction_id, w.now())
    again = net.keyper(1)
    assert again.run_dkg(w.auction_id, w.now()) == []  # the complaint is there already
    for k in others:
        k.run_dkg(w.auction_id, w.now())
    w.advance_to(s.complaints_end + 10)
    for k in [again, *others]:
        k.run_dkg(w.auction_id, w.now())
    w.advance_to(s.final_at + 60)
    board = _board(net)
    assert [d.dealer for d in board.deals.values()].count(1) == 1
    assert set(board.complaints) == {(1, 3)} and set(board.answers) == {(3, 1)}
    outcome = board.outcome(w.domain.chain_id, w.domain.verifying_contract)
    assert outcome.qualified == {1, 2, 3, 4, 5}
    # the deal on the board is the restarted keyper's own polynomial
    poly = dealer_polynomial(w.identities[0], w.domain, w.auction_id, board.committee)
    assert board.deals[1].commitments == th.commitments(poly)
    # after the DKG, a keyper restarted once more derives its share from the board alone
    fresh: Keyper = net.keyper(1)
    share = fresh.secret_share(board, 1)
    assert th.released_share_is_valid(share, outcome.public_shares[1])
    keeper = net.keeper()
    assert keeper.open_auction(w.auction_id) is True
    w.advance_to(w.auction_id + 10)
    with pytest.raises(SharesShortError):
        keeper.close_auction(w.auction_id)
    for k in (fresh, others[0], others[1]):
        k.release(w.auction_id, w.now())
    report = keeper.close_auction(w.auction_id)
    # no bids: no claims; the book (stored once opened) is frozen again from the store
    assert report.done == ["freeze", "clear", "settle", "service", "reveal"]
    assert w.chain.key_state(w.auction_id).revealed
