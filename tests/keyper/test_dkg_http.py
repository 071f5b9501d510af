"""The DKG of PROTOCOL 10 run by five keypers over the service's bulletin board (HTTP), with
a cheating dealer on each check: the board, the keypers and the keeper agree on Q, the
transcript and the key; any three released shares give the key, fewer never do."""

from __future__ import annotations

import httpx
import pytest

from clearing import threshold as th
from clearing.dkg import Committee, DkgDeal, board_from_document
from clearing.hexcodec import to_hex
from clearing.sealing import bid_info, open_sealed, seal
from keeper.keyper import BoardRefusedError, Keyper

from .support import T_OF_N, Net


class WrongShare(Keyper):
    """Deals keyper 1 a share off by 7 (the commitments are honest)."""

    def make_deal(self, auction_id: int, committee: Committee, j: int) -> DkgDeal:
        deal = super().make_deal(auction_id, committee, j)
        poly = self.polynomial(auction_id, committee)
        bad = th.seal_share(
            (poly(1) + 7) % th.L, committee.identity_keys[0], self.info(auction_id, j, 1)
        )
        return DkgDeal(deal.auction_id, b"", j, deal.commitments, (bad, *deal.sealed_shares[1:]))


class WrongAnswer(WrongShare):
    """... and answers the complaint with the same wrong share."""

    def answer_value(self, auction_id: int, committee: Committee, j: int, keyper: int) -> int:
        return (super().answer_value(auction_id, committee, j, keyper) + 7) % th.L


class Silent(WrongShare):
    """... and never answers."""

    def should_answer(self, auction_id: int, keyper: int) -> bool:
        return False


class Garbled(Keyper):
    """Keyper 1's sealed share is corrupted in transit (undecryptable); no answer."""

    def make_deal(self, auction_id: int, committee: Committee, j: int) -> DkgDeal:
        deal = super().make_deal(auction_id, committee, j)
        first = deal.sealed_shares[0]
        garbled = first[:-1] + bytes([first[-1] ^ 1])
        return DkgDeal(
            deal.auction_id, b"", j, deal.commitments, (garbled, *deal.sealed_shares[1:])
        )

    def should_answer(self, auction_id: int, keyper: int) -> bool:
        return False


class Absent(Keyper):
    """Never deals (offline during phase 1), honest otherwise."""

    world_deals_end = 0

    def run_dkg(self, auction_id: int, now: int) -> list[str]:
        if now < self.world_deals_end:
            return []
        return super().run_dkg(auction_id, now)


class BadCommitments(Keyper):
    """Deals t - 1 commitments: the board refuses the deal (malformed)."""

    refused: list[str]

    def make_deal(self, auction_id: int, committee: Committee, j: int) -> DkgDeal:
        deal = super().make_deal(auction_id, committee, j)
        return DkgDeal(deal.auction_id, b"", j, deal.commitments[:-1], deal.sealed_shares)

    def run_dkg(self, auction_id: int, now: int) -> list[str]:
        try:
            return super().run_dkg(auction_id, now)
        except BoardRefusedError as e:
            self.refused = [*getattr(self, "refused", []), e.problem]
            return []


def _board(net: Net) -> dict:
    r = httpx.get(f"{net.url}/v1/auctions/{net.world.auction_id}/dkg")
    assert r.status_code == 200, r.text
    return r.json()


def _shares(net: Net, keypers: list[Keyper]) -> dict[int, int]:
    w = net.world
    board = board_from_document(_board(net), w.domain)
    return {j: k.secret_share(board, j) for j, k in enumerate(keypers, start=1)}


def test_honest_dkg_over_the_board(net: Net) -> None:
    w = net.world
    keypers = net.committee()
    net.run_dkg(keypers)
    doc = _board(net)
    assert doc["final"] is True
    assert len(doc["deals"]) == 5 and doc["complaints"] == [] and doc["answers"] == []
    # the service's transcript, the keeper's view (store) and a keyper's view (HTTP) agree
    transcript = httpx.get(f"{net.url}/v1/auctions/{w.auction_id}/dkg/transcript").json()
    assert transcript["qualified"] == [1, 2, 3, 4, 5]
    committed = net.threshold_keys().key_to_commit(w.auction_id)
    assert committed is not None
    pk, commitment = committed
    assert (to_hex(pk), to_hex(commitment)) == (
        transcript["public_key"],
        transcript["transcript_hash"],
    )
    board = board_from_document(doc, w.domain)
    outcome = board.outcome(w.domain.chain_id, w.domain.verifying_contract)
    assert outcome.public_key == pk and outcome.transcript_hash == commitment
    # each keyper's share matches its public share; any three give the key, two cannot
    shares = _shares(net, keypers)
    for j, s in shares.items():
        assert th.released_share_is_valid(s, outcome.public_shares[j])
    info = bid_info(w.domain.chain_id, w.domain.verifying_contract, w.auction_id)
    sealed = seal(b"a bid", pk, info)
    for trio in ((1, 2, 3), (2, 4, 5), (1, 3, 5)):
        sk = th.x25519_private_key(th.combine({j: shares[j] for j in trio}, T_OF_N))
        assert open_sealed(sealed, sk, info) == b"a bid"
    # ticking again changes nothing (idempotent)
    for k in keypers:
        assert k.run_dkg(w.auction_id, w.now()) == []
    assert _board(net) == {**doc}


@pytest.mark.parametrize(
    ("cheat", "stays"),
    [
        (WrongShare, True),  # complaint, correct answer: the dealer stays
        (WrongAnswer, False),  # complaint, the answer fails the Feldman check
        (Silent, False),  # complaint, no answer
        (Garbled, False),  # undecryptable share, no answer
        (Absent, False),  # no deal at all
        (BadCommitments, False),  # the board refuses its deal (malformed)
    ],
)
def test_a_cheating_dealer_on_each_check(net: Net, cheat: type[Keyper], stays: bool) -> None:
    w = net.world
    cheater = net.keyper(3, cheat)
    if cheat is Absent:
        cheater.world_deals_end = w.schedule.deals_end  # type: ignore[attr-defined]
    keypers = net.committee({3: cheater})
    net.run_dkg(keypers)
    doc = _board(net)
    complaints = {(c["keyper"], c["dealer"]) for c in doc["complaints"]}
    if cheat in (WrongShare, WrongAnswer, Silent, Garbled):
        assert complaints == {(1, 3)}
    else:  # no deal from dealer 3: every other keyper complains
        assert complaints == {(j, 3) for j in (1, 2, 4, 5)}
        assert all(d["dealer"] != 3 for d in doc["deals"])
    if cheat is BadCommitments:
        assert cheater.refused == ["malformed"]  # type: ignore[attr-defined]
    answers = {(a["dealer"], a["keyper"]) for a in doc["answers"]}
    assert answers == ({(3, 1)} if cheat in (WrongShare, WrongAnswer) else set())
    transcript = httpx.get(f"{net.url}/v1/auctions/{w.auction_id}/dkg/transcript").json()
    expected_q = [1, 2, 3, 4, 5] if stays else [1, 2, 4, 5]
    assert transcript["qualified"] == expected_q
    # the keypers' shares (keyper 1 uses the answer where it complained) give the key
    shares = _shares(net, keypers)
    board = board_from_document(doc, w.domain)
    outcome = board.outcome(w.domain.chain_id, w.domain.verifying_contract)
    assert to_hex(outcome.public_key) == transcript["public_key"]
    for j, s in shares.items():
        assert th.released_share_is_valid(s, outcome.public_shares[j]), j
    for trio in ((1, 2, 3), (3, 4, 5), (1, 4, 5)):
        sk = th.combine({j: shares[j] for j in trio}, T_OF_N)
        assert th.base_mul(sk) == outcome.group_key
    # the keeper reads the same transcript from the store
    committed = net.threshold_keys().key_to_commit(w.auction_id)
    assert committed == (outcome.public_key, outcome.transcript_hash)
