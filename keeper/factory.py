"""Wire a ``Keeper`` from ``KeeperSettings`` (keys read through ``clearing.keyfiles``).

The keeper is built by ``settings.target``: ``merkle`` gives ``keeper.jobs.Keeper``,
``registry`` the ``keeper.duties.registry.RegistryKeeper`` (same lanes, store and key; the
registry's EIP-712 domain). A target without a builder here stops at start-up.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint, RPCResponse

from clearing import exactjson
from clearing.calendar import AuctionCalendar
from clearing.config import ChainSettings, ConfigError
from clearing.eip712 import Eip712Domain
from clearing.engine import Mode
from clearing.hexcodec import parse_address
from clearing.keyfiles import read_account_key, read_key
from clearing.store import open_store
from keeper.chain import Chain
from keeper.jobs import Keeper, KeeperConfig
from keeper.senders import make_sender
from keeper.settings import KeeperSettings
from keeper.targets import TARGETS


def web3_for(settings: ChainSettings, timeout: float) -> Any:
    """A ``Web3`` on the configured RPC (the URL stays inside the provider)."""
    return http_web3(settings.rpc(), timeout)


class FastJSONHTTPProvider(HTTPProvider):
    """web3's ``HTTPProvider`` that parses answers with orjson where that is exact
    (``clearing.exactjson``).

    A claim transaction's receipt carries thousands of logs (~5 MB of JSON at 2,000 leaves);
    parsing a 100k close's receipts with ``json`` took ~3.5 s.
    """

    def decode_rpc_response(self, raw_response: bytes) -> RPCResponse:  # type: ignore[override]
        try:
            return cast(RPCResponse, exactjson.loads(raw_response))
        except ValueError:
            return HTTPProvider.decode_rpc_response(raw_response)  # web3's own error


def http_web3(url: str, timeout: float) -> Any:
    """A ``Web3`` over HTTP whose ``eth_chainId`` is answered from the provider's cache after
    the first call: web3's validation asks for it before every call and transaction, which
    was two thirds of all RPC calls of a close (benchmarks/month). Answers are parsed with
    orjson (``FastJSONHTTPProvider``)."""
    provider = FastJSONHTTPProvider(
        url,
        request_kwargs={"timeout": timeout},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)


def connect_chain(settings: ChainSettings, w3: Any) -> Chain:
    """``Chain`` bindings checked against the settings: chain id, vault code, genesis.

    Raises ``ConfigError`` (one line) for a missing address, a chain id other than the
    configured one, an address without code, or a genesis that differs from the vault's.
    """
    settings.require("rpc_url", "vault", "settlement")
    assert settings.vault is not None and settings.settlement is not None
    vault, settlement = (
        Web3.to_checksum_address(settings.vault),
        Web3.to_checksum_address(settings.settlement),
    )
    from clearing.errors import ChainReadError

    try:
        chain_id = int(w3.eth.chain_id)
        codes = {
            name: w3.eth.get_code(a) for name, a in (("vault", vault), ("settlement", settlement))
        }
    except Exception as exc:
        from clearing.config import scrub

        raise ChainReadError(f"RPC unreachable: {scrub(str(exc)) or type(exc).__name__}") from exc
    if settings.chain_id is not None and settings.chain_id != chain_id:
        raise ConfigError(f"chain_id is {settings.chain_id} but the RPC serves chain {chain_id}")
    for name, code in codes.items():
        if not code:
            raise ConfigError(f"{name} {getattr(settings, name)} has no code on chain {chain_id}")
    chain = Chain(w3, vault, settlement, genesis=settings.genesis)
    genesis = chain.genesis()
    if settings.genesis is not None and settings.genesis != genesis:
        raise ConfigError(f"genesis is {settings.genesis} but the vault's is {genesis}")
    return chain


def registry_address(settings: ChainSettings, chain: Chain) -> str:
    """The registry of the ``registry`` target: the ``registry`` setting when the settings have
    one, else the vault's own (the model's ``qevRegistry()`` view, found by probing).

    Raises ``ConfigError`` when neither gives one or the address has no code.
    """
    from keeper.targets.registry import vault_registry

    configured = getattr(settings, "registry", None)
    address = Web3.to_checksum_address(configured) if configured else vault_registry(chain)
    if address is None:
        raise ConfigError(
            "target registry: the registry address is not configured and the vault does not "
            "name one"
        )
    if not chain.w3.eth.get_code(address):
        raise ConfigError(f"registry {address} has no code")
    return address


def build_keeper(settings: KeeperSettings) -> tuple[Keeper, AuctionCalendar]:
    """The keeper and the auction calendar for ``settings`` (by ``settings.target``)."""
    if settings.target not in TARGETS:
        raise ConfigError(
            f"unknown target {settings.target!r}: this keeper runs {', '.join(TARGETS)}"
        )
    w3 = web3_for(settings, settings.rpc_timeout)
    chain = connect_chain(settings, w3)
    passphrase = settings.passphrase()
    lanes = [
        make_sender(
            w3,
            Account.from_key(read_account_key(path, passphrase, f"{lane} lane key")),
            confirmations=settings.confirmations,
            stuck_after=settings.stuck_after,
            deadline=settings.tx_deadline,
            poll_interval=1.0,
            lane=lane,
        )
        for lane, path in (
            ("urgent", settings.urgent_key_file),
            ("housekeeping", settings.housekeeping_key_file),
        )
    ]
    registry = None
    verifying_contract = chain.settlement.address
    if settings.target == "registry":
        from keeper.targets.registry import Registry

        registry = Registry(chain, registry_address(settings, chain))
        verifying_contract = registry.address
    domain = Eip712Domain(
        settings.domain_name(),
        settings.domain_version(),
        chain.chain_id(),
        parse_address(verifying_contract),
    )
    from keeper.threshold_key import threshold_source

    store = open_store(settings.store())
    threshold = settings.key_mode == "threshold"
    config = KeeperConfig(
        # threshold mode: the keeper never holds a master secret (the keypers' shares open it)
        master_secret=b"" if threshold else read_key(settings.master_secret_file, "master secret"),
        domain=domain,
        mode=Mode(settings.mode),
        min_fill=settings.min_fill,
        liquidity_bps=settings.liquidity_bps,
        claim_batch=settings.claim_batch,
        claim_depth=settings.claim_depth,
        service_batch=settings.service_batch,
        key_source=threshold_source(settings, chain, store, domain),
    )
    log = logging.getLogger("qev.keeper").info
    keeper: Keeper
    if registry is None:
        keeper = Keeper(chain, store, lanes[0], lanes[1], config, log=log)
    else:
        from keeper.duties.registry import RegistryKeeper

        keeper = RegistryKeeper(
            chain, store, lanes[0], lanes[1], config, registry=registry, log=log
        )
    return keeper, AuctionCalendar(chain.genesis(), settings.window)


__all__ = ["build_keeper", "connect_chain", "http_web3", "registry_address", "web3_for"]
