"""``qev keyper run``: one member of the keyper committee (PROTOCOL 10).

Each tick reads the chain (its time, the committee, the auction's key and book) and the
service's bulletin board, and does what is due, every step idempotent:

- during the DKG of the auction open now (its window's first ``3 * phase`` seconds):
  deal (phase 1), check every deal and complain about a bad or missing share (phase 2),
  answer the complaints against its own deal with the share in the clear (phases 1-3);
- for each recent auction whose key was committed in threshold mode: once chain time has
  reached T, ``commitBook(T)`` is on-chain and the committed key is the board's DKG, release
  its secret share ``s_j`` (signed), checked ``s_j * B == S_j`` first.

Nothing is kept between ticks: the dealer's polynomial is derived from its identity key
(HKDF-SHA512, ``dealer_polynomial``), so a keyper killed at any point and restarted
re-derives the same polynomial, finds its messages on the board and carries on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import Field

from clearing import threshold as th
from clearing.calendar import AuctionCalendar
from clearing.config import ChainSettings
from clearing.dkg import (
    BoardState,
    Committee,
    DkgAnswer,
    DkgComplaint,
    DkgDeal,
    DkgSchedule,
    DkgShare,
    Message,
    board_from_document,
    sign,
)
from clearing.eip712 import Eip712Domain
from clearing.errors import QevError, SealingError
from clearing.hexcodec import to_checksum_address, to_hex
from clearing.sealing import public_key_of
from clearing.signing import Signer
from keeper.chain import Chain
from keeper.threshold_key import (
    KEY_MODE_THRESHOLD,
    ChainCommittees,
    auction_key_mode,
    book_commitment,
)

log = logging.getLogger("qev.keyper")

POLY_SALT = b"qev-dkg-poly-v1"


class KeyperSettings(ChainSettings):
    """A keyper's settings (config file ``[chain]`` + ``[keyper]``, ``QEV_*``)."""

    config_sections: ClassVar[tuple[str, ...]] = ("chain", "keyper")

    identity_key_file: Path = Field(
        default=Path("qev-data/keyper-identity.key"),
        description="the X25519 identity key (0600 hex file, `qev keys keyper-identity`)",
    )
    account_key_file: Path = Field(
        default=Path("qev-data/keyper-account.key"),
        description="the account that signs the keyper's board messages (keystore or hex)",
    )
    service_url: str | None = Field(default=None, description="the clearing service's base URL")
    poll_seconds: float = Field(default=30.0, gt=0)
    lookback_auctions: int = Field(default=3, ge=1, description="past auctions to release for")
    http_timeout: float = Field(default=30.0, gt=0)
    rpc_timeout: float = Field(default=30.0, gt=0, description="seconds per JSON-RPC call")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "info"


class KeyperError(QevError):
    """The keyper cannot act: its keys are not the committee's, or the board refused."""

    code = "keyper"


class BoardRefusedError(KeyperError):
    """The board answered a post or a read with a problem (``code`` is the problem's)."""

    def __init__(self, code: str, detail: str, status: int) -> None:
        super().__init__(f"{code} ({status}): {detail}")
        self.problem, self.status = code, status


class Board(Protocol):
    """The bulletin board as a keyper reaches it (``HttpBoard``, or in process for tests)."""

    def board(self, auction_id: int) -> dict[str, Any] | None:
        """``GET /dkg``, or None while the board has nothing for this auction yet."""

    def post(self, auction_id: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dkg/{path}``: the stored entry (``BoardRefusedError`` if refused)."""


class HttpBoard:
    """The service's board over HTTP (httpx)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        import httpx

        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    @staticmethod
    def _refused(response: Any) -> BoardRefusedError:
        try:
            doc = response.json()
            code, detail = str(doc.get("code")), str(doc.get("detail"))
        except ValueError:
            code, detail = "http", response.text[:200]
        return BoardRefusedError(code, detail, response.status_code)

    def board(self, auction_id: int) -> dict[str, Any] | None:
        """``GET /v1/auctions/{T}/dkg`` (None for an auction or committee not there yet)."""
        r = self.client.get(f"/v1/auctions/{auction_id}/dkg")
        if r.status_code == 200:
            doc: dict[str, Any] = r.json()
            return doc
        error = self._refused(r)
        if error.problem in ("unknown_auction", "no_committee"):
            return None
        raise error

    def post(self, auction_id: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/auctions/{T}/dkg/{path}``."""
        r = self.client.post(f"/v1/auctions/{auction_id}/dkg/{path}", json=body)
        if r.status_code in (200, 201):
            doc: dict[str, Any] = r.json()
            return doc
        raise self._refused(r)


def dealer_polynomial(
    identity_secret: bytes, domain: Eip712Domain, auction_id: int, committee: Committee
) -> th.Polynomial:
    """The dealer's polynomial for ``auction_id``, derived from its identity key.

    ``a_k = HKDF-SHA512(ikm=identity, salt="qev-dkg-poly-v1", info=chainId (32) ||
    settlement (20) || T (8) || committeeId (4) || t (2) || k (2), L=64) mod l`` (0 -> 1).
    A restarted keyper re-derives it; a new auction, committee or threshold gives a new one.
    """
    coefficients = []
    for k in range(committee.threshold):
        info = (
            domain.chain_id.to_bytes(32, "big")
            + domain.verifying_contract
            + auction_id.to_bytes(8, "big")
            + committee.committee_id.to_bytes(4, "big")
            + committee.threshold.to_bytes(2, "big")
            + k.to_bytes(2, "big")
        )
        okm = HKDF(hashes.SHA512(), 64, POLY_SALT, info).derive(identity_secret)
        coefficients.append(int.from_bytes(okm, "little") % th.L or 1)
    return th.Polynomial(tuple(coefficients))


class Keyper:
    """One keyper: its identity key (X25519), its account, the chain and the board."""

    def __init__(
        self,
        chain: Chain,
        board: Board,
        identity_secret: bytes,
        account: Signer,
        *,
        domain: Eip712Domain,
        calendar: AuctionCalendar,
        lookback: int = 3,
        committees: ChainCommittees | None = None,
    ) -> None:
        self.chain, self.http, self.identity = chain, board, identity_secret
        self.account, self.domain, self.calendar = account, domain, calendar
        self.identity_public = public_key_of(identity_secret)
        self.lookback = lookback
        self.committees = committees or ChainCommittees(chain, ttl=0)

    # --- who am I ------------------------------------------------------------------

    def index_in(self, committee: Committee) -> int | None:
        """This keyper's index in ``committee`` (None if its account is not a member).

        Raises ``KeyperError`` if the account is a member under another identity key (the
        deals sealed to it could not be opened with this one).
        """
        j = committee.index_of(self.account.address)
        if j is None:
            return None
        if committee.identity_keys[j - 1] != self.identity_public:
            raise KeyperError(
                f"keyper {j} ({to_checksum_address(self.account.address)}) is registered with "
                f"identity key {to_hex(committee.identity_keys[j - 1])}, the identity key file "
                f"gives {to_hex(self.identity_public)}"
            )
        return j

    def info(self, auction_id: int, dealer: int, keyper: int) -> bytes:
        """HPKE info of dealer ``dealer``'s share for ``keyper``."""
        return th.dkg_info(
            self.domain.chain_id, self.domain.verifying_contract, auction_id, dealer, keyper
        )

    def polynomial(self, auction_id: int, committee: Committee) -> th.Polynomial:
        """This keyper's polynomial as a dealer of ``auction_id``."""
        return dealer_polynomial(self.identity, self.domain, auction_id, committee)

    # --- messages (a misbehaving keyper in the tests overrides these) ----------------

    def make_deal(self, auction_id: int, committee: Committee, j: int) -> DkgDeal:
        """Deal: commitments and one sealed share per keyper."""
        poly = self.polynomial(auction_id, committee)
        sealed = tuple(
            th.seal_share(poly(k), pk, self.info(auction_id, j, k))
            for k, pk in sorted(committee.identity_map().items())
        )
        return DkgDeal(auction_id, b"", j, th.commitments(poly), sealed)

    def answer_value(self, auction_id: int, committee: Committee, j: int, keyper: int) -> int:
        """The share to publish for ``keyper``'s complaint."""
        return self.polynomial(auction_id, committee)(keyper)

    def should_answer(self, auction_id: int, keyper: int) -> bool:
        """Whether to answer ``keyper``'s complaint (an honest keyper always does)."""
        return True

    def _post(self, message: Message) -> None:
        signed = sign(message, self.account, self.domain)
        path = {"deal": "deals", "complaint": "complaints", "answer": "answers", "share": "shares"}
        self.http.post(message.auction_id, path[message.KIND], signed.to_json())

    # --- reading the board ---------------------------------------------------------

    def read_board(self, auction_id: int, committee: Committee) -> BoardState | None:
        """The auction's board, every message checked (None if the board has none yet)."""
        doc = self.http.board(auction_id)
        if doc is None:
            return None
        board = board_from_document(doc, self.domain)
        if board.committee != committee:
            raise KeyperError(
                f"auction {auction_id}: the board names committee {board.committee.committee_id}"
                f", the chain {committee.committee_id}"
            )
        return board

    def dealt_share(self, board: BoardState, dealer: int, j: int) -> int | None:
        """Dealer ``dealer``'s share for this keyper (index ``j``), if present and valid."""
        deal = board.deals.get(dealer)
        if deal is None or len(deal.sealed_shares) < j:
            return None
        try:
            share = th.open_share(
                deal.sealed_shares[j - 1], self.identity, self.info(board.auction_id, dealer, j)
            )
        except (SealingError, th.ThresholdError):
            return None
        return share if th.share_is_valid(share, deal.commitments, j) else None

    def secret_share(self, board: BoardState, j: int) -> int:
        """``s_j`` from the final board: each qualified dealer's share (its answer where
        this keyper complained). ``ThresholdError`` if a qualified dealer's share is
        missing (this keyper did not complain in time)."""
        outcome = board.outcome(self.domain.chain_id, self.domain.verifying_contract)
        shares: dict[int, int] = {}
        for i in outcome.qualified:
            answer = board.answers.get((i, j))
            if (j, i) in board.complaints and answer is not None:
                shares[i] = answer.share
                continue
            found = self.dealt_share(board, i, j)
            if found is not None:
                shares[i] = found
        return th.secret_share(shares, outcome.qualified)

    # --- the duties ----------------------------------------------------------------

    def tick(self) -> list[str]:
        """One pass: the current auction's DKG, then releases for recent auctions."""
        _, now = self.chain.latest_block()
        current = self.calendar.current(now)
        done = self.run_dkg(current, now)
        for k in range(1, self.lookback + 1):
            t = current - k * self.calendar.window
            if t <= self.calendar.genesis:
                break
            done += self.release(t, now)
        return done

    def run_dkg(self, auction_id: int, now: int) -> list[str]:
        """Deal, complain, answer for ``auction_id``, as its DKG's phase allows."""
        committee = self.committees.committee_for(auction_id)
        if committee is None:
            return []
        j = self.index_in(committee)
        if j is None:
            return []
        schedule = DkgSchedule.of(self.calendar, auction_id, committee.phase_seconds)
        if not schedule.opens_at <= now < schedule.final_at:
            return []
        board = self.read_board(auction_id, committee)
        if board is None:
            return []
        done: list[str] = []
        if j not in board.deals and now < schedule.deals_end:
            self._post(self.make_deal(auction_id, committee, j))
            done.append(f"deal {auction_id}")
            log.info("auction %d: dealt as keyper %d", auction_id, j)
        if schedule.deals_end <= now < schedule.complaints_end:
            for i in range(1, committee.n + 1):
                if i == j or (j, i) in board.complaints:
                    continue
                if self.dealt_share(board, i, j) is None:
                    self._post(DkgComplaint(auction_id, b"", j, i))
                    done.append(f"complaint {auction_id} {j}->{i}")
                    log.warning("auction %d: keyper %d complains about dealer %d", auction_id, j, i)
        for keyper, dealer in sorted(board.complaints):
            if dealer != j or (j, keyper) in board.answers or j not in board.deals:
                continue
            if not self.should_answer(auction_id, keyper):
                continue
            value = self.answer_value(auction_id, committee, j, keyper)
            self._post(DkgAnswer(auction_id, b"", j, keyper, value))
            done.append(f"answer {auction_id} {j}->{keyper}")
            log.info("auction %d: answered keyper %d's complaint", auction_id, keyper)
        return done

    def _releasing(self, auction_id: int, now: int) -> tuple[Committee, int] | None:
        """(committee, my index) if ``auction_id`` is a threshold auction past T whose book
        is committed on-chain and this keyper is in its committee; None otherwise."""
        if now < auction_id or auction_key_mode(self.chain, auction_id)[0] != KEY_MODE_THRESHOLD:
            return None
        committee = self.committees.committee_for(auction_id)
        j = None if committee is None else self.index_in(committee)
        if committee is None or j is None:
            return None
        if not book_commitment(self.chain, auction_id).committed:
            log.info("auction %d: waiting for commitBook before releasing", auction_id)
            return None
        return committee, j

    def release(self, auction_id: int, now: int) -> list[str]:
        """Post ``s_j`` for ``auction_id`` once T passed, the book is committed on-chain and
        the committed key is the board's DKG; nothing otherwise."""
        ready = self._releasing(auction_id, now)
        if ready is None:
            return []
        committee, j = ready
        board = self.read_board(auction_id, committee)
        if board is None or j in board.shares:
            return []
        outcome = board.outcome(self.domain.chain_id, self.domain.verifying_contract)
        key = self.chain.key_state(auction_id)
        if (key.public_key, key.commitment) != (outcome.public_key, outcome.transcript_hash):
            log.error(
                "auction %d: the key committed on-chain is not the board's DKG; not releasing",
                auction_id,
            )
            return []
        share = self.secret_share(board, j)
        if not th.released_share_is_valid(share, outcome.public_shares[j]):
            raise KeyperError(f"auction {auction_id}: my share does not match my public share")
        self._post(DkgShare(auction_id, b"", j, share))
        log.info("auction %d: released key share %d", auction_id, j)
        return [f"share {auction_id} {j}"]


def run(
    keyper: Keyper,
    *,
    poll_seconds: float,
    iterations: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Tick forever (or ``iterations`` times); an error is logged and the next tick retries."""
    done = 0
    while iterations is None or done < iterations:
        done += 1
        try:
            for action in keyper.tick():
                log.info("done: %s", action)
        except QevError as e:
            log.error("keyper tick failed: %s", e, extra={"code": e.code})
        except Exception as e:  # the loop outlives one bad tick (HTTP, RPC)
            log.warning("keyper tick failed: %s: %s", type(e).__name__, e)
        sleep(poll_seconds)


def build_keyper(settings: KeyperSettings) -> tuple[Keyper, HttpBoard]:
    """The keyper of ``settings`` (keys through ``clearing.keyfiles``), and its board client."""
    from clearing.hexcodec import parse_address
    from clearing.keyfiles import read_account_key, read_key
    from keeper.factory import connect_chain, web3_for

    settings.require("service_url")
    assert settings.service_url is not None
    identity = read_key(settings.identity_key_file, "keyper identity key")
    account = Signer(
        read_account_key(settings.account_key_file, settings.passphrase(), "keyper account key")
    )
    chain = connect_chain(settings, web3_for(settings, settings.rpc_timeout))
    verifying_contract = chain.settlement.address  # the bids' domain (PROTOCOL 3.1, B.5)
    if settings.target == "registry":
        from keeper.factory import registry_address

        verifying_contract = registry_address(settings, chain)
    domain = Eip712Domain(
        settings.domain_name(),
        settings.domain_version(),
        chain.chain_id(),
        parse_address(verifying_contract),
    )
    board = HttpBoard(settings.service_url, settings.http_timeout)
    keyper = Keyper(
        chain,
        board,
        identity,
        account,
        domain=domain,
        calendar=AuctionCalendar(chain.genesis(), settings.window),
        lookback=settings.lookback_auctions,
    )
    return keyper, board


__all__ = [
    "Board",
    "BoardRefusedError",
    "HttpBoard",
    "Keyper",
    "KeyperError",
    "KeyperSettings",
    "build_keyper",
    "dealer_polynomial",
    "run",
]
