"""``qev keyper``: a keyper of the threshold committee (``run``, ``once``), or the committee
registered on-chain (``committee``). Settings: ``[chain]`` and ``[keyper]``, ``QEV_*``."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from qev.commands.common import settings_of
from qev.logs import configure_logging

log = logging.getLogger("qev.keyper")


def _run(args: argparse.Namespace) -> int:
    from keeper.keyper import KeyperSettings, build_keyper, run

    settings = settings_of(args, KeyperSettings, service_url=args.service)
    configure_logging(
        args.log_format or settings.log_format, "debug" if args.debug else settings.log_level
    )
    keyper, board = build_keyper(settings)
    committee = keyper.committees.committee_for(
        keyper.calendar.current(keyper.chain.latest_block()[1])
    )
    index = None if committee is None else keyper.index_in(committee)
    log.info(
        "qev keyper starting",
        extra={
            "account": "0x" + keyper.account.address.hex(),
            "identity_key": "0x" + keyper.identity_public.hex(),
            "index": index,
            "settings": settings.summary(),
        },
    )
    if committee is not None and index is None:
        log.warning("this account is not in the keyper committee registered on-chain")
    try:
        if args.action == "once":
            for action in keyper.tick():
                print(action)
            return 0
        run(keyper, poll_seconds=settings.poll_seconds)
    finally:
        board.close()
    return 0


def _committee(args: argparse.Namespace) -> int:
    from clearing.config import ChainSettings
    from keeper.threshold_key import current_committee_id, read_committee
    from qev.commands.common import chain_of

    chain = chain_of(settings_of(args, ChainSettings))
    committee_id = args.id if args.id is not None else current_committee_id(chain)
    committee = read_committee(chain, committee_id)
    mode = int(chain._call(chain.settlement.functions.keyMode()))
    doc = {
        "key_mode": "threshold" if mode == 1 else "single",
        "committee": committee.to_json() if committee is not None else None,
    }
    print(json.dumps(doc, indent=2))
    return 0


def register(sub: Any) -> None:
    """Add ``qev keyper``."""
    p = sub.add_parser(
        "keyper",
        help="a keyper of the threshold committee: `run`, `once`, or show the `committee`",
        description="A member of the keyper committee (threshold key mode, PROTOCOL 10): deals, "
        "checks, complains and answers during each window's DKG on the service's bulletin "
        "board; releases its key share only once commitBook(T) is on-chain and chain time "
        "is past T. Keys: identity_key_file (`qev keys keyper-identity`) and "
        "account_key_file (`qev keys account`). Settings: [chain] and [keyper] of the config "
        "file, QEV_*, the deployment file.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("run", "tick until stopped"), ("once", "one tick, print what it did")):
        k = actions.add_parser(name, help=text, description=text)
        k.add_argument("--service", default=None, help="service base URL (QEV_SERVICE_URL)")
        k.set_defaults(func=_run)
    k = actions.add_parser("committee", help="the committee and key mode on-chain (JSON)")
    k.add_argument("--id", type=int, default=None, help="a committee id (default: current)")
    k.set_defaults(func=_committee)
