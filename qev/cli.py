"""The ``qev`` console command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qev import __version__


def _cmd_version(_: argparse.Namespace) -> int:
    print(f"qev {__version__}")
    return 0


def _cmd_example(args: argparse.Namespace) -> int:
    from qev.example import run_example

    return run_example(holders=args.holders, mode=args.mode, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="qev",
        description="QEV sealed-bid auction keeper and clearing service for sUSDai redemptions.",
    )
    parser.add_argument("--version", action="version", version=f"qev {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser(
        "example",
        help="seal, open, validate and clear a built-in auction; print the allocation root",
    )
    p.add_argument("--holders", type=int, default=12, help="number of bidding holders (>= 1)")
    p.add_argument("--mode", choices=["pay_as_bid", "uniform"], default="pay_as_bid")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_example)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qev`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
