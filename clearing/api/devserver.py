"""A self-contained service for tests, load tests and demos: no chain, deterministic holders.

Holder ``i`` has key ``sha256(seed || i)`` and redemption request ``i`` (pending
``1000 * 1e18`` shares, matured), so a load generator can derive the same holders and seal
bids ahead of time. ``python -m clearing.api.devserver --store URL --port N [--workers W]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

from fastapi import FastAPI
from pydantic import SecretStr

from clearing.api.server import build_app
from clearing.api.settings import ServiceSettings
from clearing.api.workers import run_workers
from clearing.calendar import REDEMPTION_WINDOW
from clearing.gcpause import space_out_collections
from clearing.keyfiles import load_or_create_key
from clearing.redemptions import RedemptionInfo
from clearing.signing import Signer

E18 = 10**18


def holder_key(seed: str, i: int) -> bytes:
    """The deterministic test key of holder ``i`` (never a real key)."""
    return hashlib.sha256(f"qev-devserver:{seed}:{i}".encode()).digest()


def holder_addresses(seed: str, count: int, cache: Path) -> list[bytes]:
    """The addresses of holders ``0..count-1``, derived once and kept in ``cache``.

    Deriving one costs an elliptic-curve multiplication (~60 us); a load test with 180,000
    holders would otherwise spend seconds of the service's event loop on it. The file holds
    the concatenated 20-byte addresses; a longer file serves a shorter run.
    """
    known = cache.read_bytes() if cache.exists() else b""
    have = len(known) // 20
    if have < count:
        known = known[: have * 20] + b"".join(
            Signer(holder_key(seed, i)).address for i in range(have, count)
        )
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_bytes(known)
        tmp.replace(cache)
    return [known[i * 20 : (i + 1) * 20] for i in range(count)]


class DerivedHolders:
    """``RedemptionReader`` for holders ``0..count-1`` (request ``i`` is holder ``i``'s)."""

    blocking = False

    def __init__(self, seed: str, count: int, matured_at: int, cache: Path) -> None:
        self._requests = [
            RedemptionInfo(i, address, 1000 * E18, matured_at)
            for i, address in enumerate(holder_addresses(seed, count, cache))
        ]

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """Request ``redemption_id`` if it is one of the holders'."""
        if 0 <= redemption_id < len(self._requests):
            return self._requests[redemption_id]
        return None


def dev_settings(store: str, data_dir: Path, genesis: int) -> ServiceSettings:
    """Settings for a local service with derived keys and generous rate limits.

    The dev server creates its own master secret (the only place besides the demo and the
    explicit ``qev keys`` command where a secret is created).
    """
    load_or_create_key(data_dir / "master.key")
    load_or_create_key(data_dir / "service.key")
    return ServiceSettings(
        store_url=SecretStr(store),
        chain_id=31337,
        settlement="0x" + "00" * 20,
        genesis=genesis,
        service_key_file=data_dir / "service.key",
        master_secret_file=data_dir / "master.key",
        client_rate=1e9,
        client_burst=10**9,
        controller_rate=1e9,
        controller_burst=10**9,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory (``--factory``), configured by QEV_DEV_* variables (for workers > 1)."""
    genesis = int(os.environ["QEV_DEV_GENESIS"])
    data = Path(os.environ["QEV_DEV_DATA"])
    settings = dev_settings(os.environ["QEV_DEV_STORE"], data, genesis)
    seed = os.environ.get("QEV_DEV_SEED", "load")
    holders = DerivedHolders(
        seed, int(os.environ.get("QEV_DEV_HOLDERS", "100000")), genesis, _holders_file(data, seed)
    )
    app = build_app(settings, holders)
    space_out_collections(settings.gc_gen0)  # as ``qev serve`` does in each worker
    return app


def _holders_file(data: Path, seed: str) -> Path:
    return data / f"holders-{hashlib.sha256(seed.encode()).hexdigest()[:16]}.bin"


def current_genesis(now: int | None = None) -> int:
    """A genesis that puts ``now`` in the middle of an auction window."""
    now = int(time.time()) if now is None else now
    return now - REDEMPTION_WINDOW // 2 - REDEMPTION_WINDOW


def main() -> None:
    """Run the dev server."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m clearing.api.devserver")
    parser.add_argument("--store", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--genesis", type=int, default=None)
    parser.add_argument("--seed", default="load")
    parser.add_argument("--holders", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.update(
        QEV_DEV_GENESIS=str(args.genesis or current_genesis()),
        QEV_DEV_DATA=args.data,
        QEV_DEV_STORE=args.store,
        QEV_DEV_SEED=args.seed,
        QEV_DEV_HOLDERS=str(args.holders),
    )
    Path(args.data).mkdir(parents=True, exist_ok=True)
    # derived once here, not by each worker (key files need no such step: their creation
    # is atomic, so workers starting together share the one that wins)
    holder_addresses(args.seed, args.holders, _holders_file(Path(args.data), args.seed))
    config = uvicorn.Config(
        "clearing.api.devserver:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    if args.workers > 1:
        sys.exit(run_workers(config, args.workers))
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
