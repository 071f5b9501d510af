"""``qev demo``, ``qev example`` and ``qev version``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clearing.config import ConfigError
from qev import __version__


def _demo(args: argparse.Namespace) -> int:
    try:
        import eth_tester  # noqa: F401 - py-evm comes with the `demo` extra
    except ImportError:
        raise ConfigError("qev demo needs py-evm: pip install 'qev[demo]'") from None
    import logging

    from qev.demo import run_demo

    # the demo narrates itself: the service's per-request and the keeper's per-step records
    # would bury that story (they remain one --log-format away in `qev serve`/`keeper run`)
    for name in ("qev.access", "qev.keeper", "qev.keeper.tx", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    out_dir = Path(args.out) if args.out else None
    if args.target == "registry":  # USD.AI's draft QEV registry: post, settle, reorder
        if args.key_mode != "single":
            raise ConfigError("qev demo --target registry runs with --key-mode single")
        result = run_demo(holders=args.holders, out_dir=out_dir, target="registry")
        return 0 if result.verified else 1
    if args.key_mode == "threshold":  # a 3-of-5 keyper committee holds the key
        from qev.demo_threshold import run_threshold_demo as run_demo  # type: ignore[assignment]

    result = run_demo(holders=args.holders, out_dir=out_dir, mode=args.mode)
    return 0 if result.verified else 1


def _example(args: argparse.Namespace) -> int:
    from qev.example import run_example

    return run_example(holders=args.holders, mode=args.mode, as_json=args.json)


def _version(_: argparse.Namespace) -> int:
    print(f"qev {__version__}")
    return 0


def register(sub: Any) -> None:
    """Add ``qev version``, ``qev example`` and ``qev demo``."""
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_version)

    p = sub.add_parser(
        "example",
        help="seal, open, validate and clear a built-in auction; print the allocation root",
    )
    p.add_argument("--holders", type=int, default=12, help="number of bidding holders (>= 1)")
    p.add_argument("--mode", choices=["pay_as_bid", "uniform"], default="pay_as_bid")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_example)

    p = sub.add_parser(
        "demo", help="the whole month end to end on py-evm, SQLite and the real service"
    )
    p.add_argument("--holders", type=int, default=200)
    p.add_argument("--mode", choices=["pay_as_bid", "uniform"], default="pay_as_bid")
    p.add_argument("--out", default=None, help="write the published artifacts to this directory")
    p.add_argument("--key-mode", choices=["single", "threshold"], default="single")
    p.add_argument(
        "--target",
        choices=["merkle", "registry"],
        default="merkle",
        help="settlement target: merkle claims (default) or USD.AI's draft QEV registry",
    )
    p.set_defaults(func=_demo)
