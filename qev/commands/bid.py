"""``qev bid``: a holder's sealed bid: submit, cancel, status, proof."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from clearing.config import ChainSettings, ConfigError
from qev.commands.common import settings_of


def bidder_key(args: argparse.Namespace) -> bytes:
    """The holder's key: ``QEV_BIDDER_KEY_FILE`` (keystore or 0600 hex) or ``QEV_BIDDER_KEY``."""
    from clearing.keyfiles import KeyFileError, read_account_key

    path = os.environ.get("QEV_BIDDER_KEY_FILE")
    if path:
        return read_account_key(
            Path(path), settings_of(args, ChainSettings).passphrase(), "bidder key"
        )
    raw = os.environ.get("QEV_BIDDER_KEY", "")
    if not raw:
        raise ConfigError("set QEV_BIDDER_KEY_FILE (a keystore or hex key file) or QEV_BIDDER_KEY")
    try:
        key = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        raise KeyFileError("QEV_BIDDER_KEY is not hex") from None
    if len(key) != 32:
        raise KeyFileError("QEV_BIDDER_KEY does not hold 32 bytes")
    return key


def _run(args: argparse.Namespace) -> int:
    from clearing.hexcodec import from_hex, to_hex
    from clearing.signing import Signer
    from qev.sdk import BidderClient

    client = BidderClient(args.service, Signer(bidder_key(args)))
    try:
        auction = args.auction if args.auction is not None else int(client.auction()["auction_id"])
        if args.action == "submit":
            if args.shares is None or args.bp is None:
                raise ConfigError("qev bid submit needs --shares and --bp")
            done = client.bid(args.redemption_id, args.shares, args.bp, args.nonce, auction)
            out: object = {
                "created": done.created,
                "auction_id": done.receipt.auction_id,
                "sequence": done.receipt.sequence,
                "ciphertext_hash": to_hex(done.envelope.ciphertext_hash),
                "service": to_hex(done.receipt.signer_address()),
            }
        elif args.action == "cancel":
            if not args.ciphertext_hash:
                raise ConfigError("qev bid cancel needs --ciphertext-hash (from the receipt)")
            r = client.cancel(auction, args.redemption_id, from_hex(args.ciphertext_hash, 32))
            out = {"cancelled": True, "sequence": r.sequence}
        elif args.action == "status":
            out = client.status(auction, args.redemption_id)
        else:
            out = client.allocation(auction, args.redemption_id)
    finally:
        client.close()
    print(json.dumps(out, indent=2))
    return 0


def register(sub: Any) -> None:
    """Add ``qev bid``."""
    p = sub.add_parser(
        "bid",
        help="a holder's bid: submit, cancel, status, proof (key from QEV_BIDDER_KEY_FILE)",
    )
    p.add_argument("action", choices=["submit", "cancel", "status", "proof"])
    p.add_argument("--service", required=True, help="service base URL")
    p.add_argument("--redemption-id", type=int, required=True)
    p.add_argument("--auction", type=int, default=None, help="auction id (default: current)")
    p.add_argument("--shares", type=int, default=None, help="redemptionShares (wei)")
    p.add_argument("--bp", type=int, default=None, help="basis points forgone (10..10000)")
    p.add_argument("--nonce", type=int, default=0)
    p.add_argument("--ciphertext-hash", default=None, help="the live bid's hash (cancel)")
    p.set_defaults(func=_run)
