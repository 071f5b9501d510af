"""What the subcommands share: settings from ``--config``/``QEV_CONFIG``, chain bindings."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TypeVar

from clearing.config import ChainSettings, load_settings

S = TypeVar("S", bound=ChainSettings)


def config_path(args: argparse.Namespace | None = None) -> Path | None:
    """The config file: ``--config``, else ``QEV_CONFIG``, else none."""
    given = getattr(args, "config", None) if args is not None else None
    value = given or os.environ.get("QEV_CONFIG")
    return Path(value) if value else None


def settings_of(args: argparse.Namespace | None, cls: type[S], **overrides: Any) -> S:
    """Settings of ``cls`` for this invocation (one ``ConfigError`` line when invalid)."""
    return load_settings(
        cls, config_path(args), **{k: v for k, v in overrides.items() if v is not None}
    )


def chain_of(settings: ChainSettings, timeout: float = 30.0) -> Any:
    """``keeper.chain.Chain`` for ``settings``, checked (chain id, code, genesis)."""
    from keeper.factory import connect_chain, web3_for

    return connect_chain(settings, web3_for(settings, timeout))


__all__ = ["chain_of", "config_path", "settings_of"]
