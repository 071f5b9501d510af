"""The keypers' bulletin board (PROTOCOL 10): signed messages, the committee, the schedule,
and what the board's messages decide (the transcript, the qualified set, the keys).

Pure: no I/O and no clock. The service (``clearing.api.board``) checks and stores messages,
keypers (``keeper.keyper``) post and read them, the keeper (``keeper.threshold_key``) and
verifiers (``keeper.verify_threshold``) rebuild the same ``DkgOutcome`` from them. The group
arithmetic is ``clearing.threshold``'s.

Four messages, each an EIP-712 struct in the bids' domain, signed by the keyper it names:

- ``DkgDeal(uint64 auctionId,uint16 dealer,bytes32[] commitments,bytes[] sealedShares)``:
  dealer i's Feldman commitments C_i0..C_i(t-1) and f_i(j) sealed to every keyper j = 1..n;
- ``DkgComplaint(uint64 auctionId,uint16 keyper,uint16 dealer)``: keyper j's share from
  dealer i is missing, undecryptable or fails the Feldman check;
- ``DkgAnswer(uint64 auctionId,uint16 dealer,uint16 keyper,uint256 share)``: dealer i
  publishes f_i(j) in the clear for keyper j's complaint;
- ``DkgShare(uint64 auctionId,uint16 keyper,uint256 share)``: keyper j releases s_j after
  ``commitBook(T)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from clearing import threshold as th
from clearing.calendar import AuctionCalendar
from clearing.eip712 import Eip712Domain
from clearing.errors import MalformedError, QevError, SignatureError
from clearing.hashing import keccak256
from clearing.hexcodec import from_hex, parse_address, parse_uint, to_checksum_address, to_hex
from clearing.signing import Signer, recover_address

DKG_DEAL_TYPE = (
    b"DkgDeal(uint64 auctionId,uint16 dealer,bytes32[] commitments,bytes[] sealedShares)"
)
DKG_COMPLAINT_TYPE = b"DkgComplaint(uint64 auctionId,uint16 keyper,uint16 dealer)"
DKG_ANSWER_TYPE = b"DkgAnswer(uint64 auctionId,uint16 dealer,uint16 keyper,uint256 share)"
DKG_SHARE_TYPE = b"DkgShare(uint64 auctionId,uint16 keyper,uint256 share)"

MAX_KEYPERS = 64  # QEVSettlement.MAX_KEYPERS
#: HPKE output for a 32-byte share: enc (32) + ciphertext (32) + tag (16).
SEALED_SHARE_LENGTH = 80
_U64 = 1 << 64
_U256 = 1 << 256


# --- refusals (the board's problem codes; HTTP status beside each) ------------------------


class BoardError(QevError):
    """A bulletin-board message the board refuses (``status``: its HTTP status)."""

    code = "malformed"
    status = 400


class NotKeyperError(BoardError):
    """The message is not signed by the committee member at the index it names."""

    code = "not_keyper"
    status = 403


class WrongAuctionError(BoardError):
    """The message names another auction than the path."""

    code = "wrong_auction"
    status = 400


class DuplicateMessageError(BoardError):
    """Another message already holds this slot (one deal per dealer, one share per keyper,
    one complaint per pair, one answer per complaint)."""

    code = "duplicate"
    status = 409


class TooLateError(BoardError):
    """The message's DKG phase is over."""

    code = "too_late"
    status = 409


class TooEarlyError(BoardError):
    """A key share before T, or before the book is committed on-chain."""

    code = "too_early"
    status = 409


class NoComplaintError(BoardError):
    """An answer to a complaint nobody posted."""

    code = "no_complaint"
    status = 409


class InvalidShareError(BoardError):
    """A released key share that fails ``s_j * B == S_j``."""

    code = "invalid_share"
    status = 400


class NoCommitteeError(BoardError):
    """No keyper committee is registered on-chain."""

    code = "no_committee"
    status = 409


class DkgNotFinalError(BoardError):
    """The DKG's answer phase is not over: no transcript yet."""

    code = "dkg_not_final"
    status = 409


class DkgFailedError(BoardError):
    """Fewer than t dealers qualified: this auction has no threshold key."""

    code = "dkg_failed"
    status = 409


#: code -> HTTP status of every board refusal (documented in PROTOCOL 10.2).
BOARD_STATUS = {
    cls.code: cls.status
    for cls in (
        BoardError,
        NotKeyperError,
        WrongAuctionError,
        DuplicateMessageError,
        TooLateError,
        TooEarlyError,
        NoComplaintError,
        InvalidShareError,
        NoCommitteeError,
        DkgNotFinalError,
        DkgFailedError,
    )
}


# --- field parsing ----------------------------------------------------------------------


def _u(value: int, bound: int = _U256) -> bytes:
    return value.to_bytes(32, "big") if 0 <= value < bound else _range(value)


def _range(value: int) -> bytes:
    raise MalformedError(f"{value} is out of range")


def _int(doc: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = doc.get(name)
    if type(value) is not int or not low <= value <= high:
        raise MalformedError(f"body.{name}: an integer in {low}..{high}")
    return value


def _keys(doc: Any, names: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(doc, dict):
        raise MalformedError("body: must be a JSON object")
    for name in names:
        if name not in doc:
            raise MalformedError(f"body.{name}: Field required")
    extra = [k for k in doc if k not in names]
    if extra:
        raise MalformedError(f"body.{extra[0]}: Extra inputs are not permitted")
    return doc


def _hex(doc: Mapping[str, Any], name: str, length: int | None = None) -> bytes:
    try:
        return from_hex(doc.get(name), length)  # type: ignore[arg-type]
    except MalformedError as e:
        raise MalformedError(f"body.{name}: {e}") from None


def _scalar(doc: Mapping[str, Any], name: str) -> int:
    try:
        return parse_uint(doc.get(name))  # type: ignore[arg-type]
    except MalformedError as e:
        raise MalformedError(f"body.{name}: {e}") from None


def _hex_list(doc: Mapping[str, Any], name: str, length: int, most: int) -> tuple[bytes, ...]:
    values = doc.get(name)
    if not isinstance(values, list) or not 0 < len(values) <= most:
        raise MalformedError(f"body.{name}: a list of 1..{most} byte strings")
    out = []
    for k, value in enumerate(values):
        try:
            out.append(from_hex(value, length))
        except MalformedError as e:
            raise MalformedError(f"body.{name}[{k}]: {e}") from None
    return tuple(out)


# --- messages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkgMessage:
    """What every board message has: its auction and its signature."""

    KIND: ClassVar[str] = ""
    TYPE: ClassVar[bytes] = b""

    auction_id: int
    signature: bytes = field(repr=False)

    @property
    def signer_index(self) -> int:
        """The keyper who must have signed it."""
        raise NotImplementedError

    @property
    def slot(self) -> tuple[int, int]:
        """Its place on the board: one message per (kind, slot)."""
        raise NotImplementedError

    def fields_hash(self) -> bytes:
        """The struct's fields after ``auctionId``, EIP-712 encoded."""
        raise NotImplementedError

    def struct_hash(self) -> bytes:
        """``hashStruct`` of the message."""
        return keccak256(keccak256(self.TYPE) + _u(self.auction_id, _U64) + self.fields_hash())

    def digest(self, domain: Eip712Domain) -> bytes:
        """The EIP-712 digest its keyper signs."""
        return domain.digest(self.struct_hash())

    def signer(self, domain: Eip712Domain) -> bytes:
        """The address that signed it (``SignatureError`` if none recovers)."""
        return recover_address(self.digest(domain), self.signature)

    def to_json(self) -> dict[str, Any]:
        """The message as the board serves it (4.1 encodings)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class DkgDeal(DkgMessage):
    """Dealer ``dealer``'s commitments and one sealed share per keyper (index order 1..n)."""

    KIND: ClassVar[str] = "deal"
    TYPE: ClassVar[bytes] = DKG_DEAL_TYPE

    dealer: int = 0
    commitments: tuple[bytes, ...] = ()
    sealed_shares: tuple[bytes, ...] = ()

    @property
    def signer_index(self) -> int:
        return self.dealer

    @property
    def slot(self) -> tuple[int, int]:
        return (self.dealer, 0)

    def fields_hash(self) -> bytes:
        return (
            _u(self.dealer, 1 << 16)
            + keccak256(b"".join(self.commitments))
            + keccak256(b"".join(keccak256(s) for s in self.sealed_shares))
        )

    def core(self) -> th.Deal:
        """The deal as ``clearing.threshold`` takes it."""
        return th.Deal(
            self.dealer,
            self.commitments,
            {j: s for j, s in enumerate(self.sealed_shares, start=1)},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "auction_id": self.auction_id,
            "dealer": self.dealer,
            "commitments": [to_hex(c) for c in self.commitments],
            "sealed_shares": [to_hex(s) for s in self.sealed_shares],
            "signature": to_hex(self.signature),
        }

    @classmethod
    def from_json(cls, doc: Any) -> DkgDeal:
        """Parse a deal (``MalformedError`` naming the first bad field)."""
        d = _keys(doc, ("auction_id", "dealer", "commitments", "sealed_shares", "signature"))
        return cls(
            _int(d, "auction_id", 0, _U64 - 1),
            _hex(d, "signature", 65),
            _int(d, "dealer", 1, MAX_KEYPERS),
            _hex_list(d, "commitments", 32, MAX_KEYPERS),
            _hex_list(d, "sealed_shares", SEALED_SHARE_LENGTH, MAX_KEYPERS),
        )


@dataclass(frozen=True, slots=True)
class DkgComplaint(DkgMessage):
    """Keyper ``keyper`` complains about dealer ``dealer``."""

    KIND: ClassVar[str] = "complaint"
    TYPE: ClassVar[bytes] = DKG_COMPLAINT_TYPE

    keyper: int = 0
    dealer: int = 0

    @property
    def signer_index(self) -> int:
        return self.keyper

    @property
    def slot(self) -> tuple[int, int]:
        return (self.keyper, self.dealer)

    def fields_hash(self) -> bytes:
        return _u(self.keyper, 1 << 16) + _u(self.dealer, 1 << 16)

    def to_json(self) -> dict[str, Any]:
        return {
            "auction_id": self.auction_id,
            "keyper": self.keyper,
            "dealer": self.dealer,
            "signature": to_hex(self.signature),
        }

    @classmethod
    def from_json(cls, doc: Any) -> DkgComplaint:
        """Parse a complaint."""
        d = _keys(doc, ("auction_id", "keyper", "dealer", "signature"))
        out = cls(
            _int(d, "auction_id", 0, _U64 - 1),
            _hex(d, "signature", 65),
            _int(d, "keyper", 1, MAX_KEYPERS),
            _int(d, "dealer", 1, MAX_KEYPERS),
        )
        if out.keyper == out.dealer:
            raise MalformedError("body.dealer: a keyper cannot complain about itself")
        return out


@dataclass(frozen=True, slots=True)
class DkgAnswer(DkgMessage):
    """Dealer ``dealer`` publishes ``f_dealer(keyper)`` for ``keyper``'s complaint."""

    KIND: ClassVar[str] = "answer"
    TYPE: ClassVar[bytes] = DKG_ANSWER_TYPE

    dealer: int = 0
    keyper: int = 0
    share: int = 0

    @property
    def signer_index(self) -> int:
        return self.dealer

    @property
    def slot(self) -> tuple[int, int]:
        return (self.dealer, self.keyper)

    def fields_hash(self) -> bytes:
        return _u(self.dealer, 1 << 16) + _u(self.keyper, 1 << 16) + _u(self.share)

    def to_json(self) -> dict[str, Any]:
        return {
            "auction_id": self.auction_id,
            "dealer": self.dealer,
            "keyper": self.keyper,
            "share": str(self.share),
            "signature": to_hex(self.signature),
        }

    @classmethod
    def from_json(cls, doc: Any) -> DkgAnswer:
        """Parse an answer."""
        d = _keys(doc, ("auction_id", "dealer", "keyper", "share", "signature"))
        return cls(
            _int(d, "auction_id", 0, _U64 - 1),
            _hex(d, "signature", 65),
            _int(d, "dealer", 1, MAX_KEYPERS),
            _int(d, "keyper", 1, MAX_KEYPERS),
            _scalar(d, "share"),
        )


@dataclass(frozen=True, slots=True)
class DkgShare(DkgMessage):
    """Keyper ``keyper`` releases its secret share ``s_j``."""

    KIND: ClassVar[str] = "share"
    TYPE: ClassVar[bytes] = DKG_SHARE_TYPE

    keyper: int = 0
    share: int = 0

    @property
    def signer_index(self) -> int:
        return self.keyper

    @property
    def slot(self) -> tuple[int, int]:
        return (self.keyper, 0)

    def fields_hash(self) -> bytes:
        return _u(self.keyper, 1 << 16) + _u(self.share)

    def to_json(self) -> dict[str, Any]:
        return {
            "auction_id": self.auction_id,
            "keyper": self.keyper,
            "share": str(self.share),
            "signature": to_hex(self.signature),
        }

    @classmethod
    def from_json(cls, doc: Any) -> DkgShare:
        """Parse a released share."""
        d = _keys(doc, ("auction_id", "keyper", "share", "signature"))
        return cls(
            _int(d, "auction_id", 0, _U64 - 1),
            _hex(d, "signature", 65),
            _int(d, "keyper", 1, MAX_KEYPERS),
            _scalar(d, "share"),
        )


Message = DkgDeal | DkgComplaint | DkgAnswer | DkgShare
#: the path segment of each kind (``/v1/auctions/{T}/dkg/{path}``) and its class
KINDS: dict[str, type[Message]] = {
    "deals": DkgDeal,
    "complaints": DkgComplaint,
    "answers": DkgAnswer,
    "shares": DkgShare,
}
BY_KIND: dict[str, type[Message]] = {cls.KIND: cls for cls in KINDS.values()}


def parse_message(kind: str, doc: Any) -> Message:
    """A message of ``kind`` (``deal``, ``complaint``, ``answer``, ``share``) from its JSON."""
    return BY_KIND[kind].from_json(doc)


def sign(message: Message, signer: Signer, domain: Eip712Domain) -> Message:
    """``message`` with ``signer``'s EIP-712 signature (any signature it had is replaced)."""
    from dataclasses import replace

    return replace(message, signature=signer.sign_digest(message.digest(domain)))


# --- committee and schedule -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Committee:
    """A keyper committee as the settlement contract registers it (keyper j at index j - 1)."""

    committee_id: int
    keypers: tuple[bytes, ...]
    identity_keys: tuple[bytes, ...]
    threshold: int
    phase_seconds: int

    @property
    def n(self) -> int:
        """The number of keypers."""
        return len(self.keypers)

    def address_of(self, index: int) -> bytes | None:
        """Keyper ``index``'s address (1-based), None outside 1..n."""
        return self.keypers[index - 1] if 1 <= index <= self.n else None

    def index_of(self, address: bytes) -> int | None:
        """The 1-based index of ``address``, if it is a keyper."""
        for j, a in enumerate(self.keypers, start=1):
            if a == address:
                return j
        return None

    def identity_map(self) -> dict[int, bytes]:
        """Keyper index -> X25519 identity public key."""
        return {j: k for j, k in enumerate(self.identity_keys, start=1)}

    def to_json(self) -> dict[str, Any]:
        """The committee as the board and the transcript publish it."""
        return {
            "committee_id": self.committee_id,
            "threshold": self.threshold,
            "phase_seconds": self.phase_seconds,
            "keypers": [
                {"index": j, "address": to_checksum_address(a), "identity_key": to_hex(k)}
                for j, (a, k) in enumerate(zip(self.keypers, self.identity_keys, strict=True), 1)
            ],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Committee:
        """Parse ``to_json``'s form (``MalformedError`` if it does not hold together)."""
        try:
            rows = sorted(doc["keypers"], key=lambda r: int(r["index"]))
            if [int(r["index"]) for r in rows] != list(range(1, len(rows) + 1)):
                raise MalformedError("committee: keyper indices must be 1..n")
            return cls(
                int(doc["committee_id"]),
                tuple(parse_address(r["address"]) for r in rows),
                tuple(from_hex(r["identity_key"], 32) for r in rows),
                int(doc["threshold"]),
                int(doc["phase_seconds"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedError(f"committee: {e}") from None


@dataclass(frozen=True, slots=True)
class DkgSchedule:
    """The DKG's phases for one auction: deals, complaints, answers, each ``phase`` seconds
    from the window's opening (``T - window``); the transcript is final at ``final_at``."""

    opens_at: int
    phase: int

    @classmethod
    def of(cls, calendar: AuctionCalendar, auction_id: int, phase_seconds: int) -> DkgSchedule:
        """The schedule of ``auction_id``."""
        return cls(calendar.opens_at(auction_id), phase_seconds)

    @property
    def deals_end(self) -> int:
        """Deals are accepted before this time."""
        return self.opens_at + self.phase

    @property
    def complaints_end(self) -> int:
        """Complaints are accepted before this time."""
        return self.opens_at + 2 * self.phase

    @property
    def final_at(self) -> int:
        """Answers are accepted before this time; from it on the transcript is final."""
        return self.opens_at + 3 * self.phase

    def deadline(self, kind: str) -> int | None:
        """The end of ``kind``'s phase (shares: none)."""
        return {
            "deal": self.deals_end,
            "complaint": self.complaints_end,
            "answer": self.final_at,
        }.get(kind)

    def to_json(self) -> dict[str, int]:
        """The phase ends, as the board publishes them."""
        return {
            "opens_at": self.opens_at,
            "deals_until": self.deals_end,
            "complaints_until": self.complaints_end,
            "answers_until": self.final_at,
        }


# --- what the board decides -------------------------------------------------------------


def check_signer(message: Message, committee: Committee, domain: Eip712Domain) -> None:
    """Raise unless ``message`` is signed by the keyper at the index it names.

    ``SignatureError`` (``bad_signature``) if no address recovers; ``NotKeyperError`` if the
    index is outside the committee or another address signed.
    """
    expected = committee.address_of(message.signer_index)
    if expected is None:
        raise NotKeyperError(
            f"keyper {message.signer_index} is not in the committee of {committee.n}"
        )
    signer = message.signer(domain)
    if signer != expected:
        raise NotKeyperError(
            f"signed by {to_checksum_address(signer)}, not keyper {message.signer_index} "
            f"({to_checksum_address(expected)})"
        )


def check_deal_shape(deal: DkgDeal, committee: Committee) -> None:
    """``MalformedError`` unless the deal has t valid points and n sealed shares."""
    if len(deal.commitments) != committee.threshold:
        raise MalformedError(
            f"body.commitments: {committee.threshold} points (the threshold), "
            f"got {len(deal.commitments)}"
        )
    if not th.commitments_are_valid(deal.commitments, committee.threshold):
        raise MalformedError("body.commitments: not points of Ed25519's prime-order group")
    if len(deal.sealed_shares) != committee.n:
        raise MalformedError(
            f"body.sealed_shares: one per keyper ({committee.n}), got {len(deal.sealed_shares)}"
        )


@dataclass(frozen=True)
class DkgOutcome:
    """What a final board decides: the transcript, Q, the keys and every public share."""

    transcript: th.Transcript
    group_key: bytes  # Edwards PK = sum of C_i0 over Q
    public_key: bytes  # its X25519 (Montgomery) form: the auction public key
    public_shares: dict[int, bytes]

    @property
    def qualified(self) -> frozenset[int]:
        """The qualified dealers Q."""
        return self.transcript.qualified

    @property
    def transcript_hash(self) -> bytes:
        """``commitAuctionKey``'s commitment in threshold mode."""
        return self.transcript.hash()


@dataclass
class BoardState:
    """Every message of one auction's board, by slot."""

    auction_id: int
    committee: Committee
    deals: dict[int, DkgDeal] = field(default_factory=dict)
    complaints: dict[tuple[int, int], DkgComplaint] = field(default_factory=dict)
    answers: dict[tuple[int, int], DkgAnswer] = field(default_factory=dict)
    shares: dict[int, DkgShare] = field(default_factory=dict)

    def add(self, message: Message) -> None:
        """Put ``message`` in its slot (the board keeps the first one; so does this)."""
        if isinstance(message, DkgDeal):
            self.deals.setdefault(message.dealer, message)
        elif isinstance(message, DkgComplaint):
            self.complaints.setdefault(message.slot, message)
        elif isinstance(message, DkgAnswer):
            self.answers.setdefault(message.slot, message)
        else:
            self.shares.setdefault(message.keyper, message)

    @classmethod
    def of(
        cls,
        auction_id: int,
        committee: Committee,
        messages: Iterable[Message],
        domain: Eip712Domain | None = None,
    ) -> BoardState:
        """The board of ``messages``; with ``domain``, each one's auction, signer and shape
        are checked first (a reader that does not trust the board's host)."""
        board = cls(auction_id, committee)
        for m in messages:
            if domain is not None:
                if m.auction_id != auction_id:
                    raise WrongAuctionError(f"a message for auction {m.auction_id}")
                check_signer(m, committee, domain)
                if isinstance(m, DkgDeal):
                    check_deal_shape(m, committee)
            board.add(m)
        return board

    def messages(self) -> list[Message]:
        """Every message, deals first, each kind by slot."""
        return [
            *(self.deals[k] for k in sorted(self.deals)),
            *(self.complaints[k] for k in sorted(self.complaints)),
            *(self.answers[k] for k in sorted(self.answers)),
            *(self.shares[k] for k in sorted(self.shares)),
        ]

    def core_deals(self) -> dict[int, th.Deal]:
        """The deals as ``clearing.threshold`` takes them."""
        return {i: d.core() for i, d in self.deals.items()}

    def outcome(self, chain_id: int, settlement: bytes) -> DkgOutcome:
        """Q, the transcript and the keys (``NotEnoughSharesError`` if fewer than t qualify).

        Only answers to posted complaints count; a failing answer disqualifies its dealer.
        """
        c = self.committee
        deals = self.core_deals()
        complaints = frozenset(self.complaints)
        answers = {k: a.share for k, a in self.answers.items() if (k[1], k[0]) in complaints}
        q = th.qualified(deals, c.threshold, complaints, answers)
        transcript = th.Transcript(
            chain_id=chain_id,
            settlement=settlement,
            auction_id=self.auction_id,
            n=c.n,
            t=c.threshold,
            deals=deals,
            complaints=complaints,
            answers=answers,
            qualified=q,
        )
        group = th.group_public_key(deals, q)
        return DkgOutcome(
            transcript,
            group,
            th.x25519_public_key(group),
            {j: th.public_share(deals, q, j) for j in range(1, c.n + 1)},
        )

    def valid_shares(self, outcome: DkgOutcome) -> dict[int, int]:
        """The released shares that pass ``s_j * B == S_j``, by keyper."""
        return {
            j: s.share
            for j, s in self.shares.items()
            if j in outcome.public_shares
            and th.released_share_is_valid(s.share, outcome.public_shares[j])
        }


def board_document(board: BoardState, schedule: DkgSchedule, *, final: bool) -> dict[str, Any]:
    """``GET /v1/auctions/{T}/dkg``: the committee, the schedule and every message."""
    return {
        "auction_id": board.auction_id,
        "committee": board.committee.to_json(),
        "schedule": schedule.to_json(),
        "final": final,
        "deals": [board.deals[k].to_json() for k in sorted(board.deals)],
        "complaints": [board.complaints[k].to_json() for k in sorted(board.complaints)],
        "answers": [board.answers[k].to_json() for k in sorted(board.answers)],
        "shares": [board.shares[k].to_json() for k in sorted(board.shares)],
    }


def board_from_document(doc: Mapping[str, Any], domain: Eip712Domain | None) -> BoardState:
    """Parse ``board_document``'s form (or a transcript document); with ``domain`` every
    message is checked (signer, auction, shape)."""
    committee = Committee.from_json(doc["committee"])
    messages: list[Message] = []
    for path, cls in KINDS.items():
        messages.extend(cls.from_json(m) for m in doc.get(path) or [])
    return BoardState.of(int(doc["auction_id"]), committee, messages, domain)


def transcript_document(
    board: BoardState, outcome: DkgOutcome, schedule: DkgSchedule
) -> dict[str, Any]:
    """``GET /v1/auctions/{T}/dkg/transcript``: the final DKG, enough to recompute it all.

    The signed deals (with their sealed shares), complaints and answers, the committee and
    what they decide: Q, the transcript hash committed on-chain, the Edwards group key, the
    auction's X25519 public key and every keyper's public share.
    """
    t = outcome.transcript
    return {
        "auction_id": board.auction_id,
        "chain_id": t.chain_id,
        "settlement": to_checksum_address(t.settlement),
        "committee": board.committee.to_json(),
        "schedule": schedule.to_json(),
        "deals": [board.deals[k].to_json() for k in sorted(board.deals)],
        "complaints": [board.complaints[k].to_json() for k in sorted(board.complaints)],
        "answers": [board.answers[k].to_json() for k in sorted(board.answers)],
        "qualified": sorted(outcome.qualified),
        "transcript_hash": to_hex(outcome.transcript_hash),
        "group_key": to_hex(outcome.group_key),
        "public_key": to_hex(outcome.public_key),
        "public_shares": {str(j): to_hex(p) for j, p in sorted(outcome.public_shares.items())},
    }


def shares_document(board: BoardState) -> dict[str, Any]:
    """``GET /v1/auctions/{T}/dkg/shares``: the released key shares."""
    return {
        "auction_id": board.auction_id,
        "shares": [board.shares[k].to_json() for k in sorted(board.shares)],
    }


__all__ = [
    "BOARD_STATUS",
    "BY_KIND",
    "DKG_ANSWER_TYPE",
    "DKG_COMPLAINT_TYPE",
    "DKG_DEAL_TYPE",
    "DKG_SHARE_TYPE",
    "KINDS",
    "MAX_KEYPERS",
    "SEALED_SHARE_LENGTH",
    "BoardError",
    "BoardState",
    "Committee",
    "DkgAnswer",
    "DkgComplaint",
    "DkgDeal",
    "DkgFailedError",
    "DkgMessage",
    "DkgNotFinalError",
    "DkgOutcome",
    "DkgSchedule",
    "DkgShare",
    "DuplicateMessageError",
    "InvalidShareError",
    "Message",
    "NoCommitteeError",
    "NoComplaintError",
    "NotKeyperError",
    "SignatureError",
    "TooEarlyError",
    "TooLateError",
    "WrongAuctionError",
    "board_document",
    "board_from_document",
    "check_deal_shape",
    "check_signer",
    "parse_message",
    "shares_document",
    "sign",
    "transcript_document",
]
