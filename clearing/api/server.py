"""Wire the service from settings: store, group committer, keys, chain reader, app."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI

from clearing.api.app import create_app
from clearing.api.board import BulletinBoard, CommitteeSource, mount_board
from clearing.api.keys import DerivedAuctionKeys, StoredAuctionKeys
from clearing.api.publisher import Publisher
from clearing.api.ratelimit import LookupBudget, TokenBuckets
from clearing.api.service import ClearingService, ServiceDeps
from clearing.api.settings import ServiceSettings
from clearing.calendar import AuctionCalendar
from clearing.eip712 import Eip712Domain
from clearing.hexcodec import parse_address
from clearing.keyfiles import read_account_key, read_key
from clearing.redemptions import CachedRedemptions, RedemptionReader
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import BidStore
from clearing.store.group_commit import GroupCommitter


def build_app(
    settings: ServiceSettings,
    redemptions: RedemptionReader,
    *,
    store: BidStore | None = None,
    clock: Callable[[], int] | None = None,
    chain_probe: Callable[[], None] | None = None,
    access_log: bool | None = None,
    committees: CommitteeSource | None = None,
) -> FastAPI:
    """The service app for ``settings`` (the store is opened and migrated here).

    ``chain_id``, ``settlement`` and ``genesis`` must be set (``qev serve`` reads and checks
    them against the chain first); the receipt key must exist (``qev keys``).
    ``chain_probe``: a cheap chain read that ``/readyz`` makes (503 ``chain_unavailable``
    when it raises or hangs). ``access_log`` overrides ``settings.access_log``. Serve the
    app with ``clearing.api.edge_limits.uvicorn_config`` (the connection-level limits).
    ``committees`` (threshold mode, ``keeper.threshold_key.ChainCommittees``): with it the
    keypers' bulletin board is served under ``/v1/auctions/{T}/dkg``.
    """
    settings.require("chain_id", "settlement", "genesis")
    assert settings.chain_id is not None and settings.genesis is not None  # for mypy
    assert settings.settlement is not None
    signer = Signer(
        read_account_key(settings.service_key_file, settings.passphrase(), "receipt signing key")
    )
    store = store or open_store(settings.store())
    store.migrate()
    committer = GroupCommitter(
        store,
        max_batch=settings.commit_max_batch,
        max_wait=settings.commit_max_wait,
        quiet=settings.commit_quiet,
    )
    keys = (
        DerivedAuctionKeys(read_key(settings.master_secret_file, "master secret"))
        if settings.master_secret_file is not None
        else StoredAuctionKeys(store)
    )
    deps = ServiceDeps(
        store=store,
        committer=committer,
        redemptions=(
            CachedRedemptions(
                redemptions,
                ttl=settings.controller_cache_ttl,
                clock=time.monotonic,
                page=settings.controller_cache_page,
            )
            if redemptions.blocking and settings.controller_cache_ttl > 0
            else redemptions
        ),
        keys=keys,
        signer=signer,
        calendar=AuctionCalendar(settings.genesis, settings.window),
        domain=Eip712Domain(
            settings.domain_name(),
            settings.domain_version(),
            settings.chain_id,
            parse_address(settings.settlement),
        ),
        clock=clock or (lambda: int(time.time())),
        min_ciphertext=settings.min_ciphertext_bytes,
        max_ciphertext=settings.max_ciphertext_bytes,
        chain_read_timeout=settings.chain_read_timeout,
        lookup_budget=LookupBudget(settings.controller_lookup_budget),
    )
    service = ClearingService(deps)
    publisher = Publisher(service, settings.publish_interval)

    async def start() -> None:
        committer.start()
        publisher.start()

    async def stop() -> None:
        publisher.stop()
        committer.stop()
        service.close()
        store.close()

    app = create_app(
        service,
        max_body=settings.max_body_bytes,
        client_limit=TokenBuckets(settings.client_rate, settings.client_burst, time.monotonic),
        controller_limit=TokenBuckets(
            settings.controller_rate, settings.controller_burst, time.monotonic
        ),
        on_startup=start,
        on_shutdown=stop,
        access_log=settings.access_log if access_log is None else access_log,
        chain_probe=chain_probe,
    )
    if committees is not None:
        mount_board(app, BulletinBoard(store, committees, deps.domain, deps.calendar, deps.clock))
    return app


__all__ = ["build_app"]
