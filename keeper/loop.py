"""``qev keeper run``: the cron loop (act at each boundary, catch up, expose metrics)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from clearing.calendar import AuctionCalendar
from keeper.errors import FatalError, RetryableError
from keeper.jobs import Keeper
from qev.errors import ChainReadError, QevError

log = logging.getLogger("qev.keeper")


@dataclass
class KeeperMetrics:
    """Prometheus metrics of the keeper loop."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.ticks = Counter("qev_keeper_ticks", "Loop iterations", registry=r)
        self.closes = Counter("qev_keeper_closes", "Auctions closed", registry=r)
        self.errors = Counter("qev_keeper_errors", "Errors by code", ["code"], registry=r)
        self.last_success = Gauge(
            "qev_keeper_last_success_timestamp", "Unix time of the last good tick", registry=r
        )


def tick(keeper: Keeper, calendar: AuctionCalendar, lookback: int) -> list[int]:
    """One pass: open the current auction, finish every past close still pending."""
    _, now = keeper.chain.latest_block()
    keeper.open_auction(calendar.current(now))
    closed = []
    for t in keeper.pending_closes(calendar.genesis, calendar.window, lookback):
        keeper.close_auction(t)
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
    done = 0
    while iterations is None or done < iterations:
        done += 1
        metrics.ticks.inc()
        try:
            for t in tick(keeper, calendar, lookback):
                metrics.closes.inc()
                log.info("auction %d closed", t)
            metrics.last_success.set(time.time())
        except (RetryableError, ChainReadError) as e:
            metrics.errors.labels(e.code).inc()
            log.warning("retryable: %s", e)
        except (FatalError, QevError) as e:
            metrics.errors.labels(e.code).inc()
            log.error("needs attention: %s", e)
        except Exception:  # the loop must outlive any one bad tick
            metrics.errors.labels("unexpected").inc()
            log.exception("unexpected error in keeper tick")
        try:
            _, now = keeper.chain.latest_block()
            until_boundary = float(calendar.current(now) - now)
        except ChainReadError as e:
            metrics.errors.labels(e.code).inc()
            log.warning("retryable: %s", e)
            until_boundary = poll_seconds
        sleep(max(1.0, min(poll_seconds, until_boundary)))


__all__ = ["KeeperMetrics", "run", "tick"]
