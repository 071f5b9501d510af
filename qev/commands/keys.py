"""``qev keys``: create the master secret and account keystores; show addresses, balances."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from clearing.config import ChainSettings
from qev.commands.common import settings_of


class KeysSettings(ChainSettings):
    """Every key file a deployment names (each process's table of the config file)."""

    config_sections = ("chain", "service", "keeper", "deploy")

    service_key_file: Path | None = None
    master_secret_file: Path | None = None
    urgent_key_file: Path | None = None
    housekeeping_key_file: Path | None = None
    deployer_key_file: Path | None = None


def _create(args: argparse.Namespace) -> int:
    from clearing.keyfiles import create_key, create_keystore

    path = Path(args.file)
    if args.action == "master-secret":
        create_key(path, "master secret")
        print(f"created the master secret in {path} (mode 0600); it is never printed")
        return 0
    if args.action == "keyper-identity":
        from clearing.keyfiles import read_key
        from clearing.sealing import public_key_of

        create_key(path, "keyper identity key")
        public = public_key_of(read_key(path, "keyper identity key"))
        print(f"created a keyper identity key in {path} (mode 0600); it is never printed")
        print(f"identity public key (register it with the committee): 0x{public.hex()}")
        return 0
    settings = settings_of(args, ChainSettings)
    what = "receipt signing key" if args.action == "service-key" else "account key"
    address = create_keystore(path, settings.passphrase(), what)
    print(f"created {what} {address} in {path} (keystore v3, mode 0600)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from clearing.hexcodec import to_checksum_address
    from clearing.keyfiles import account_address, read_account_key
    from clearing.signing import Signer

    settings = settings_of(args, KeysSettings)
    rows: list[dict[str, Any]] = []
    w3 = None
    if settings.rpc_url is not None:
        from keeper.factory import web3_for

        w3 = web3_for(settings, 10)
    for name in (
        "service_key_file",
        "urgent_key_file",
        "housekeeping_key_file",
        "deployer_key_file",
    ):
        path = getattr(settings, name)
        if path is None:
            continue
        row: dict[str, Any] = {"key": name.removesuffix("_file"), "file": str(path)}
        if not path.exists():
            row["problem"] = "missing"
        else:
            address = account_address(path)
            if address is None:  # a hex file: the address needs the key itself
                address = to_checksum_address(
                    Signer(read_account_key(path, settings.passphrase())).address
                )
            row["address"] = address
            if w3 is not None:
                row["balance_eth"] = int(w3.eth.get_balance(w3.to_checksum_address(address))) / 1e18
        rows.append(row)
    if settings.master_secret_file is not None:
        exists = settings.master_secret_file.exists()
        rows.append(
            {
                "key": "master_secret",
                "file": str(settings.master_secret_file),
                **({} if exists else {"problem": "missing"}),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        detail = row.get("problem") or row.get("address", "present (never printed)")
        balance = f"  {row['balance_eth']:.6f} ETH" if "balance_eth" in row else ""
        print(f"{row['key']:<16} {detail}{balance}  ({row['file']})")
    return 0


def register(sub: Any) -> None:
    """Add ``qev keys``."""
    p = sub.add_parser(
        "keys",
        help="create keys (master secret, account keystores) or show addresses and balances",
        description="Create a secret explicitly (no service, keeper or keyper ever creates "
        "one) or show the configured keys' addresses and balances. Keystores are "
        "eth-account keystore v3, unlocked with QEV_KEYSTORE_PASSPHRASE_FILE (or "
        "QEV_KEYSTORE_PASSPHRASE). No secret is ever printed.",
    )
    keys = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("master-secret", "create the keeper's master secret (0600 hex file)"),
        ("account", "create an account keystore (keeper lanes, deployer, keyper)"),
        ("service-key", "create the receipt signer's keystore"),
        ("keyper-identity", "create a keyper's X25519 identity key (0600 hex file)"),
    ):
        k = keys.add_parser(action, help=text, description=text)
        k.add_argument("--file", required=True, help="where to write it (refuses to overwrite)")
        k.set_defaults(func=_create)
    k = keys.add_parser("show", help="addresses (and balances with an RPC) of the configured keys")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=_show)
