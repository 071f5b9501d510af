"""The keypers' public bulletin board (PROTOCOL 10.2): ``/v1/auctions/{T}/dkg/...``.

Deals, complaints, answers and released key shares are EIP-712 messages in the bids' domain,
each signed by the committee member it names (the committee is read from the settlement
contract). The board refuses, with a stable problem code, a message that is malformed
(``malformed``), unsigned or not recoverable (``bad_signature``), signed by anyone but the
keyper at its index (``not_keyper``), for another auction (``wrong_auction``), for a slot
already holding another message (``duplicate``), after its phase (``too_late``), a share
before T or before ``commitBook(T)`` (``too_early``), an answer without a complaint
(``no_complaint``), a share that fails ``s_j * B == S_j`` (``invalid_share``). Accepted
messages are stored durably (``clearing.store.board``) before 201 (200 for the same bytes
again) and served to anyone.

``BulletinBoard`` holds the rules (no HTTP); ``mount_board`` adds the routes to the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson
from fastapi import Body, FastAPI, Path, Request
from starlette.responses import Response

from clearing import threshold as th
from clearing.api import problems
from clearing.calendar import AuctionCalendar
from clearing.dkg import (
    KINDS,
    BoardError,
    BoardState,
    Committee,
    DkgAnswer,
    DkgDeal,
    DkgFailedError,
    DkgNotFinalError,
    DkgSchedule,
    DkgShare,
    DuplicateMessageError,
    InvalidShareError,
    Message,
    NoCommitteeError,
    NoComplaintError,
    TooEarlyError,
    TooLateError,
    WrongAuctionError,
    board_document,
    check_deal_shape,
    check_signer,
    parse_message,
    shares_document,
    transcript_document,
)
from clearing.eip712 import Eip712Domain
from clearing.errors import UnknownAuctionError
from clearing.store.board import BoardOutcome, BoardRecord, BoardStore


class CommitteeSource(Protocol):
    """What the board reads from the chain (``keeper.threshold_key.ChainCommittees``)."""

    def committee_for(self, auction_id: int) -> Committee | None:
        """The committee of ``auction_id``'s DKG: the one recorded with its key if committed
        in threshold mode, else the current one (None: none registered)."""

    def book_committed(self, auction_id: int) -> bool:
        """Whether ``commitBook(T)`` is on-chain."""


class BulletinBoard:
    """The board's rules over a ``BoardStore`` (PROTOCOL 10.2)."""

    def __init__(
        self,
        store: BoardStore,
        committees: CommitteeSource,
        domain: Eip712Domain,
        calendar: AuctionCalendar,
        clock: Callable[[], int],
    ) -> None:
        self.store, self.committees, self.domain = store, committees, domain
        self.calendar, self.clock = calendar, clock

    # --- reads ------------------------------------------------------------------

    def check_auction(self, auction_id: int) -> None:
        """``UnknownAuctionError`` unless a past or current auction (its window has opened)."""
        cal = self.calendar
        if not cal.is_boundary(auction_id) or auction_id > cal.current(self.clock()):
            raise UnknownAuctionError(f"no auction {auction_id}")

    def committee(self, auction_id: int) -> Committee:
        """The auction's committee (``NoCommitteeError`` if none is registered)."""
        committee = self.committees.committee_for(auction_id)
        if committee is None:
            raise NoCommitteeError("no keyper committee is registered on the settlement contract")
        return committee

    def state(self, auction_id: int) -> tuple[BoardState, DkgSchedule]:
        """The auction's board as stored, and its schedule."""
        self.check_auction(auction_id)
        committee = self.committee(auction_id)
        messages = [
            parse_message(r.kind, orjson.loads(r.body))
            for r in self.store.board_records(auction_id)
        ]
        board = BoardState.of(auction_id, committee, messages)
        return board, DkgSchedule.of(self.calendar, auction_id, committee.phase_seconds)

    def document(self, auction_id: int) -> dict[str, Any]:
        """``GET /dkg``: committee, schedule, ``final`` and every message."""
        board, schedule = self.state(auction_id)
        return board_document(board, schedule, final=self.clock() >= schedule.final_at)

    def listing(self, auction_id: int, path: str) -> dict[str, Any]:
        """``GET /dkg/{deals|complaints|answers|shares}``."""
        doc = self.document(auction_id)
        return {"auction_id": auction_id, path: doc[path]}

    def outcome(self, board: BoardState, schedule: DkgSchedule) -> Any:
        """The final DKG's outcome (``DkgNotFinalError``, ``DkgFailedError``)."""
        if self.clock() < schedule.final_at:
            raise DkgNotFinalError(
                f"the DKG of auction {board.auction_id} is final at {schedule.final_at}"
            )
        try:
            return board.outcome(self.domain.chain_id, self.domain.verifying_contract)
        except th.NotEnoughSharesError as e:
            raise DkgFailedError(f"auction {board.auction_id}: {e}") from None

    def transcript(self, auction_id: int) -> dict[str, Any]:
        """``GET /dkg/transcript``: the final transcript and what it decides."""
        board, schedule = self.state(auction_id)
        return transcript_document(board, self.outcome(board, schedule), schedule)

    def shares(self, auction_id: int) -> dict[str, Any]:
        """``GET /dkg/shares``: the released key shares."""
        board, _ = self.state(auction_id)
        return shares_document(board)

    # --- writes -----------------------------------------------------------------

    def post(self, auction_id: int, path: str, body: Any) -> tuple[bool, dict[str, Any]]:
        """Check and store one message; (created, the stored entry). Raises a ``QevError``
        with the refusal's code otherwise."""
        self.check_auction(auction_id)
        message = KINDS[path].from_json(body)
        if message.auction_id != auction_id:
            raise WrongAuctionError(
                f"the message is for auction {message.auction_id}, the path for {auction_id}"
            )
        board, schedule = self.state(auction_id)
        check_signer(message, board.committee, self.domain)
        if isinstance(message, DkgDeal):
            check_deal_shape(message, board.committee)
        now = self.clock()
        if _stored(board, message) == message:  # the same message again, whenever: 200
            return self._store(message, now)
        deadline = schedule.deadline(message.KIND)
        if deadline is not None and now >= deadline:
            raise TooLateError(f"{message.KIND}s for auction {auction_id} closed at {deadline}")
        if isinstance(message, DkgAnswer) and (message.keyper, message.dealer) not in (
            board.complaints
        ):
            raise NoComplaintError(
                f"keyper {message.keyper} has not complained about dealer {message.dealer}"
            )
        if isinstance(message, DkgShare):
            self._check_release(board, schedule, message, now)
        return self._store(message, now)

    def _check_release(
        self, board: BoardState, schedule: DkgSchedule, share: DkgShare, now: int
    ) -> None:
        auction_id = board.auction_id
        if now < auction_id:
            raise TooEarlyError(f"key shares for auction {auction_id} are released after T")
        if not self.committees.book_committed(auction_id):
            raise TooEarlyError(f"the book of auction {auction_id} is not committed on-chain")
        outcome = self.outcome(board, schedule)
        if not th.released_share_is_valid(share.share, outcome.public_shares[share.keyper]):
            raise InvalidShareError(
                f"keyper {share.keyper}'s share does not match its public share"
            )

    def _store(self, message: Message, now: int) -> tuple[bool, dict[str, Any]]:
        body = orjson.dumps(message.to_json(), option=orjson.OPT_SORT_KEYS)
        record = BoardRecord(message.auction_id, message.KIND, *message.slot, body, now)
        outcome, stored = self.store.board_put(record)
        if outcome is BoardOutcome.CONFLICT:
            raise DuplicateMessageError(
                f"another {message.KIND} holds slot {message.slot} of auction {message.auction_id}"
            )
        entry = {
            "message": orjson.loads(stored.body),
            "received_at": stored.received_at,
            "status": outcome.value,
        }
        return outcome is BoardOutcome.CREATED, entry


def _stored(board: BoardState, message: Message) -> Message | None:
    """What the board holds in ``message``'s slot."""
    if isinstance(message, DkgDeal):
        return board.deals.get(message.dealer)
    if isinstance(message, DkgShare):
        return board.shares.get(message.keyper)
    if isinstance(message, DkgAnswer):
        return board.answers.get(message.slot)
    return board.complaints.get(message.slot)


BOARD_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"description": "RFC 9457 problem", "content": {problems.PROBLEM_JSON: {}}}
    for code in (400, 403, 404, 409, 413, 429, 503)
}


def mount_board(app: FastAPI, board: BulletinBoard) -> None:
    """Add the ``/v1/auctions/{T}/dkg`` routes (and the board's problem codes) to ``app``."""

    async def refused(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, BoardError)
        return problems.problem(exc.code, exc.detail, status=exc.status)

    app.add_exception_handler(BoardError, refused)
    auction = Path(ge=0, lt=2**64, description="window boundary timestamp")
    base = "/v1/auctions/{auction_id}/dkg"

    def json(doc: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(doc), status_code=status, media_type="application/json")

    # Store and chain reads block: plain ``def`` routes run in the thread pool.

    @app.get(base, responses=BOARD_PROBLEMS, tags=["dkg"])
    def get_board(auction_id: int = auction) -> Response:
        """The whole board: committee, schedule, ``final``, every message."""
        return json(board.document(auction_id))

    @app.get(f"{base}/transcript", responses=BOARD_PROBLEMS, tags=["dkg"])
    def get_transcript(auction_id: int = auction) -> Response:
        """The final transcript, Q, the transcript hash, the keys and the public shares."""
        return json(board.transcript(auction_id))

    def routes(path: str) -> None:
        @app.get(f"{base}/{path}", responses=BOARD_PROBLEMS, tags=["dkg"], name=f"get_{path}")
        def listing(auction_id: int = auction) -> Response:
            if path == "shares":
                return json(board.shares(auction_id))
            return json(board.listing(auction_id, path))

        @app.post(
            f"{base}/{path}",
            status_code=201,
            responses={200: {"description": "the same message again"}, **BOARD_PROBLEMS},
            tags=["dkg"],
            name=f"post_{path}",
        )
        def post(auction_id: int = auction, body: dict[str, Any] = Body(...)) -> Response:  # noqa: B008
            created, entry = board.post(auction_id, path, body)
            return json(entry, 201 if created else 200)

    for path in KINDS:
        routes(path)


__all__ = ["BOARD_PROBLEMS", "BulletinBoard", "CommitteeSource", "mount_board"]
