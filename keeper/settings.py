"""The keeper's one typed settings object (``QEV_`` environment prefix), passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from clearing.calendar import REDEMPTION_WINDOW


class KeeperSettings(BaseSettings):
    """Everything the keeper can be configured with. Keys come from files, never arguments."""

    model_config = SettingsConfigDict(env_prefix="QEV_", extra="ignore")

    rpc_url: str = "http://127.0.0.1:8545"
    vault: str = "0x0000000000000000000000000000000000000000"
    settlement: str = "0x0000000000000000000000000000000000000000"
    store_url: str = "sqlite:///qev-data/qev.db"
    master_secret_file: Path = Path("qev-data/master.key")
    urgent_key_file: Path = Path("qev-data/keeper-urgent.key")
    housekeeping_key_file: Path = Path("qev-data/keeper-housekeeping.key")
    target: Literal["merkle", "registry"] = "merkle"
    eip712_name: str | None = None
    eip712_version: str | None = None
    window: int = REDEMPTION_WINDOW
    mode: Literal["pay_as_bid", "uniform"] = "pay_as_bid"
    min_fill: int = 10**18
    liquidity_bps: int = 10_000
    confirmations: int = 2
    stuck_after: float = 60.0
    tx_deadline: float = 900.0
    poll_seconds: float = 30.0
    lookback_auctions: int = 3
    metrics_port: int = 9101
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container that a Prometheus scrapes

    def domain_name(self) -> str:
        """The EIP-712 domain name for the configured target."""
        return self.eip712_name or ("QEVSettlement" if self.target == "merkle" else "QEVRegistry")

    def domain_version(self) -> str:
        """The EIP-712 domain version for the configured target."""
        return self.eip712_version or ("1" if self.target == "merkle" else "1.0")


__all__ = ["KeeperSettings"]
