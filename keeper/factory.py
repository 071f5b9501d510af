"""Wire a ``Keeper`` from ``KeeperSettings`` (keys read from files, never logged)."""

from __future__ import annotations

import logging
from pathlib import Path

from eth_account import Account
from web3 import Web3

from clearing.api.keys import read_key
from clearing.calendar import AuctionCalendar
from clearing.eip712 import Eip712Domain
from clearing.engine import Mode
from clearing.hexcodec import parse_address
from clearing.store import open_store
from keeper.chain import Chain
from keeper.jobs import Keeper, KeeperConfig
from keeper.senders import make_sender
from keeper.settings import KeeperSettings


def _key_file(path: Path) -> bytes:
    raw = path.read_text().strip().removeprefix("0x")
    return bytes.fromhex(raw)


def build_keeper(settings: KeeperSettings) -> tuple[Keeper, AuctionCalendar]:
    """The keeper and the auction calendar for ``settings``."""
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 30}))
    chain = Chain(
        w3,
        Web3.to_checksum_address(settings.vault),
        Web3.to_checksum_address(settings.settlement),
    )
    lanes = [
        make_sender(
            w3,
            Account.from_key(_key_file(path)),
            confirmations=settings.confirmations,
            stuck_after=settings.stuck_after,
            deadline=settings.tx_deadline,
            poll_interval=1.0,
        )
        for path in (settings.urgent_key_file, settings.housekeeping_key_file)
    ]
    domain = Eip712Domain(
        settings.domain_name(),
        settings.domain_version(),
        int(w3.eth.chain_id),
        parse_address(settings.settlement),
    )
    config = KeeperConfig(
        master_secret=read_key(settings.master_secret_file, "master secret"),
        domain=domain,
        mode=Mode(settings.mode),
        min_fill=settings.min_fill,
        liquidity_bps=settings.liquidity_bps,
    )
    keeper = Keeper(
        chain,
        open_store(settings.store_url),
        lanes[0],
        lanes[1],
        config,
        log=logging.getLogger("qev.keeper").info,
    )
    return keeper, AuctionCalendar(chain.genesis(), settings.window)


__all__ = ["build_keeper"]
