"""``qev keeper run``: the cron loop (act at each boundary, catch up, expose metrics).

Logging (stdlib, logger ``qev.keeper``): every record logged while the loop works on an
auction carries ``auction_id`` and ``duty`` (``open`` or ``close``) as ``extra`` fields,
including the records of the keeper's jobs and of the transaction senders (the context is
set with ``keeper.tx.log_context``); before each sleep the loop logs "next close" with
``auction_id``, ``at`` (unix), ``in_s`` and ``duty`` ``schedule``. A tick's error record
carries the auction and duty it escaped from, and ``code``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from clearing.calendar import AuctionCalendar
from clearing.errors import ChainReadError, QevError
from keeper.errors import FatalError, RetryableError
from keeper.jobs import Keeper
from keeper.tx import LogContextFilter, log_context, log_fields

log = logging.getLogger("qev.keeper")
log.addFilter(LogContextFilter())  # the jobs' records (factory: this logger's .info) too

LANES = ("urgent", "housekeeping")  # Keeper attribute names, also the metrics' lane labels
_CONTEXT_ATTR = "qev_log_context"  # set on an exception that escaped a duty
CLOSE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)


@dataclass
class KeeperMetrics:
    """Prometheus metrics of the keeper loop (all named ``qev_keeper_*``)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.ticks = Counter("qev_keeper_ticks", "Loop iterations", registry=r)
        self.closes = Counter("qev_keeper_closes", "Auctions closed", registry=r)
        self.errors = Counter("qev_keeper_errors", "Errors by code", ["code"], registry=r)
        self.last_success = Gauge(
            "qev_keeper_last_success_timestamp", "Unix time of the last good tick", registry=r
        )
        self.balance = Gauge(
            "qev_keeper_account_balance_wei",
            "Native balance of each lane's account (wei), read after every tick",
            ["lane"],
            registry=r,
        )
        self.oldest_pending_tx_age = Gauge(
            "qev_keeper_oldest_pending_tx_age_seconds",
            "Seconds since the first broadcast of the lane's oldest unconfirmed transaction "
            "(0: none); computed at scrape time from the sender's in-flight nonces",
            ["lane"],
            registry=r,
        )
        self.next_close = Gauge(
            "qev_keeper_next_close_timestamp",
            "Unix time of the next auction close (T of the auction open by chain time)",
            registry=r,
        )
        self.step_done = Gauge(
            "qev_keeper_close_step_timestamp",
            "Unix time at which this keeper finished a close step of an auction "
            "(steps: freeze, clear, settle, claims, service, reveal)",
            ["auction", "step"],
            registry=r,
        )
        self.close_duration = Histogram(
            "qev_keeper_close_duration_seconds",
            "Wall time of each completed close_auction call",
            buckets=CLOSE_BUCKETS,
            registry=r,
        )

    def watch(self, keeper: Keeper) -> None:
        """Bind the pending-age gauges to the keeper's lanes (read at scrape time)."""
        for name, sender in _lanes(keeper):
            age = getattr(sender, "oldest_pending_age", None)
            if callable(age):
                self.oldest_pending_tx_age.labels(lane=name).set_function(age)

    def observe_balances(self, keeper: Keeper) -> None:
        """Read each lane account's balance (best effort: a failed read is logged, not fatal)."""
        for name, sender in _lanes(keeper):
            try:
                wei = int(keeper.chain.w3.eth.get_balance(sender.address))
            except Exception as e:  # a metric must never stop the loop
                log.warning(
                    "balance of the %s lane unavailable: %s",
                    name,
                    type(e).__name__,
                    extra=log_fields(lane=name),
                )
                continue
            self.balance.labels(lane=name).set(wei)

    def step(self, auction_id: int, step: str, at: float) -> None:
        """Record that ``step`` of ``auction_id`` was done at ``at`` (unix)."""
        self.step_done.labels(auction=str(auction_id), step=step).set(at)


def _lanes(keeper: Keeper) -> list[tuple[str, Any]]:
    return [(name, getattr(keeper, name)) for name in LANES]


def name_lanes(keeper: Keeper) -> None:
    """Give each unnamed lane sender its role as ``lane`` (it appears in its log records)."""
    for name, sender in _lanes(keeper):
        if getattr(sender, "lane", name) is None:
            sender.lane = name


@contextmanager
def _duty(auction_id: int, duty: str) -> Iterator[None]:
    """Log context for one duty; an escaping exception remembers it for the loop's record."""
    with log_context(auction_id=auction_id, duty=duty):
        try:
            yield
        except Exception as e:
            if not hasattr(e, _CONTEXT_ATTR):
                setattr(e, _CONTEXT_ATTR, {"auction_id": auction_id, "duty": duty})
            raise


def tick(
    keeper: Keeper,
    calendar: AuctionCalendar,
    lookback: int,
    *,
    metrics: KeeperMetrics | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> list[int]:
    """One pass: open the current auction, finish every past close still pending.

    With ``metrics``: each finished step's time and each completed close's duration.
    """
    _, now = keeper.chain.latest_block()
    current = calendar.current(now)
    with _duty(current, "open"):
        keeper.open_auction(current)
    closed = []
    for t in keeper.pending_closes(calendar.genesis, calendar.window, lookback):
        with _duty(t, "close"):

            def on_step(step: str, done: bool, t: int = t) -> None:
                if done and metrics is not None:
                    metrics.step(t, step, wall_clock())

            started = time.monotonic()
            report = keeper.close_auction(t, on_step=on_step)
            elapsed = time.monotonic() - started
            if metrics is not None:
                metrics.close_duration.observe(elapsed)
            log.info(
                "auction %d closed in %.1f s: done %s, already done %s",
                t,
                elapsed,
                report.done,
                report.skipped,
                extra=log_fields(done=report.done, skipped=report.skipped, duration_s=elapsed),
            )
        closed.append(t)
    return closed


def run(
    keeper: Keeper,
    calendar: AuctionCalendar,
    *,
    poll_seconds: float,
    lookback: int,
    metrics: KeeperMetrics,
    sleep: Callable[[float], None] = time.sleep,
    iterations: int | None = None,
) -> None:
    """Loop forever (or ``iterations`` times): act, then sleep to the next boundary or poll."""
    name_lanes(keeper)
    metrics.watch(keeper)
    done = 0
    while iterations is None or done < iterations:
        done += 1
        metrics.ticks.inc()
        try:
            for _ in tick(keeper, calendar, lookback, metrics=metrics):
                metrics.closes.inc()
            metrics.last_success.set(time.time())
        except (RetryableError, ChainReadError) as e:
            metrics.errors.labels(e.code).inc()
            log.warning("retryable: %s", e, extra=_error_fields(e))
        except (FatalError, QevError) as e:
            metrics.errors.labels(e.code).inc()
            log.error("needs attention: %s", e, extra=_error_fields(e))
        except Exception as e:  # the loop must outlive any one bad tick
            metrics.errors.labels("unexpected").inc()
            log.exception("unexpected error in keeper tick", extra=_error_fields(e))
        metrics.observe_balances(keeper)
        try:
            _, now = keeper.chain.latest_block()
            next_close = calendar.current(now)
            until_boundary = float(next_close - now)
            metrics.next_close.set(next_close)
            log.info(
                "next close: auction %d at %d, in %d s",
                next_close,
                next_close,
                next_close - now,
                extra=log_fields(
                    auction_id=next_close, duty="schedule", at=next_close, in_s=next_close - now
                ),
            )
        except ChainReadError as e:
            metrics.errors.labels(e.code).inc()
            log.warning("retryable: %s", e, extra=_error_fields(e))
            until_boundary = poll_seconds
        sleep(max(1.0, min(poll_seconds, until_boundary)))


def _error_fields(e: Exception) -> dict[str, object]:
    context: dict[str, object] = dict(getattr(e, _CONTEXT_ATTR, {}))
    return log_fields(**context, code=getattr(e, "code", "unexpected"))


__all__ = ["KeeperMetrics", "name_lanes", "run", "tick"]
