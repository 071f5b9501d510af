"""The keeper's one typed settings object (config file ``[keeper]`` + ``QEV_*``), passed in."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from clearing.config import ChainSettings


class KeeperSettings(ChainSettings):
    """Everything the keeper can be configured with. Keys come from files, never arguments."""

    config_sections: ClassVar[tuple[str, ...]] = ("chain", "keeper")

    master_secret_file: Path = Path("qev-data/master.key")
    urgent_key_file: Path = Field(
        default=Path("qev-data/keeper-urgent.key"), description="keystore of the urgent lane"
    )
    housekeeping_key_file: Path = Field(
        default=Path("qev-data/keeper-housekeeping.key"),
        description="keystore of the housekeeping lane",
    )
    key_mode: Literal["single", "threshold"] = Field(
        default="single",
        description="single: keys from master_secret_file; threshold: a keyper committee's DKG "
        "on the service's bulletin board (PROTOCOL 10), no master secret",
    )
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
    rpc_timeout: float = Field(default=30.0, gt=0, description="seconds per JSON-RPC call")
    claim_batch: int = Field(
        default=200, ge=1, description="leaves per claimMultiple (~59k gas each)"
    )
    claim_depth: int = Field(
        default=8, ge=1, description="claim and queue-service transactions in flight at once"
    )
    service_batch: int = Field(
        default=1_500, ge=1, description="queue requests walked per serviceRedemptions"
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "info"


__all__ = ["KeeperSettings"]
