"""The keeper's two transaction lanes (urgent: settle, reveal; housekeeping: claims, queue)."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount

from keeper.tx import TxReceiptInfo, TxSender


class RetryingSender:
    """A ``TxSender`` whose ``send`` retries retryable failures (re-simulating each time)."""

    def __init__(self, tx: TxSender, attempts: int = 5, backoff: float = 0.5) -> None:
        self.tx, self.attempts, self.backoff = tx, attempts, backoff

    @property
    def address(self) -> str:
        """The lane's account."""
        return self.tx.address

    def simulate(self, fn: Any, *, block: int | str = "pending") -> bytes:
        """``eth_call`` from the lane's account at ``block``; raises SimulationRevertError."""
        return self.tx.simulate(fn, block=block)

    def send(self, fn: Any, *, label: str) -> TxReceiptInfo:
        """Simulate, estimate, sign, send, confirm; retry what a retry can fix."""
        return self.tx.send_with_retry(
            fn, label=label, attempts=self.attempts, backoff=self.backoff
        )


def make_sender(
    w3: Any,
    account: LocalAccount,
    *,
    confirmations: int = 1,
    poll_interval: float = 0.05,
    stuck_after: float = 30.0,
    deadline: float = 600.0,
) -> RetryingSender:
    """A retrying sender for ``account`` on ``w3``'s chain."""
    tx = TxSender(
        w3,
        account,
        chain_id=int(w3.eth.chain_id),
        confirmations=confirmations,
        poll_interval=poll_interval,
        stuck_after=stuck_after,
        deadline=deadline,
    )
    return RetryingSender(tx)


__all__ = ["RetryingSender", "make_sender"]
