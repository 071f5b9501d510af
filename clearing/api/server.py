"""Wire the service from settings: store, group committer, keys, chain reader, app."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI

from clearing.api.app import create_app
from clearing.api.keys import (
    DerivedAuctionKeys,
    StoredAuctionKeys,
    read_key,
    service_signer,
)
from clearing.api.ratelimit import TokenBuckets
from clearing.api.service import ClearingService, ServiceDeps
from clearing.api.settings import ServiceSettings
from clearing.calendar import AuctionCalendar
from clearing.eip712 import Eip712Domain
from clearing.hexcodec import parse_address
from clearing.redemptions import CachedRedemptions, RedemptionReader
from clearing.store import open_store
from clearing.store.base import BidStore
from clearing.store.group_commit import GroupCommitter


def build_app(
    settings: ServiceSettings,
    redemptions: RedemptionReader,
    *,
    store: BidStore | None = None,
    clock: Callable[[], int] | None = None,
) -> FastAPI:
    """The service app for ``settings`` (the store is opened and migrated here)."""
    store = store or open_store(settings.store_url)
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
            CachedRedemptions(redemptions, ttl=settings.controller_cache_ttl, clock=time.monotonic)
            if redemptions.blocking and settings.controller_cache_ttl > 0
            else redemptions
        ),
        keys=keys,
        signer=service_signer(settings.service_key_file),
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
    )

    async def start() -> None:
        committer.start()

    async def stop() -> None:
        committer.stop()
        store.close()

    return create_app(
        ClearingService(deps),
        max_body=settings.max_body_bytes,
        client_limit=TokenBuckets(settings.client_rate, settings.client_burst, time.monotonic),
        controller_limit=TokenBuckets(
            settings.controller_rate, settings.controller_burst, time.monotonic
        ),
        on_startup=start,
        on_shutdown=stop,
    )


__all__ = ["build_app"]
