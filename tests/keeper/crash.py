"""Kill a keeper at a chosen point of ``close_auction`` (the process dies: nothing after runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keeper.jobs import Keeper


class Crash(Exception):  # noqa: N818 - it is not an error, it is a kill
    """The keeper process dies here."""


class CrashAfterSend:
    """A sender that dies right after its transaction with ``label_prefix`` is confirmed
    (mined on-chain, but the keeper never got to record it); ``then`` runs first."""

    def __init__(
        self, inner: Any, label_prefix: str, then: Callable[[], None] | None = None
    ) -> None:
        self.inner, self.prefix, self.then, self.fired = inner, label_prefix, then, False

    @property
    def address(self) -> str:
        return str(self.inner.address)

    def simulate(self, fn: Any, *, block: int | str) -> bytes:
        return bytes(self.inner.simulate(fn, block=block))

    def send(self, fn: Any, *, label: str) -> Any:
        receipt = self.inner.send(fn, label=label)
        if label.startswith(self.prefix) and not self.fired:
            self.fired = True
            if self.then is not None:
                self.then()
                return receipt
            raise Crash(f"killed after {label} was mined")
        return receipt


def _raise(*_: Any, **__: Any) -> None:
    raise Crash("killed")


def die_before(method: str) -> Callable[[Keeper], None]:
    def arm(k: Keeper) -> None:
        setattr(k, method, _raise)  # the next step never starts

    return arm


def die_in_snapshot(k: Keeper) -> None:
    k.chain.snapshot_requests = _raise  # type: ignore[method-assign,assignment]


def die_after_tx(lane: str, prefix: str) -> Callable[[Keeper], None]:
    def arm(k: Keeper) -> None:
        setattr(k, lane, CrashAfterSend(getattr(k, lane), prefix))

    return arm


# crash point -> (how to kill the first keeper, the steps the restarted keeper does)
CRASHES: dict[str, tuple[Callable[[Keeper], None], list[str]]] = {
    # the frozen book is stored while the envelopes are opened: a keeper killed before
    # that freezes again (the fence keeps the store's live bids: the same book)
    "after-freeze": (die_in_snapshot, ["freeze", "clear", "settle", "claims", "service", "reveal"]),
    "after-clear": (die_before("_settle"), ["settle", "claims", "service", "reveal"]),
    "after-settle": (die_before("_push_claims"), ["claims", "service", "reveal"]),
    "after-claims": (die_before("_service_queue"), ["service", "reveal"]),
    "after-service": (die_before("_reveal"), ["reveal"]),
    # the transaction is mined but the keeper dies before writing anything down
    "settle-tx-mined": (die_after_tx("urgent", "settleAuction"), ["claims", "service", "reveal"]),
    "claims-tx-mined": (die_after_tx("housekeeping", "claimMultiple"), ["service", "reveal"]),
    "service-tx-mined": (die_after_tx("housekeeping", "serviceRedemptions"), ["reveal"]),
    "reveal-tx-mined": (die_after_tx("urgent", "revealAuctionKey"), []),
}


def skipped_on_restart(redo: list[str]) -> list[str]:
    """What the restarted keeper reports as already done (the freeze is always looked at
    first: the key and the book are checked before any later step)."""
    steps = ["freeze", "clear", "settle", "claims", "service", "reveal"]
    return [s for s in steps if s not in redo]


__all__ = [
    "CRASHES",
    "Crash",
    "CrashAfterSend",
    "die_after_tx",
    "die_before",
    "die_in_snapshot",
    "skipped_on_restart",
]
