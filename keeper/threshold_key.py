"""Threshold-mode auction keys on the keeper's side (PROTOCOL 10).

- ``ChainCommittees``: the keyper committee, the auction's key mode and its book commitment,
  read from the settlement contract (the bulletin board's ``CommitteeSource`` too);
- ``ThresholdKeys``: the keeper's ``KeySource`` (``keeper.jobs``): at window open, once the
  DKG on the board is final, the group key and the transcript hash to commit with
  ``commitAuctionKey``; at close, once ``commitBook`` is on-chain and t keypers released
  valid shares, the combined key in its X25519 form, checked ``X25519(k, 9) == publicKey``.
  While fewer than t valid shares are on the board it logs an ERROR line, sets the
  ``qev_keeper_threshold_shares`` gauge and raises ``SharesShortError`` (the loop logs
  "needs attention" and counts ``qev_keeper_errors{code="not_enough_shares"}``; the next
  tick tries again).

The board is read from the store the keeper shares with the service; every message is
checked again here (signer, shape), as any reader of the board does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Gauge

from clearing import threshold as th
from clearing.calendar import AuctionCalendar
from clearing.dkg import BoardState, Committee, DkgOutcome, DkgSchedule, parse_message
from clearing.eip712 import Eip712Domain
from clearing.errors import QevError
from clearing.hexcodec import to_hex
from clearing.sealing import public_key_of
from clearing.store.board import BoardStore
from keeper.chain import AuctionKeyState, Chain

log = logging.getLogger("qev.keeper")

KEY_MODE_SINGLE = 0
KEY_MODE_THRESHOLD = 1
#: seconds after the answer phase before the keeper reads the transcript as final (a message
#: accepted just before the deadline is stored a moment later)
FINAL_GRACE = 30


class SharesShortError(QevError):
    """Fewer than t valid key shares are released: the book cannot be opened yet."""

    code = "not_enough_shares"


class ThresholdStateError(QevError):
    """The DKG or the chain is not in a state the keeper can commit or open a key from."""

    code = "threshold_state"


# --- chain reads of the settlement contract's threshold views ---------------------------


@dataclass(frozen=True, slots=True)
class BookCommitment:
    """``bookCommitment(T)``."""

    root: bytes
    count: int
    committed_at: int

    @property
    def committed(self) -> bool:
        """Whether ``commitBook(T)`` ran."""
        return self.committed_at != 0


def book_commitment(chain: Chain, auction_id: int) -> BookCommitment:
    """The book committed for ``auction_id`` (``committed_at`` 0 if none)."""
    root, count, at = chain._call(chain.settlement.functions.bookCommitment(auction_id))
    return BookCommitment(bytes(root), int(count), int(at))


def auction_key_mode(chain: Chain, auction_id: int) -> tuple[int, int]:
    """(mode, committee id) recorded with ``auction_id``'s key (0, 0 before it is committed)."""
    mode, committee = chain._call(chain.settlement.functions.auctionKeyMode(auction_id))
    return int(mode), int(committee)


def current_committee_id(chain: Chain) -> int:
    """The committee registered last (0: none)."""
    return int(chain._call(chain.settlement.functions.committeeId()))


def read_committee(chain: Chain, committee_id: int) -> Committee | None:
    """Committee ``committee_id`` (None for 0 or an unknown id)."""
    if committee_id == 0:
        return None
    keypers, identities, t, phase = chain._call(
        chain.settlement.functions.keyperCommittee(committee_id)
    )
    if not keypers:
        return None
    return Committee(
        committee_id,
        tuple(bytes.fromhex(str(a)[2:]) for a in keypers),
        tuple(bytes(k) for k in identities),
        int(t),
        int(phase),
    )


class ChainCommittees:
    """The committee of each auction, from the chain, cached.

    A committee id never changes its members, so committees are kept for the process's
    life; the current id is re-read at most every ``ttl`` seconds; an auction's recorded
    committee is kept once its key is committed in threshold mode.
    """

    def __init__(
        self, chain: Chain, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic
    ):
        self.chain, self.ttl, self.clock = chain, ttl, clock
        self._committees: dict[int, Committee | None] = {}
        self._recorded: dict[int, int] = {}
        self._current: tuple[float, int] | None = None
        self._lock = threading.Lock()

    def _committee(self, committee_id: int) -> Committee | None:
        with self._lock:
            if committee_id in self._committees:
                return self._committees[committee_id]
        found = read_committee(self.chain, committee_id)
        with self._lock:
            self._committees[committee_id] = found
        return found

    def committee_id_for(self, auction_id: int) -> int:
        """The committee id of ``auction_id``'s DKG (recorded, else current; 0: none)."""
        if auction_id in self._recorded:
            return self._recorded[auction_id]
        mode, recorded = auction_key_mode(self.chain, auction_id)
        if mode == KEY_MODE_THRESHOLD:
            self._recorded[auction_id] = recorded
            return recorded
        now = self.clock()
        if self._current is None or now - self._current[0] >= self.ttl:
            self._current = (now, current_committee_id(self.chain))
        return self._current[1]

    def committee_for(self, auction_id: int) -> Committee | None:
        """The committee of ``auction_id``'s DKG (None: none registered)."""
        return self._committee(self.committee_id_for(auction_id))

    def book_committed(self, auction_id: int) -> bool:
        """Whether ``commitBook(T)`` is on-chain."""
        return book_commitment(self.chain, auction_id).committed


# --- the keeper's key source ------------------------------------------------------------


class ThresholdKeys:
    """The keeper's ``KeySource`` in threshold mode (see the module docstring).

    ``service_clock`` is the board's clock (the service's): the transcript is read once it
    passed the answer phase by ``FINAL_GRACE`` seconds.
    """

    def __init__(
        self,
        chain: Chain,
        store: BoardStore,
        domain: Eip712Domain,
        calendar: AuctionCalendar,
        *,
        service_clock: Callable[[], int] = lambda: int(time.time()),
        committees: ChainCommittees | None = None,
        registry: CollectorRegistry | None = None,
        grace: int = FINAL_GRACE,
    ) -> None:
        self.chain, self.store, self.domain, self.calendar = chain, store, domain, calendar
        self.service_clock, self.grace = service_clock, grace
        self.committees = committees or ChainCommittees(chain)
        self.shares_gauge = Gauge(
            "qev_keeper_threshold_shares",
            "Valid key shares released on the board for an auction being closed (threshold "
            "mode); below the threshold the book cannot be opened",
            ["auction", "threshold"],
            registry=registry if registry is not None else CollectorRegistry(),
        )

    # --- the board ---------------------------------------------------------------

    def board(self, auction_id: int) -> tuple[BoardState, DkgSchedule]:
        """The auction's board from the store, every message checked (signer, shape)."""
        committee = self.committees.committee_for(auction_id)
        if committee is None:
            raise ThresholdStateError("no keyper committee is registered on-chain")
        messages = [
            parse_message(r.kind, orjson.loads(r.body))
            for r in self.store.board_records(auction_id)
        ]
        board = BoardState.of(auction_id, committee, messages, self.domain)
        return board, DkgSchedule.of(self.calendar, auction_id, committee.phase_seconds)

    def outcome(self, auction_id: int) -> DkgOutcome | None:
        """The final DKG's outcome, None while the DKG runs (``ThresholdStateError`` if it
        ended with fewer than t qualified dealers)."""
        board, schedule = self.board(auction_id)
        if self.service_clock() < schedule.final_at + self.grace:
            return None
        try:
            return board.outcome(self.domain.chain_id, self.domain.verifying_contract)
        except th.NotEnoughSharesError as e:
            raise ThresholdStateError(
                f"auction {auction_id}: the DKG failed ({e}); no threshold key can be committed"
            ) from None

    # --- KeySource ---------------------------------------------------------------

    def key_to_commit(self, auction_id: int) -> tuple[bytes, bytes] | None:
        """(X25519 public key, transcript hash) once the DKG is final; None before."""
        mode, _ = auction_key_mode(self.chain, auction_id)
        state = self.chain.key_state(auction_id)
        if state.committed and mode != KEY_MODE_THRESHOLD:
            raise ThresholdStateError(f"auction {auction_id}'s key is committed in single mode")
        outcome = self.outcome(auction_id)
        if outcome is None:
            log.info("auction %d: waiting for the DKG to end before committing its key", auction_id)
            return None
        log.info(
            "auction %d: DKG final: qualified %s, public key %s, transcript %s",
            auction_id,
            sorted(outcome.qualified),
            to_hex(outcome.public_key),
            to_hex(outcome.transcript_hash),
        )
        return outcome.public_key, outcome.transcript_hash

    def check_committed(self, auction_id: int, state: AuctionKeyState) -> None:
        """The key on-chain is this DKG's (threshold mode, public key, transcript hash)."""
        from keeper.jobs import KeeperStateError

        mode, _ = auction_key_mode(self.chain, auction_id)
        if mode != KEY_MODE_THRESHOLD:
            raise KeeperStateError(f"auction {auction_id}'s key was committed in single mode")
        outcome = self.outcome(auction_id)
        if outcome is None:
            raise KeeperStateError(f"auction {auction_id}: the DKG on the board is not final")
        if (state.public_key, state.commitment) != (outcome.public_key, outcome.transcript_hash):
            raise KeeperStateError(
                f"auction {auction_id}: the key committed on-chain is not the board's DKG "
                f"(transcript {to_hex(outcome.transcript_hash)}); nothing was sent"
            )

    def secret(self, auction_id: int) -> bytes:
        """The combined X25519 private key (after ``commitBook``), checked against the
        public key committed on-chain; ``SharesShortError`` while fewer than t are valid."""
        from keeper.jobs import KeeperStateError

        board, _ = self.board(auction_id)
        outcome = self.outcome(auction_id)
        if outcome is None:
            raise KeeperStateError(f"auction {auction_id}: the DKG on the board is not final")
        valid = board.valid_shares(outcome)
        t = board.committee.threshold
        self.shares_gauge.labels(auction=str(auction_id), threshold=str(t)).set(len(valid))
        if len(valid) < t:
            bad = sorted(set(board.shares) - set(valid))
            log.error(
                "auction %d: %d of %d key shares released (valid: %s%s); the book cannot be "
                "opened until %d keypers release theirs",
                auction_id,
                len(valid),
                t,
                sorted(valid),
                f", invalid: {bad}" if bad else "",
                t,
                extra={"auction_id": auction_id, "valid_shares": len(valid), "threshold": t},
            )
            raise SharesShortError(
                f"auction {auction_id}: {len(valid)} valid key shares of the {t} needed"
            )
        key = th.x25519_private_key(th.combine(valid, t))
        state = self.chain.key_state(auction_id)
        if public_key_of(key) != state.public_key or public_key_of(key) != outcome.public_key:
            raise KeeperStateError(
                f"auction {auction_id}: the combined key does not give the committed public key"
            )
        return key


def threshold_source(
    settings: Any, chain: Chain, store: BoardStore, domain: Eip712Domain
) -> ThresholdKeys | None:
    """The keeper's key source for ``settings.key_mode`` (None: single mode, master secret).

    For ``keeper.factory.build_keeper``: ``KeeperConfig(key_source=threshold_source(...))``.
    """
    if getattr(settings, "key_mode", "single") != "threshold":
        return None
    return ThresholdKeys(chain, store, domain, AuctionCalendar(chain.genesis(), settings.window))


__all__ = [
    "FINAL_GRACE",
    "KEY_MODE_SINGLE",
    "KEY_MODE_THRESHOLD",
    "BookCommitment",
    "ChainCommittees",
    "SharesShortError",
    "ThresholdKeys",
    "ThresholdStateError",
    "auction_key_mode",
    "book_commitment",
    "current_committee_id",
    "read_committee",
    "threshold_source",
]
