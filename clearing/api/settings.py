"""The service's one typed settings object (config file ``[service]`` + ``QEV_*``), passed in."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from clearing.config import ChainSettings


class ServiceSettings(ChainSettings):
    """Everything the clearing service can be configured with (``clearing.config`` order)."""

    config_sections: ClassVar[tuple[str, ...]] = ("chain", "service")

    service_key_file: Path = Field(
        default=Path("qev-data/service.key"),
        description="the receipt-signing key: a keystore or a 0600 hex file (`qev keys`)",
    )
    master_secret_file: Path | None = None  # dev/demo: derive auction public keys locally
    max_body_bytes: int = 4096
    min_ciphertext_bytes: int = 368  # enc 32 + plaintext 320 + tag 16
    max_ciphertext_bytes: int = 1024
    client_rate: float = Field(default=200.0, description="requests/s per client address")
    client_burst: int = 400
    controller_rate: float = Field(default=5.0, description="bid writes/s per controller")
    controller_burst: int = 20
    commit_max_batch: int = 256
    commit_max_wait: float = Field(default=0.001, description="longest linger of a batch (s)")
    commit_quiet: float = Field(default=0.0005, description="stop lingering after this (s)")
    gc_gen0: int = Field(
        default=50_000,
        ge=0,
        description="allocations between young garbage collections in a worker (0: Python's "
        "700); what exists at start is kept out of collections",
    )
    chain_read_timeout: float = Field(
        default=3.0, gt=0, description="seconds a bid waits for its controller lookup"
    )
    controller_cache_ttl: float = Field(
        default=300.0, ge=0, description="seconds a looked-up request controller is remembered"
    )
    controller_cache_page: int = Field(
        default=255,
        ge=1,
        le=255,
        description="request ids read together on a cache miss (one batched chain read)",
    )
    publish_interval: float = Field(
        default=2.0,
        ge=0,
        description="seconds between checks for a settled auction whose /book to build ahead "
        "of its first request (0: build it on the first request)",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        default=1,
        ge=1,
        description="worker processes, each on its own SO_REUSEPORT socket; rate limits and "
        "the group commit are per worker",
    )
    # --- the edge (each a safe default; see docs/OPERATING.md) ---------------------------
    max_header_bytes: int = Field(
        default=16_384, ge=1024, description="largest request head (431/400 beyond)"
    )
    header_timeout: float = Field(
        default=10.0, gt=0, description="seconds to send a request's head before the socket closes"
    )
    body_timeout: float = Field(
        default=10.0, gt=0, description="seconds to send a request's body once its head is in"
    )
    keep_alive_timeout: float = Field(
        default=5.0, gt=0, description="seconds an idle keep-alive connection is kept"
    )
    max_connections: int = Field(
        default=1024, ge=1, description="open connections per worker; more are closed at once"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="peers (IPs or CIDRs) whose X-Forwarded-For names the client; none by default",
    )
    controller_lookup_budget: int = Field(
        default=2000,
        ge=1,
        description="chain reads per client per auction for controller look-ups (uncached)",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="origins of pages hosted elsewhere that may call the API; none: same origin",
    )
    web_rpc_url: str | None = Field(
        default=None,
        description="a public RPC URL the web page reads the chain through (its connect-src); "
        "never the operator's rpc_url",
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "info"
    access_log: bool = True


__all__ = ["ServiceSettings"]
