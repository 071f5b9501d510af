"""The ``qev`` console command: one parser, one line per error, documented exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qev import __version__

#: Exit codes (also in ``qev --help`` and the README).
EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # verify found differences; config check found problems
EXIT_CONFIG = 2  # usage, a missing or invalid setting, a key, config or deployment file
EXIT_CHAIN = 3  # the chain RPC is unreachable, times out or refuses
EXIT_SERVICE = 4  # the HTTP service or the store is unreachable or refuses
EXIT_STATE = 5  # the chain or store is not in a state this command can act on
EXIT_INTERNAL = 70  # a bug: rerun with --debug for the traceback
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""exit codes:
  {EXIT_OK}   success
  {EXIT_CHECK_FAILED}   a check failed (verify found differences, config check found problems)
  {EXIT_CONFIG}   usage or configuration error (setting, key file, config or deployment file)
  {EXIT_CHAIN}   chain RPC error (unreachable, timeout, refused)
  {EXIT_SERVICE}   service or store error (unreachable, refused the request)
  {EXIT_STATE}   the chain or store is in a state the command cannot act on
  {EXIT_INTERNAL}  internal error (a bug: rerun with --debug for the traceback)
  {EXIT_INTERRUPTED} interrupted
Every error is one line on stderr; --debug adds the traceback."""

_COMMANDS = ("keys", "deploy", "config", "serve", "keeper", "status", "verify", "bid")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from qev.commands import (
        bid,
        config,
        demo,
        deploy,
        devchain,
        keeper,
        keyper,
        keys,
        serve,
        status,
        verify,
    )

    parser = argparse.ArgumentParser(
        prog="qev",
        description="QEV sealed-bid auction keeper and clearing service for sUSDai redemptions.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qev {__version__}")
    parser.add_argument(
        "--config", default=None, metavar="FILE", help="TOML config file (or QEV_CONFIG)"
    )
    parser.add_argument("--debug", action="store_true", help="print tracebacks of errors")
    parser.add_argument(
        "--log-format", choices=["auto", "json", "console"], default=None, help="log format"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (demo, keys, deploy, config, serve, keeper, status, verify, bid, devchain):
        module.register(sub)
    keyper.register(sub)
    return parser


def exit_code_of(exc: BaseException) -> int:  # noqa: PLR0911 - one line per class
    """The documented exit code for ``exc``."""
    from clearing.config import ConfigError
    from clearing.errors import ChainReadError, QevError
    from clearing.keyfiles import KeyFileError
    from clearing.store.base import StoreError
    from keeper.errors import KeeperError, RetryableError

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigError | KeyFileError):
        return EXIT_CONFIG
    if isinstance(exc, ChainReadError | RetryableError) or _is_rpc_failure(exc):
        return EXIT_CHAIN
    if isinstance(exc, StoreError) or _is_http_failure(exc):
        return EXIT_SERVICE
    if type(exc).__name__ == "ServiceProblemError":
        return EXIT_SERVICE
    if isinstance(exc, QevError | KeeperError):
        return EXIT_STATE
    return EXIT_INTERNAL


def _is_rpc_failure(exc: BaseException) -> bool:
    import requests
    from web3.exceptions import Web3Exception

    return isinstance(exc, requests.RequestException | Web3Exception | TimeoutError)


def _is_http_failure(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, httpx.HTTPError)


def error_line(exc: BaseException) -> str:
    """``exc`` as one line, every URL redacted."""
    from clearing.config import scrub

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = " ".join(str(exc).split()) or type(exc).__name__
    code = exit_code_of(exc)
    if code == EXIT_CHAIN and not type(exc).__module__.startswith(("clearing", "keeper")):
        text = f"chain RPC error ({type(exc).__name__}): {text}"
    elif code == EXIT_SERVICE and type(exc).__module__.startswith("httpx"):
        text = f"service unreachable ({type(exc).__name__}): {text}"
    elif code == EXIT_INTERNAL:
        text = f"internal error ({type(exc).__name__}): {text}; rerun with --debug"
    return scrub(text)[:500]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qev`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    from qev.logs import configure_logging

    configure_logging(args.log_format or "auto", "debug" if args.debug else "info")
    try:
        result: int = args.func(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(f"qev {args.command}: {exc.code}", file=sys.stderr)
            return EXIT_CONFIG
        raise
    except BaseException as exc:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"qev {args.command}: {error_line(exc)}", file=sys.stderr)
        return exit_code_of(exc)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
