"""``qev verify``: re-run an auction from its published documents (and the chain)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clearing.config import ChainSettings, ConfigError
from qev.commands.common import settings_of


def _run(args: argparse.Namespace) -> int:
    from clearing.gcpause import gc_paused

    with gc_paused():  # a short-lived command that parses and rebuilds a whole month
        return _verify(args)


def _verify(args: argparse.Namespace) -> int:
    import httpx

    from clearing import exactjson
    from keeper.verify import DOCUMENT_FILES, fetch_documents, verify_documents

    chain = None
    if args.rpc:
        from keeper.chain import Chain
        from keeper.factory import web3_for

        settings = settings_of(
            args, ChainSettings, rpc_url=args.rpc, vault=args.vault, settlement=args.settlement
        )
        settings.require("vault", "settlement")
        assert settings.vault is not None and settings.settlement is not None
        w3 = web3_for(settings, 60)
        chain = Chain(
            w3, w3.to_checksum_address(settings.vault), w3.to_checksum_address(settings.settlement)
        )
    if args.dir:
        folder = Path(args.dir)
        if not folder.is_dir():
            raise ConfigError(f"--dir {folder} is not a directory")
        docs = {
            k: exactjson.loads((folder / f).read_bytes()) if (folder / f).exists() else None
            for k, f in DOCUMENT_FILES.items()
        }
        from keeper.verify_threshold import read_threshold_documents

        read_threshold_documents(folder, docs)  # threshold mode: transcript.json, shares.json
    else:
        if args.service is None or args.auction is None:
            raise SystemExit("qev verify: give --service URL --auction T, or --dir DIR")

        # one client for every document (thread-safe): one TLS context, pooled connections
        with httpx.Client(base_url=args.service.rstrip("/"), timeout=60) as client:

            def get(path: str) -> object:
                r = client.get(path)
                if r.status_code == 409 and path.endswith("allocation-tree"):
                    return None  # no winners: no allocation tree
                r.raise_for_status()
                return exactjson.loads(r.content)

            docs = fetch_documents(get, args.auction, concurrent=6)
    report = verify_documents(docs, chain)
    for difference in report.differences:
        print(f"DIFFERENT  {difference}")
    verdict = "verified" if report.ok else "FAILED"
    print(f"auction {report.auction_id}: {len(report.checks)} checks, {verdict}")
    return 0 if report.ok else 1


def register(sub: Any) -> None:
    """Add ``qev verify``."""
    p = sub.add_parser(
        "verify",
        help="re-run an auction from its published data; exit 1 and list what differs",
        description="Re-derive an auction's clearing from its published documents (from a "
        "service or a directory) and, with --rpc, tie it to the chain: snapshot block, "
        "requests, roots, key, receipt signer. Vault and settlement default to the "
        "configured ones (deployment file).",
    )
    p.add_argument("--service", default=None, help="service base URL")
    p.add_argument("--auction", type=int, default=None)
    p.add_argument("--dir", default=None, help="a directory written by `qev demo --out`")
    p.add_argument("--rpc", default=None, help="chain RPC to check roots, key and snapshot")
    p.add_argument("--vault", default=None)
    p.add_argument("--settlement", default=None)
    p.set_defaults(func=_run)
