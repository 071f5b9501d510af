"""The service's one typed settings object (``QEV_`` environment prefix), passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clearing.calendar import REDEMPTION_WINDOW


class ServiceSettings(BaseSettings):
    """Everything the clearing service can be configured with."""

    model_config = SettingsConfigDict(env_prefix="QEV_", extra="ignore")

    store_url: str = "sqlite:///qev-data/qev.db"
    chain_id: int = 31337
    settlement: str = "0x0000000000000000000000000000000000000000"
    target: Literal["merkle", "registry"] = "merkle"
    eip712_name: str | None = None  # default per target: QEVSettlement / QEVRegistry
    eip712_version: str | None = None  # default per target: 1 / 1.0
    genesis: int = 1_735_689_600
    window: int = REDEMPTION_WINDOW
    service_key_file: Path = Path("qev-data/service.key")
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
    rpc_url: str | None = None  # chain RPC used to check each bid's controller
    chain_read_timeout: float = Field(
        default=3.0, gt=0, description="seconds a bid waits for its controller lookup"
    )
    controller_cache_ttl: float = Field(
        default=300.0, ge=0, description="seconds a looked-up request controller is remembered"
    )
    vault: str = "0x0000000000000000000000000000000000000000"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        default=1,
        ge=1,
        description="worker processes, each on its own SO_REUSEPORT socket; rate limits and "
        "the group commit are per worker",
    )

    def domain_name(self) -> str:
        """The EIP-712 domain name for the configured target."""
        return self.eip712_name or ("QEVSettlement" if self.target == "merkle" else "QEVRegistry")

    def domain_version(self) -> str:
        """The EIP-712 domain version for the configured target."""
        return self.eip712_version or ("1" if self.target == "merkle" else "1.0")


__all__ = ["ServiceSettings"]
