"""``qev status``: one auction at a glance, from the chain and (optionally) the service.

:func:`collect_status` reads everything once into a frozen :class:`AuctionStatus`;
:func:`render_status` turns it into aligned lines for people (amounts in USDai / sUSDai with
thousands separators, times in UTC ISO with a countdown), :func:`status_json` into a JSON
object with the encodings of PROTOCOL 4.1 (amounts as decimal strings of wei, times as unix
seconds, bytes as ``0x`` hex).

Status of the auction, from chain state and ``now`` (chain time):

- ``upcoming``: its window has not opened yet (``now < T - window``);
- ``open``: bidding (``now < T``);
- ``closing``: past T, not settled on-chain yet;
- ``settled``: ``settleAuction`` ran (``auction(T).settledAt != 0``), key not revealed;
- ``revealed``: the auction key is revealed on-chain (the contract reveals only after
  settlement).

Reads: ``auctionKey(T)``, ``auction(T)``, the ``AuctionSettled`` event (from the first
block at or after ``settledAt``), and the vault's queue views (``redemptionQueueInfo``,
``qevLockedShares``, ``balances``, ``redemptionSharePrice`` and the queue from its head for
as far as the free liquidity could service it). With a ``documents`` getter, also the
service's ``/v1/auctions/{T}`` and, once past T, ``/book`` and (after clearing)
``/result``; the getter returns the parsed JSON or None when the document is not there.
A getter that raises is reported in ``notes``, never fatal; chain read errors propagate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clearing.calendar import AuctionCalendar
from clearing.config import scrub_error
from clearing.errors import ChainReadError
from clearing.hexcodec import to_hex
from keeper.chain import Chain, serviceable_shares

DECIMALS = 18
PLACES = 6  # decimal places shown by render_status (JSON keeps every wei)
STATUSES = ("upcoming", "open", "closing", "settled", "revealed")
CLEARED = ("cleared", "submitted", "settled", "revealed")  # service statuses with a result

Documents = Callable[[str], object | None]


@dataclass(frozen=True)
class Settlement:
    """``auction(T)`` once settled, and the transaction that settled it."""

    allocation_root: str
    bid_book_root: str
    total_shares: int
    total_burnt: int
    total_payout: int
    fee_shares: int
    claimed_shares: int
    claimed_payout: int
    settled_at: int
    tx_hash: str | None  # None if the event was not found (or the lookup failed: see notes)
    tx_block: int | None

    @property
    def claims_complete(self) -> bool:
        """Every allocation was claimed (pushed by the keeper or claimed by its winner)."""
        return (self.claimed_shares, self.claimed_payout) == (self.total_shares, self.total_payout)


@dataclass(frozen=True)
class QueueState:
    """What the vault's views say about the FIFO queue now."""

    pending_shares: int  # pending shares of the whole queue
    locked_shares: int  # of which locked by settled, unclaimed allocations
    serviceable_shares: int  # what serviceRedemptions could take now (0: nothing left to do)
    set_aside: int  # USDai reserved for serviced requests, not yet redeemed
    free_liquidity: int  # USDai held minus set aside
    share_price: int  # redemptionSharePrice, 1e18 fixed point


@dataclass(frozen=True)
class ServiceView:
    """What the service's documents say (fields are None when not published or unknown)."""

    status: str | None = None
    bids: int | None = None  # live envelopes in the book
    bids_source: str | None = None  # the path the count came from
    book_root: str | None = None
    book_frozen: bool | None = None
    valid: int | None = None
    excluded: int | None = None
    winners: int | None = None


@dataclass(frozen=True)
class AuctionStatus:
    """One auction's state at ``now``; see the module docstring."""

    auction_id: int
    opens_at: int
    closes_at: int
    now: int
    status: str
    key_committed: bool
    public_key: str | None
    commitment: str | None
    revealed: bool
    book_root: str | None  # on-chain bidBookRoot (only once settled)
    settlement: Settlement | None
    queue: QueueState
    service: ServiceView | None  # None without a documents getter
    notes: tuple[str, ...] = field(default=())

    @property
    def bids(self) -> int | None:
        """Number of live envelopes, if the service told."""
        return None if self.service is None else self.service.bids


# --- collect --------------------------------------------------------------------------


def collect_status(
    chain: Chain,
    auction_id: int,
    *,
    now: int,
    calendar: AuctionCalendar,
    documents: Documents | None = None,
) -> AuctionStatus:
    """Read auction ``auction_id``'s state from ``chain`` (and the service via ``documents``).

    ``now`` is the chain time the status is judged at. Raises ``ValueError`` if
    ``auction_id`` is not a window boundary of ``calendar``, ``ChainReadError`` if the chain
    cannot be read.
    """
    if not calendar.is_boundary(auction_id):
        raise ValueError(
            f"{auction_id} is not an auction id (genesis {calendar.genesis} + k * "
            f"{calendar.window})"
        )
    notes: list[str] = []
    key = chain.key_state(auction_id)
    onchain = chain.settled(auction_id)
    settlement = None
    if onchain.settled_at:
        found = None
        try:
            first = chain.first_block_at_or_after(onchain.settled_at)
            found = chain.settlement_tx(auction_id, first[0] if first else 0)
        except ChainReadError as e:
            notes.append(f"settlement transaction not found: {e}")
        settlement = Settlement(
            allocation_root=to_hex(onchain.allocation_root),
            bid_book_root=to_hex(onchain.bid_book_root),
            total_shares=onchain.total_shares,
            total_burnt=onchain.total_burnt,
            total_payout=onchain.total_payout,
            fee_shares=onchain.fee_shares,
            claimed_shares=onchain.claimed_shares,
            claimed_payout=onchain.claimed_payout,
            settled_at=onchain.settled_at,
            tx_hash=found[0] if found else None,
            tx_block=found[1] if found else None,
        )
    if key.revealed:
        status = "revealed"
    elif settlement is not None:
        status = "settled"
    elif now >= auction_id:
        status = "closing"
    elif now >= calendar.opens_at(auction_id):
        status = "open"
    else:
        status = "upcoming"
    return AuctionStatus(
        auction_id=auction_id,
        opens_at=calendar.opens_at(auction_id),
        closes_at=auction_id,
        now=now,
        status=status,
        key_committed=key.committed,
        public_key=to_hex(key.public_key) if key.committed else None,
        commitment=to_hex(key.commitment) if key.committed else None,
        revealed=key.revealed,
        book_root=settlement.bid_book_root if settlement else None,
        settlement=settlement,
        queue=_queue(chain, now),
        service=None if documents is None else _service(documents, auction_id, now, notes),
        notes=tuple(notes),
    )


def _queue(chain: Chain, now: int) -> QueueState:
    """The queue views; ``serviceable_shares`` is the keeper's own computation (jobs)."""
    pending, locked = chain.pending_shares(), chain.locked_shares()
    price = chain.share_price()
    try:
        held, set_aside = (int(x) for x in chain.vault.functions.balances().call())
    except Exception as e:
        raise ChainReadError(f"balances failed: {scrub_error(e)}") from e
    free = held - set_aside
    cap = max(pending - locked, 0)
    return QueueState(
        pending_shares=pending,
        locked_shares=locked,
        serviceable_shares=serviceable_shares(chain.queue(), now, price, free, cap),
        set_aside=set_aside,
        free_liquidity=free,
        share_price=price,
    )


def _service(documents: Documents, auction_id: int, now: int, notes: list[str]) -> ServiceView:
    base = f"/v1/auctions/{auction_id}"

    def get(path: str) -> Mapping[str, Any] | None:
        try:
            doc = documents(path)
        except Exception as e:  # the service is optional here: say so and carry on
            notes.append(f"{path}: {type(e).__name__}: {scrub_error(e)}")
            return None
        if doc is not None and not isinstance(doc, Mapping):
            notes.append(f"{path}: not a JSON object")
            return None
        return doc

    auction = get(base)
    service_status = _str(auction, "status")
    bids = _int(auction, "bids")  # a count, if the service's auction document carries one
    source = None if bids is None else base
    book_root = book_frozen = None
    if now >= auction_id:  # /book and /result are published after close
        book = get(f"{base}/book")
        if book is not None and isinstance(book.get("bids"), list):
            bids, source = len(book["bids"]), f"{base}/book"
            book_root = _str(book, "bid_book_root")
            book_frozen = book.get("frozen", True) is not False
    valid = excluded = winners = None
    if service_status in CLEARED:
        result = get(f"{base}/result")
        if result is not None:
            outcomes, dropped = result.get("outcomes"), result.get("excluded")
            valid = len(outcomes) if isinstance(outcomes, Mapping | list) else None
            excluded = len(dropped) if isinstance(dropped, list) else None
            winners = _int(result, "winners")
    return ServiceView(
        status=service_status,
        bids=bids,
        bids_source=source,
        book_root=book_root,
        book_frozen=book_frozen,
        valid=valid,
        excluded=excluded,
        winners=winners,
    )


def _str(doc: Mapping[str, Any] | None, name: str) -> str | None:
    value = None if doc is None else doc.get(name)
    return value if isinstance(value, str) else None


def _int(doc: Mapping[str, Any] | None, name: str) -> int | None:
    value = None if doc is None else doc.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- human units ----------------------------------------------------------------------


def format_amount(wei: int, decimals: int = DECIMALS, places: int | None = None) -> str:
    """``wei`` as a decimal amount with thousands separators: 1234500...0 -> ``1,234.5``.

    Exact by default; with ``places``, cut (toward zero) to that many decimals, and a
    non-zero amount that would show as 0 shows as ``<0.000001``. Trailing zeros are dropped.
    """
    sign, size = ("-", -wei) if wei < 0 else ("", wei)
    shown = decimals if places is None else min(places, decimals)
    whole, frac = divmod(size // 10 ** (decimals - shown), 10**shown)
    if size and not (whole or frac):
        smallest = f"0.{'0' * (shown - 1)}1" if shown else "1"
        return f"{'>-' if sign else '<'}{smallest}"
    digits = f"{frac:0{shown}d}".rstrip("0") if shown else ""
    return f"{sign}{whole:,}" + (f".{digits}" if digits else "")


def format_time(ts: int) -> str:
    """Unix seconds as UTC ISO 8601: 2026-01-01T00:00:00Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def countdown(target: int, now: int) -> str:
    """``in 2d 03:04:05`` / ``in 00:04:05`` before ``target``, ``5 min ago`` after, ``now``."""
    delta = target - now
    if delta == 0:
        return "now"
    if delta > 0:
        days, rest = divmod(delta, 86_400)
        hours, rest = divmod(rest, 3_600)
        minutes, seconds = divmod(rest, 60)
        clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
        return f"in {days}d {clock}" if days else f"in {clock}"
    ago = -delta
    if ago < 60:
        return f"{ago} s ago"
    if ago < 3_600:
        return f"{ago // 60} min ago"
    if ago < 86_400:
        return f"{ago // 3_600} h {ago % 3_600 // 60} min ago"
    return f"{ago // 86_400} d {ago % 86_400 // 3_600} h ago"


def _when(ts: int, now: int) -> str:
    return f"{format_time(ts)} ({countdown(ts, now)})"


def _usdai(wei: int) -> str:
    return f"{format_amount(wei, places=PLACES)} USDai"


def _susdai(wei: int) -> str:
    return f"{format_amount(wei, places=PLACES)} sUSDai"


# --- render ---------------------------------------------------------------------------


def render_status(status: AuctionStatus) -> str:
    """Aligned ``label  value`` lines for people (continuation lines leave the label empty)."""
    s, now = status, status.now
    rows: list[tuple[str, str]] = [
        ("auction", f"{s.auction_id}"),
        ("window", f"{format_time(s.opens_at)} .. {format_time(s.closes_at)}"),
        ("status", s.status),
        ("closes", _when(s.closes_at, now)),
        ("bids", _bids_line(s)),
    ]
    if s.key_committed:
        rows += [
            ("key committed", f"yes, public key {s.public_key}"),
            ("", f"commitment {s.commitment}"),
        ]
    else:
        rows.append(("key committed", "no"))
    if s.book_root is not None:
        rows.append(("book root", f"{s.book_root} (on-chain)"))
    elif s.service is not None and s.service.book_root is not None:
        frozen = "frozen" if s.service.book_frozen else "not frozen yet"
        rows.append(("book root", f"{s.service.book_root} (service, {frozen}; not on-chain yet)"))
    else:
        rows.append(("book root", "not on-chain yet"))
    rows += _settlement_rows(s)
    rows += _queue_rows(s)
    rows.append(("reveal", "revealed" if s.revealed else "not revealed"))
    rows += [("note", n) for n in s.notes]
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}".rstrip() for label, value in rows)


def _bids_line(s: AuctionStatus) -> str:
    v = s.service
    if v is None:
        return "unknown (no service given)"
    if v.bids is None:
        why = "published at close" if s.now < s.closes_at else "book not available"
        return f"unknown ({why})" + (f", service: {v.status}" if v.status else "")
    parts = [f"{v.bids:,} live envelopes"]
    if v.bids_source and v.bids_source.endswith("/book"):
        parts.append("book frozen" if v.book_frozen else "book not frozen yet")
    if v.valid is not None:
        parts.append(f"{v.valid:,} valid, {v.excluded or 0:,} excluded")
    if v.winners is not None:
        parts.append(f"{v.winners:,} winners")
    if v.status is not None:
        parts.append(f"service: {v.status}")
    return ", ".join(parts)


def _settlement_rows(s: AuctionStatus) -> list[tuple[str, str]]:
    st = s.settlement
    if st is None:
        return [("settlement", "not settled"), ("claims", "-")]
    tx = "not found" if st.tx_hash is None else f"{st.tx_hash} (block {st.tx_block})"
    rows = [
        ("settlement", f"settled {_when(st.settled_at, s.now)}"),
        ("", f"tx {tx}"),
        ("", f"allocation root {st.allocation_root}"),
        ("", f"filled {_susdai(st.total_shares)}, burnt {_susdai(st.total_burnt)}"),
        ("", f"payout {_usdai(st.total_payout)}, admin fee {_susdai(st.fee_shares)}"),
    ]
    if st.total_shares == 0 and st.total_payout == 0:
        rows.append(("claims", "no winners"))
    else:
        state = "all pushed" if st.claims_complete else "pending"
        rows += [
            ("claims", f"{_susdai(st.claimed_shares)} of {_susdai(st.total_shares)}"),
            ("", f"{_usdai(st.claimed_payout)} of {_usdai(st.total_payout)}: {state}"),
        ]
    return rows


def _queue_rows(s: AuctionStatus) -> list[tuple[str, str]]:
    q = s.queue
    todo = (
        "nothing serviceable now"
        if q.serviceable_shares == 0
        else f"{_susdai(q.serviceable_shares)} serviceable now"
    )
    return [
        ("queue", f"pending {_susdai(q.pending_shares)} (locked {_susdai(q.locked_shares)})"),
        ("", todo),
        ("", f"set aside {_usdai(q.set_aside)}, free liquidity {_usdai(q.free_liquidity)}"),
        ("", f"share price {format_amount(q.share_price, places=PLACES)} USDai per sUSDai"),
    ]


# --- JSON -----------------------------------------------------------------------------


def status_json(status: AuctionStatus) -> dict[str, Any]:
    """A JSON object (PROTOCOL 4.1 encodings: wei as decimal strings, unix times, hex)."""
    s = status
    st = s.settlement
    q = s.queue
    v = s.service
    return {
        "auction_id": s.auction_id,
        "opens_at": s.opens_at,
        "closes_at": s.closes_at,
        "now": s.now,
        "closes_in_s": s.closes_at - s.now,
        "status": s.status,
        "bids": s.bids,
        "key": {
            "committed": s.key_committed,
            "public_key": s.public_key,
            "commitment": s.commitment,
        },
        "book_root": s.book_root,
        "settlement": None
        if st is None
        else {
            "allocation_root": st.allocation_root,
            "bid_book_root": st.bid_book_root,
            "total_shares": str(st.total_shares),
            "total_burnt": str(st.total_burnt),
            "total_payout": str(st.total_payout),
            "fee_shares": str(st.fee_shares),
            "settled_at": st.settled_at,
            "tx": st.tx_hash,
            "block": st.tx_block,
        },
        "claims": None
        if st is None
        else {
            "claimed_shares": str(st.claimed_shares),
            "claimed_payout": str(st.claimed_payout),
            "total_shares": str(st.total_shares),
            "total_payout": str(st.total_payout),
            "complete": st.claims_complete,
        },
        "queue": {
            "pending_shares": str(q.pending_shares),
            "locked_shares": str(q.locked_shares),
            "serviceable_shares": str(q.serviceable_shares),
            "set_aside": str(q.set_aside),
            "free_liquidity": str(q.free_liquidity),
            "share_price": str(q.share_price),
        },
        "revealed": s.revealed,
        "service": None
        if v is None
        else {
            "status": v.status,
            "bids": v.bids,
            "bids_source": v.bids_source,
            "book_root": v.book_root,
            "book_frozen": v.book_frozen,
            "valid": v.valid,
            "excluded": v.excluded,
            "winners": v.winners,
        },
        "notes": list(s.notes),
    }


__all__ = [
    "STATUSES",
    "AuctionStatus",
    "QueueState",
    "ServiceView",
    "Settlement",
    "collect_status",
    "countdown",
    "format_amount",
    "format_time",
    "render_status",
    "status_json",
]
