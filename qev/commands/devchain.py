"""``qev devchain holder``: a funded holder with a redemption request, on a dev chain only."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clearing.config import ConfigError
from qev.commands.common import chain_of, settings_of


def _holder(args: argparse.Namespace) -> int:
    from eth_account import Account

    from clearing.config import ChainSettings
    from clearing.keyfiles import read_account_key
    from keeper.deploy import LocalKeySender, UnlockedSender

    settings = settings_of(args, ChainSettings)
    chain = chain_of(settings)
    w3 = chain.w3
    accounts = list(w3.eth.accounts)
    if not accounts:
        raise ConfigError("qev devchain needs a dev node with unlocked accounts (anvil)")
    admin = UnlockedSender(w3, accounts[0])
    holder = Account.from_key(
        read_account_key(Path(args.file), settings.passphrase(), "holder key")
    )
    amount = int(args.usdai * 10**18)
    if int(w3.eth.get_balance(holder.address)) < 10**17:
        admin.send_value(holder.address, 10**18)
    admin.send(chain.usdai.functions.mint(holder.address, amount), "mint USDai")
    me = LocalKeySender(w3, holder)
    me.send(chain.usdai.functions.approve(chain.vault.address, amount), "approve")
    me.send(chain.vault.functions.deposit(amount, holder.address), "deposit")
    shares = int(chain.vault.functions.balanceOf(holder.address).call())
    me.send(
        chain.vault.functions.requestRedeem(shares, holder.address, holder.address), "requestRedeem"
    )
    redemption_id = int(chain.vault.functions.redemptionIds(holder.address).call()[-1])
    print(f"holder {holder.address}: redemption {redemption_id} for {shares} shares")
    return 0


def register(sub: Any) -> None:
    """Add ``qev devchain``."""
    p = sub.add_parser(
        "devchain",
        help="dev chain only: make a holder with USDai, sUSDai and a redemption request",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    h = actions.add_parser(
        "holder",
        help="mint USDai to the holder (the node's first account is the token admin), "
        "deposit it and request redemption of every share",
    )
    h.add_argument("--file", required=True, help="the holder's key (keystore or hex file)")
    h.add_argument("--usdai", type=float, default=1000.0, help="USDai to deposit")
    h.set_defaults(func=_holder)
