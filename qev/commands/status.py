"""``qev status``: one auction at a glance, in human units."""

from __future__ import annotations

import argparse
import json
from typing import Any

from clearing.config import ChainSettings
from qev.commands.common import chain_of, settings_of


def _run(args: argparse.Namespace) -> int:
    from clearing.calendar import AuctionCalendar
    from qev.status import collect_status, render_status, status_json

    settings = settings_of(args, ChainSettings)
    chain = chain_of(settings)
    _, now = chain.latest_block()
    calendar = AuctionCalendar(chain.genesis(), settings.window)
    auction = args.auction if args.auction is not None else calendar.current(now)
    documents = None
    if args.service:
        import httpx

        base = args.service.rstrip("/")

        def documents(path: str) -> object | None:
            r = httpx.get(base + path, timeout=10)
            return r.json() if r.status_code == 200 else None

    status = collect_status(chain, auction, now=now, calendar=calendar, documents=documents)
    if args.json:
        print(json.dumps(status_json(status), indent=2))
    else:
        print(render_status(status))
    return 0


def register(sub: Any) -> None:
    """Add ``qev status``."""
    p = sub.add_parser(
        "status",
        help="an auction at a glance: window, bids, key, book root, settlement, claims, reveal",
    )
    p.add_argument("--auction", type=int, default=None, help="auction id (default: current)")
    p.add_argument("--service", default=None, help="service base URL (for bid counts)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)
