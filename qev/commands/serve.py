"""``qev serve``: the clearing service on uvicorn (settings: ``[service]`` + ``QEV_*``)."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING, Any

from qev.commands.common import config_path, settings_of
from qev.logs import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

    from clearing.api.settings import ServiceSettings

log = logging.getLogger("qev.serve")


def resolved_settings(args: argparse.Namespace | None) -> tuple[ServiceSettings, Any]:
    """Service settings with chain id and genesis read from (and checked against) the chain."""
    from clearing.api.settings import ServiceSettings
    from keeper.factory import connect_chain, web3_for

    settings = settings_of(args, ServiceSettings)
    settings.require("rpc_url", "vault", "settlement")
    w3 = web3_for(settings, settings.chain_read_timeout)
    chain = connect_chain(settings, w3)
    resolved = settings.model_copy(
        update={"chain_id": chain.chain_id(), "genesis": chain.genesis()}
    )
    return resolved, chain


def serve_app() -> FastAPI:
    """The clearing service checking controllers on the chain (a uvicorn app factory).

    ``qev serve --workers N`` builds one in each worker process; the config file reaches
    them through ``QEV_CONFIG``.
    """
    from clearing.api.server import build_app
    from clearing.gcpause import space_out_collections
    from keeper.redemptions import Web3Redemptions

    settings, chain = resolved_settings(None)
    configure_logging(settings.log_format, settings.log_level)  # a worker process starts bare

    def probe() -> None:
        chain.latest_block()

    from clearing.api.webpage import install_webpage
    from keeper.threshold_key import ChainCommittees

    app = build_app(
        settings,
        Web3Redemptions(chain),
        chain_probe=probe,
        committees=ChainCommittees(chain),  # the keypers' bulletin board (threshold mode)
    )
    install_webpage(app, settings)  # the holder's page at / (CSP, SRI, its hash published)
    space_out_collections(settings.gc_gen0)  # last: the app is built and kept
    return app


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from clearing.api.workers import run_workers
    from clearing.keyfiles import read_account_key, read_key

    settings, _ = resolved_settings(args)  # fail here, in one line, not in a worker
    read_account_key(settings.service_key_file, settings.passphrase(), "receipt signing key")
    if settings.master_secret_file is not None:
        read_key(settings.master_secret_file, "master secret")
    path = config_path(args)
    if path is not None:
        os.environ["QEV_CONFIG"] = str(path)
    if args.log_format:
        os.environ["QEV_LOG_FORMAT"] = args.log_format  # for the worker processes
        settings = settings.model_copy(update={"log_format": args.log_format})
    configure_logging(settings.log_format, "debug" if args.debug else settings.log_level)
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    config = _uvicorn_config(settings, host, port)
    log.info(
        "qev serve starting",
        extra={"host": host, "port": port, "workers": workers, "settings": settings.summary()},
    )
    if workers > 1:  # each worker builds its app from the same settings
        return run_workers(config, workers)
    uvicorn.Server(config).run()
    return 0


def _uvicorn_config(settings: ServiceSettings, host: str, port: int) -> Any:
    from clearing.api.edge_limits import uvicorn_config

    return uvicorn_config(
        "qev.commands.serve:serve_app", settings, factory=True, host=host, port=port
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: Any) -> None:
    """Add ``qev serve``."""
    p = sub.add_parser(
        "serve",
        help="run the clearing service",
        description="Run the clearing service (FastAPI on uvicorn). Settings: the config "
        "file's [chain] and [service] tables, QEV_* variables, the deployment file. Chain "
        "id and genesis are read from the chain and checked against any configured value.",
    )
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=_positive, default=None, help="worker processes (QEV_WORKERS)")
    p.set_defaults(func=_run)
