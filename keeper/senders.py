"""The keeper's two transaction lanes (urgent: settle, reveal; housekeeping: claims, queue)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount

from keeper.tx import PROGRESS_EVERY, TxReceiptInfo, TxSender


class RetryingSender:
    """A ``TxSender`` whose ``send`` retries retryable failures (re-simulating each time)."""

    def __init__(self, tx: TxSender, attempts: int = 5, backoff: float = 0.5) -> None:
        self.tx, self.attempts, self.backoff = tx, attempts, backoff

    @property
    def address(self) -> str:
        """The lane's account."""
        return self.tx.address

    @property
    def lane(self) -> str | None:
        """The lane's name in log records and metrics (``urgent``, ``housekeeping``), if set."""
        return self.tx.lane

    @lane.setter
    def lane(self, name: str | None) -> None:
        self.tx.lane = name

    def oldest_pending_age(self) -> float:
        """Seconds the oldest unconfirmed transaction of the lane has been out (0.0: none)."""
        return self.tx.oldest_pending_age()

    def simulate(self, fn: Any, *, block: int | str = "pending") -> bytes:
        """``eth_call`` from the lane's account at ``block``; raises SimulationRevertError."""
        return self.tx.simulate(fn, block=block)

    def send(self, fn: Any, *, label: str) -> TxReceiptInfo:
        """Simulate, estimate, sign, send, confirm; retry what a retry can fix."""
        return self.tx.send_with_retry(
            fn, label=label, attempts=self.attempts, backoff=self.backoff
        )

    def send_many(
        self,
        calls: list[tuple[Any, str]],
        *,
        depth: int = 8,
        sizes: list[int] | None = None,
        estimate_every: int = 32,
    ) -> list[TxReceiptInfo]:
        """Calls ``(fn, label)`` pipelined, ``depth`` in flight, gas scaled by ``sizes``
        (see ``TxSender.send_many``)."""
        return self.tx.send_many(calls, depth=depth, sizes=sizes, estimate_every=estimate_every)


def make_sender(
    w3: Any,
    account: LocalAccount,
    *,
    confirmations: int = 1,
    poll_interval: float = 0.05,
    stuck_after: float = 30.0,
    deadline: float = 600.0,
    lane: str | None = None,
    progress_every: float = PROGRESS_EVERY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RetryingSender:
    """A retrying sender for ``account`` on ``w3``'s chain (``lane`` names it in logs)."""
    tx = TxSender(
        w3,
        account,
        chain_id=int(w3.eth.chain_id),
        confirmations=confirmations,
        poll_interval=poll_interval,
        stuck_after=stuck_after,
        deadline=deadline,
        lane=lane,
        progress_every=progress_every,
        clock=clock,
        sleep=sleep,
    )
    return RetryingSender(tx)


__all__ = ["RetryingSender", "make_sender"]
