"""Bad bulletin-board input on each route (PROTOCOL 10.2): every refusal is an RFC 9457
problem with its stable code, nothing refused is stored, the same message again is 200."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from clearing import threshold as th
from clearing.api.board import BulletinBoard
from clearing.dkg import (
    Committee,
    DkgAnswer,
    DkgComplaint,
    DkgDeal,
    DkgFailedError,
    DkgShare,
    NoCommitteeError,
    board_from_document,
    sign,
)
from clearing.signing import Signer
from keeper.deploy import transact

from .support import Net, W, key, problem


def _post(net: Net, path: str, body: object, auction: int | None = None) -> httpx.Response:
    t = net.world.auction_id if auction is None else auction
    return httpx.post(f"{net.url}/v1/auctions/{t}/dkg/{path}", json=body, timeout=30)


def _get(net: Net, path: str = "", auction: int | None = None) -> httpx.Response:
    t = net.world.auction_id if auction is None else auction
    return httpx.get(f"{net.url}/v1/auctions/{t}/dkg{path}", timeout=30)


def _deal(net: Net, j: int) -> DkgDeal:
    k = net.keyper(j)
    committee = k.committees.committee_for(net.world.auction_id)
    assert committee is not None
    return k.make_deal(net.world.auction_id, committee, j)


def _signed(net: Net, message, j: int):  # type: ignore[no-untyped-def]
    return sign(message, net.world.keyper_accounts[j - 1], net.world.domain)


def test_deals_route(net: Net) -> None:
    w = net.world
    w.advance_to(w.schedule.opens_at + 10)
    deal = _signed(net, _deal(net, 1), 1)
    body = deal.to_json()
    # malformed bodies
    assert problem(_post(net, "deals", [1, 2])) == (400, "malformed")
    assert problem(_post(net, "deals", {**body, "extra": 1})) == (400, "malformed")
    assert problem(_post(net, "deals", {k: v for k, v in body.items() if k != "dealer"})) == (
        400,
        "malformed",
    )
    assert problem(_post(net, "deals", {**body, "dealer": "1"})) == (400, "malformed")
    assert problem(_post(net, "deals", {**body, "commitments": ["0x12"]})) == (400, "malformed")
    short = _signed(net, replace(deal, commitments=deal.commitments[:-1]), 1)
    assert problem(_post(net, "deals", short.to_json())) == (400, "malformed")
    not_points = _signed(net, replace(deal, commitments=(b"\x01" * 32,) * 3), 1)
    assert problem(_post(net, "deals", not_points.to_json())) == (400, "malformed")
    missing = _signed(net, replace(deal, sealed_shares=deal.sealed_shares[:4]), 1)
    assert problem(_post(net, "deals", missing.to_json())) == (400, "malformed")
    # signatures: not recoverable, another keyper's, a stranger's, an index off the committee
    assert problem(_post(net, "deals", {**body, "signature": "0x" + "00" * 65})) == (
        400,
        "bad_signature",
    )
    assert problem(_post(net, "deals", _signed(net, deal, 2).to_json())) == (403, "not_keyper")
    stranger = sign(deal, Signer(key("stranger")), w.domain)
    assert problem(_post(net, "deals", stranger.to_json())) == (403, "not_keyper")
    off = _signed(net, replace(deal, dealer=9), 1)
    assert problem(_post(net, "deals", off.to_json())) == (403, "not_keyper")
    # another auction: in the body, or a path that is no open auction
    other = _signed(net, replace(deal, auction_id=w.auction_id + W), 1)
    assert problem(_post(net, "deals", other.to_json())) == (400, "wrong_auction")
    assert problem(_post(net, "deals", other.to_json(), auction=w.auction_id + W)) == (
        404,
        "unknown_auction",
    )
    assert problem(_post(net, "deals", body, auction=w.auction_id + 1)) == (404, "unknown_auction")
    # too large for the service's body cap
    huge = {**body, "sealed_shares": body["sealed_shares"] * 20}
    assert problem(_post(net, "deals", huge)) == (413, "payload_too_large")
    assert _get(net).json()["deals"] == []  # nothing refused was stored
    # accepted once; the same bytes again are 200; another deal of dealer 1 is a duplicate
    first = _post(net, "deals", body)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "created" and first.json()["message"] == body
    again = _post(net, "deals", body)
    assert again.status_code == 200 and again.json()["received_at"] == first.json()["received_at"]
    reseal = _signed(net, _deal(net, 1), 1)  # same polynomial, fresh HPKE sealing
    assert reseal.to_json() != body
    assert problem(_post(net, "deals", reseal.to_json())) == (409, "duplicate")
    # late
    w.advance_to(w.schedule.deals_end)
    late = _signed(net, _deal(net, 2), 2)
    assert problem(_post(net, "deals", late.to_json())) == (409, "too_late")
    assert [d["dealer"] for d in _get(net, "/deals").json()["deals"]] == [1]


def test_complaints_and_answers_routes(net: Net) -> None:
    w = net.world
    w.advance_to(w.schedule.opens_at + 10)
    assert _post(net, "deals", _signed(net, _deal(net, 1), 1).to_json()).status_code == 201
    complaint = _signed(net, DkgComplaint(w.auction_id, b"", 2, 1), 2)
    self_complaint = _signed(net, DkgComplaint(w.auction_id, b"", 2, 2), 2)
    assert problem(_post(net, "complaints", self_complaint.to_json())) == (400, "malformed")
    by_dealer = _signed(net, complaint, 1)  # signed by the accused, not the complainer
    assert problem(_post(net, "complaints", by_dealer.to_json())) == (403, "not_keyper")
    # an answer before any complaint
    poly = net.keyper(1).polynomial(w.auction_id, _committee(net))
    answer = _signed(net, DkgAnswer(w.auction_id, b"", 1, 2, poly(2)), 1)
    assert problem(_post(net, "answers", answer.to_json())) == (409, "no_complaint")
    w.advance_to(w.schedule.deals_end + 10)
    assert _post(net, "complaints", complaint.to_json()).status_code == 201
    assert _post(net, "complaints", complaint.to_json()).status_code == 200
    assert problem(_post(net, "answers", {**answer.to_json(), "share": "-1"})) == (400, "malformed")
    assert problem(_post(net, "answers", _signed(net, answer, 2).to_json())) == (403, "not_keyper")
    assert _post(net, "answers", answer.to_json()).status_code == 201
    lie = _signed(net, replace(answer, share=(poly(2) + 1) % th.L), 1)
    assert problem(_post(net, "answers", lie.to_json())) == (409, "duplicate")
    w.advance_to(w.schedule.complaints_end)
    late = _signed(net, DkgComplaint(w.auction_id, b"", 3, 1), 3)
    assert problem(_post(net, "complaints", late.to_json())) == (409, "too_late")
    assert problem(_get(net, "/transcript")) == (409, "dkg_not_final")
    w.advance_to(w.schedule.final_at)
    late_answer = _signed(net, DkgAnswer(w.auction_id, b"", 1, 2, poly(2)), 1)
    assert _post(net, "answers", late_answer.to_json()).status_code == 200  # the same again
    w.advance_to(w.schedule.final_at + 10)
    board = _get(net).json()
    assert board["final"] is True
    assert [(c["keyper"], c["dealer"]) for c in board["complaints"]] == [(2, 1)]
    assert [(a["dealer"], a["keyper"]) for a in board["answers"]] == [(1, 2)]


def _committee(net: Net) -> Committee:
    c = net.keyper(1).committees.committee_for(net.world.auction_id)
    assert c is not None
    return c


def test_shares_route(net: Net) -> None:
    w = net.world
    keypers = net.committee()
    net.run_dkg(keypers)
    keeper = net.keeper()
    assert keeper.open_auction(w.auction_id) is True
    board = board_from_document(_get(net).json(), w.domain)
    s1 = keypers[0].secret_share(board, 1)
    share = _signed(net, DkgShare(w.auction_id, b"", 1, s1), 1)
    # before T, then after T without the book on-chain
    assert problem(_post(net, "shares", share.to_json())) == (409, "too_early")
    w.advance_to(w.auction_id + 10)
    assert problem(_post(net, "shares", share.to_json())) == (409, "too_early")
    urgent = w.urgent.address
    transact(w.w3, w.chain.settlement.functions.commitBook(w.auction_id, bytes(32), 0), urgent)
    # a wrong value, a wrong signer, another auction
    wrong = _signed(net, replace(share, share=(s1 + 1) % th.L), 1)
    assert problem(_post(net, "shares", wrong.to_json())) == (400, "invalid_share")
    assert problem(_post(net, "shares", _signed(net, share, 3).to_json())) == (403, "not_keyper")
    assert problem(_post(net, "shares", {**share.to_json(), "share": "0x01"})) == (400, "malformed")
    first = _post(net, "shares", share.to_json())
    assert first.status_code == 201, first.text
    assert _post(net, "shares", share.to_json()).status_code == 200
    assert problem(_post(net, "shares", wrong.to_json())) == (400, "invalid_share")
    listed = _get(net, "/shares").json()
    assert [s["keyper"] for s in listed["shares"]] == [1]
    transcript = _get(net, "/transcript").json()
    assert th.released_share_is_valid(s1, bytes.fromhex(transcript["public_shares"]["1"][2:]))


class _NoCommittee:
    def committee_for(self, auction_id: int) -> None:
        return None

    def book_committed(self, auction_id: int) -> bool:
        return False


def test_no_committee_and_a_failed_dkg(net: Net) -> None:
    w = net.world
    w.advance_to(w.schedule.opens_at + 10)
    board = BulletinBoard(net.store, _NoCommittee(), w.domain, w.calendar, w.now)
    with pytest.raises(NoCommitteeError):
        board.document(w.auction_id)
    # a DKG where only two dealers dealt: no transcript (fewer than t qualify)
    keypers = [net.keyper(1), net.keyper(2)]
    net.run_dkg(keypers)
    assert problem(_get(net, "/transcript")) == (409, "dkg_failed")
    real = BulletinBoard(net.store, net.keyper(3).committees, w.domain, w.calendar, w.now)
    with pytest.raises(DkgFailedError):
        real.transcript(w.auction_id)
