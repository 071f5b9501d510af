"""``qev keeper``: the cron loop (``run``) or one close (``close --auction T``)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from qev.commands.common import settings_of
from qev.logs import configure_logging

log = logging.getLogger("qev.keeper")


def _run(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from keeper.factory import build_keeper
    from keeper.loop import KeeperMetrics, run
    from keeper.settings import KeeperSettings

    settings = settings_of(args, KeeperSettings)
    configure_logging(
        args.log_format or settings.log_format, "debug" if args.debug else settings.log_level
    )
    keeper, calendar = build_keeper(settings)
    if args.action == "close":
        if args.auction is None:
            raise SystemExit("qev keeper close: --auction T is required")
        from keeper.tx import log_context

        with log_context(auction_id=args.auction, duty="close"):
            report = keeper.close_auction(args.auction)
        print(f"auction {args.auction}: done {report.done}, already done {report.skipped}")
        return 0
    log.info(
        "qev keeper starting",
        extra={
            "urgent": keeper.urgent.address if hasattr(keeper.urgent, "address") else None,
            "genesis": calendar.genesis,
            "settings": settings.summary(),
        },
    )
    metrics = KeeperMetrics()
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=metrics.registry)
    run(
        keeper,
        calendar,
        poll_seconds=settings.poll_seconds,
        lookback=settings.lookback_auctions,
        metrics=metrics,
    )
    return 0


def register(sub: Any) -> None:
    """Add ``qev keeper``."""
    p = sub.add_parser(
        "keeper",
        help="the keeper: `run` (cron loop) or `close --auction T`",
        description="The keeper: commits each auction key at window open, closes each auction "
        "at T (freeze, open, clear, settle, claims, queue, reveal), catches up after downtime. "
        "Settings: [chain] and [keeper] of the config file, QEV_*, the deployment file.",
    )
    p.add_argument("action", choices=["run", "close"])
    p.add_argument("--auction", type=int, default=None)
    p.set_defaults(func=_run)
