"""``qev deploy``: deploy and wire the contracts; write the deployment file. Idempotent."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from clearing.config import ChainSettings, ConfigError, read_deployment
from qev.commands.common import settings_of

#: The vault model's window (the real vault's is the same constant).
WINDOW = 30 * 86_400


class DeploySettings(ChainSettings):
    """``[deploy]`` plus the key files the deployment names (``[service]``, ``[keeper]``)."""

    config_sections: ClassVar[tuple[str, ...]] = ("chain", "service", "keeper", "deploy")
    reads_deployment: ClassVar[bool] = False

    deployer_key_file: Path | None = Field(
        default=None, description="keystore of the deployer (not needed with --dev)"
    )
    admin: str | None = Field(default=None, description="contract admin (default: deployer)")
    fee_recipient: str | None = None
    admin_fee_bps: int = Field(default=0, ge=0, le=10_000)
    keepers: list[str] | None = Field(
        default=None, description="keeper accounts (default: the lane keystores' addresses)"
    )
    service_key_file: Path | None = None
    urgent_key_file: Path | None = None
    housekeeping_key_file: Path | None = None
    first_auction_in: int = Field(
        default=600, ge=60, description="--dev: seconds from now to the first auction's T"
    )


def _address_of(path: Path, settings: ChainSettings, what: str) -> str:
    from clearing.hexcodec import to_checksum_address
    from clearing.keyfiles import account_address, read_account_key
    from clearing.signing import Signer

    address = account_address(path, what)
    if address is None:
        address = to_checksum_address(
            Signer(read_account_key(path, settings.passphrase(), what)).address
        )
    return address


def _run(args: argparse.Namespace) -> int:
    from web3 import Web3

    from clearing.keyfiles import read_account_key
    from keeper.deploy import (
        DeployPlan,
        LocalKeySender,
        UnlockedSender,
        deployment_document,
        plan_actions,
    )
    from keeper.factory import web3_for

    settings = settings_of(args, DeploySettings)
    out = Path(args.out) if args.out else settings.deployment_file or Path("deployment.json")
    previous = read_deployment(out) if out.exists() else {}
    settings.require("rpc_url")
    if not args.dev:
        settings.require("vault")
    w3 = web3_for(settings, 30)
    chain_id = int(w3.eth.chain_id)
    if settings.chain_id is not None and settings.chain_id != chain_id:
        raise ConfigError(f"chain_id is {settings.chain_id} but the RPC serves chain {chain_id}")
    if previous and previous.get("chain_id") not in (None, chain_id):
        raise ConfigError(f"{out} is a deployment on chain {previous['chain_id']}, not {chain_id}")
    sender: Any
    if args.dev:
        accounts = list(w3.eth.accounts)
        if not accounts:
            raise ConfigError("--dev needs a dev node with unlocked accounts (anvil, py-evm)")
        sender = UnlockedSender(w3, accounts[0])
    else:
        settings.require("deployer_key_file")
        assert settings.deployer_key_file is not None
        from eth_account import Account

        key = read_account_key(settings.deployer_key_file, settings.passphrase(), "deployer key")
        sender = LocalKeySender(w3, Account.from_key(key))
    keepers = settings.keepers
    if keepers is None:
        lanes = [p for p in (settings.urgent_key_file, settings.housekeeping_key_file) if p]
        if not lanes:
            raise ConfigError(
                "no keeper accounts: set urgent_key_file and housekeeping_key_file ([keeper]) "
                "or keepers ([deploy])"
            )
        keepers = [_address_of(p, settings, "keeper lane key") for p in lanes]
    signer = settings.receipt_signer
    if signer is None and settings.service_key_file is not None:
        signer = _address_of(settings.service_key_file, settings, "receipt signing key")
    if signer is None:
        raise ConfigError("no receipt signer: set service_key_file ([service]) or receipt_signer")
    admin = settings.admin or sender.address
    if previous.get("genesis") is not None:
        genesis = int(previous["genesis"])
    elif settings.genesis is not None:
        genesis = settings.genesis
    elif args.dev:
        now = int(w3.eth.get_block("latest")["timestamp"])
        genesis = now + settings.first_auction_in - WINDOW
    else:
        genesis = 0
    plan = DeployPlan(
        chain_id=chain_id,
        dev=args.dev,
        admin=Web3.to_checksum_address(admin),
        keepers=[Web3.to_checksum_address(k) for k in keepers],
        receipt_signer=Web3.to_checksum_address(signer),
        admin_fee_bps=settings.admin_fee_bps,
        fee_recipient=Web3.to_checksum_address(settings.fee_recipient or admin),
        genesis=genesis,
        fund_wei=int(args.fund * 10**18) if args.fund else 0,
        usdai=previous.get("usdai") or settings.usdai,
        vault=previous.get("vault") or settings.vault,
        settlement=previous.get("settlement") or settings.settlement,
        block=previous.get("block"),
    )
    actions = plan_actions(w3, plan, sender)
    print(f"chain {chain_id}, deployer {sender.address}: {len(actions)} transaction(s) needed")
    for action in actions:
        print(f"  {'would ' if args.dry_run else ''}{action.describe}")
        if not args.dry_run:
            action.run()
    if args.dry_run:
        return 0
    from keeper.chain import Chain

    assert plan.vault is not None and plan.settlement is not None  # deployed above
    chain = Chain(w3, plan.vault, plan.settlement)
    plan.genesis = chain.genesis()
    document = deployment_document(plan)
    document["written_at"] = int(time.time())
    if {k: v for k, v in document.items() if k != "written_at"} != {
        k: v for k, v in previous.items() if k != "written_at"
    }:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {out}")
    else:
        print(f"{out} is up to date")
    print(f"settlement {plan.settlement}, vault {plan.vault}, genesis {plan.genesis}")
    return 0


def register(sub: Any) -> None:
    """Add ``qev deploy``."""
    p = sub.add_parser(
        "deploy",
        help="deploy QEVSettlement (and, with --dev, the vault model and token); wire roles",
        description="Deploy the settlement contract, grant the keeper accounts their roles, "
        "register the receipt signer and write the deployment file that serve, keeper, "
        "status and verify read (QEV_DEPLOYMENT_FILE). Idempotent: what the chain already "
        "has is skipped. With --dev, a dev node's unlocked account deploys a vault model "
        "and a USDai token too, with a genesis that puts the first auction's T "
        "`first_auction_in` seconds from now.",
    )
    p.add_argument("--dev", action="store_true", help="dev chain: deploy the vault model too")
    p.add_argument("--fund", type=float, default=0, metavar="ETH", help="top keepers up to ETH")
    p.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    p.add_argument("--out", default=None, help="deployment file (default: deployment_file)")
    p.set_defaults(func=_run)
