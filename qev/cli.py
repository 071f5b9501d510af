"""The ``qev`` console command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from qev import __version__

if TYPE_CHECKING:
    from fastapi import FastAPI

_NO_RPC = "qev serve: set QEV_RPC_URL (and QEV_VAULT) so bids' controllers can be checked"


def _cmd_version(_: argparse.Namespace) -> int:
    print(f"qev {__version__}")
    return 0


def _cmd_example(args: argparse.Namespace) -> int:
    from qev.example import run_example

    return run_example(holders=args.holders, mode=args.mode, as_json=args.json)


def serve_app() -> FastAPI:
    """The clearing service from ``QEV_*`` settings, checking controllers on the chain.

    A uvicorn app factory: ``qev serve --workers N`` builds one in each worker process.
    """
    from web3 import Web3

    from clearing.api.server import build_app
    from clearing.api.settings import ServiceSettings
    from keeper.chain import Chain
    from keeper.redemptions import Web3Redemptions

    settings = ServiceSettings()
    if not settings.rpc_url:
        raise SystemExit(_NO_RPC)
    w3 = Web3(
        Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": settings.chain_read_timeout})
    )
    chain = Chain(
        w3, Web3.to_checksum_address(settings.vault), Web3.to_checksum_address(settings.settlement)
    )
    return build_app(settings, Web3Redemptions(chain))


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from clearing.api.settings import ServiceSettings
    from clearing.api.workers import run_workers

    settings = ServiceSettings()
    if not settings.rpc_url:
        print(_NO_RPC)
        return 2
    workers = args.workers or settings.workers
    config = uvicorn.Config(
        "qev.cli:serve_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level="warning",
        access_log=False,
    )
    if workers > 1:  # the workers share one key file: its creation is atomic
        return run_workers(config, workers)
    uvicorn.Server(config).run()
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _bidder_key() -> bytes:
    import os
    from pathlib import Path

    path = os.environ.get("QEV_BIDDER_KEY_FILE")
    raw = Path(path).read_text().strip() if path else os.environ.get("QEV_BIDDER_KEY", "")
    if not raw:
        raise SystemExit("set QEV_BIDDER_KEY_FILE (a file with the hex key) or QEV_BIDDER_KEY")
    return bytes.fromhex(raw.removeprefix("0x"))


def _cmd_bid(args: argparse.Namespace) -> int:
    import json

    from clearing.hexcodec import from_hex, to_hex
    from clearing.signing import Signer
    from qev.sdk import BidderClient, ServiceProblemError

    client = BidderClient(args.service, Signer(_bidder_key()))
    try:
        if args.action == "submit":
            done = client.bid(args.redemption_id, args.shares, args.bp, args.nonce, args.auction)
            out: object = {
                "created": done.created,
                "auction_id": done.receipt.auction_id,
                "sequence": done.receipt.sequence,
                "ciphertext_hash": to_hex(done.envelope.ciphertext_hash),
                "service": to_hex(done.receipt.signer_address()),
            }
        elif args.action == "cancel":
            r = client.cancel(args.auction, args.redemption_id, from_hex(args.ciphertext_hash, 32))
            out = {"cancelled": True, "sequence": r.sequence}
        elif args.action == "status":
            out = client.status(args.auction, args.redemption_id)
        else:
            out = client.allocation(args.auction, args.redemption_id)
    except ServiceProblemError as e:
        print(json.dumps(e.body, indent=2))
        return 1
    finally:
        client.close()
    print(json.dumps(out, indent=2))
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    """Create a secret explicitly (services and the keeper never create one)."""
    from pathlib import Path

    from clearing.api.keys import KeyFileError, create_key

    what = {"master-secret": "master secret", "service-key": "receipt signing key"}[args.action]
    try:
        create_key(Path(args.file), what)
    except KeyFileError as e:
        print(f"qev keys: {e}", file=sys.stderr)
        return 2
    print(f"created {what} in {args.file} (mode 0600); it is never printed")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qev.demo import run_demo

    result = run_demo(
        holders=args.holders,
        out_dir=Path(args.out) if args.out else None,
        mode=args.mode,
    )
    return 0 if result.verified else 1


def _cmd_keeper(args: argparse.Namespace) -> int:
    import logging

    from prometheus_client import start_http_server

    from keeper.factory import build_keeper
    from keeper.loop import KeeperMetrics, run
    from keeper.settings import KeeperSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = KeeperSettings()
    keeper, calendar = build_keeper(settings)
    if args.action == "close":
        if args.auction is None:
            print("qev keeper close: --auction T is required")
            return 2
        report = keeper.close_auction(args.auction)
        print(f"auction {args.auction}: done {report.done}, already done {report.skipped}")
        return 0
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


def _cmd_verify(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import httpx

    from keeper.verify import DOCUMENT_FILES, fetch_documents, verify_documents

    chain = None
    if args.rpc:
        from web3 import Web3

        from keeper.chain import Chain

        w3 = Web3(Web3.HTTPProvider(args.rpc))
        chain = Chain(
            w3, Web3.to_checksum_address(args.vault), Web3.to_checksum_address(args.settlement)
        )
    if args.dir:
        folder = Path(args.dir)
        docs = {
            k: json.loads((folder / f).read_text()) if (folder / f).exists() else None
            for k, f in DOCUMENT_FILES.items()
        }
    else:
        if args.service is None or args.auction is None:
            print("qev verify: give --service URL --auction T, or --dir DIR")
            return 2

        def get(path: str) -> object:
            r = httpx.get(args.service.rstrip("/") + path, timeout=60)
            if r.status_code == 409 and path.endswith("allocation-tree"):
                return None  # no winners: no allocation tree
            r.raise_for_status()
            return r.json()

        docs = fetch_documents(get, args.auction)
    report = verify_documents(docs, chain)
    for difference in report.differences:
        print(f"DIFFERENT  {difference}")
    verdict = "verified" if report.ok else "FAILED"
    print(f"auction {report.auction_id}: {len(report.checks)} checks, {verdict}")
    return 0 if report.ok else 1


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

    p = sub.add_parser(
        "demo", help="the whole month end to end on py-evm, SQLite and the real service"
    )
    p.add_argument("--holders", type=int, default=200)
    p.add_argument("--mode", choices=["pay_as_bid", "uniform"], default="pay_as_bid")
    p.add_argument("--out", default=None, help="write the published artifacts to this directory")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "keys",
        help="create a secret explicitly: the keeper's master secret or the receipt key",
    )
    p.add_argument("action", choices=["master-secret", "service-key"])
    p.add_argument("--file", required=True, help="where to write it (refuses to overwrite)")
    p.set_defaults(func=_cmd_keys)

    p = sub.add_parser("keeper", help="the keeper: `run` (cron loop) or `close --auction T`")
    p.add_argument("action", choices=["run", "close"])
    p.add_argument("--auction", type=int, default=None)
    p.set_defaults(func=_cmd_keeper)

    p = sub.add_parser("verify", help="re-run an auction from its published data")
    p.add_argument("--service", default=None, help="service base URL")
    p.add_argument("--auction", type=int, default=None)
    p.add_argument("--dir", default=None, help="a directory written by `qev demo --out`")
    p.add_argument("--rpc", default=None, help="chain RPC to check roots, key and snapshot")
    p.add_argument("--vault", default=None)
    p.add_argument("--settlement", default=None)
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("serve", help="run the clearing service (settings from QEV_* env)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=_positive, default=None, help="worker processes (QEV_WORKERS)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser(
        "bid",
        help="a holder's bid: submit, cancel, status, proof (key from QEV_BIDDER_KEY_FILE)",
    )
    p.add_argument("action", choices=["submit", "cancel", "status", "proof"])
    p.add_argument("--service", required=True, help="service base URL")
    p.add_argument("--redemption-id", type=int, required=True)
    p.add_argument("--auction", type=int, default=None, help="auction id (default: current)")
    p.add_argument("--shares", type=int, default=0, help="redemptionShares (wei)")
    p.add_argument("--bp", type=int, default=0, help="basis points forgone (10..10000)")
    p.add_argument("--nonce", type=int, default=0)
    p.add_argument("--ciphertext-hash", default=None, help="the live bid's hash (cancel)")
    p.set_defaults(func=_cmd_bid)
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
