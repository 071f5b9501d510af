"""``qev config check``: every setting, file, role, balance and key the stack needs, checked."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from clearing.errors import QevError
from qev.commands.common import config_path, settings_of

#: A keeper lane below this balance is reported (a settle plus claims need some gas).
LOW_BALANCE_WEI = 10**16


@dataclass
class CheckReport:
    """Passed checks and problems, one line each."""

    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self, what: str, test: Callable[[], object]) -> bool:
        """Run ``test``: a string it returns, or a ``QevError`` it raises, is the problem."""
        try:
            result = test()
        except QevError as exc:
            result = str(exc)
        problem = result if isinstance(result, str) else None
        if problem:
            self.problems.append(f"{what}: {problem}")
            return False
        self.passed.append(what)
        return True


def run_checks(args: argparse.Namespace | None) -> CheckReport:
    """Check the configuration of the service and/or the keeper against files and the chain.

    ``args.process`` (``service``, ``keeper`` or ``all``) limits the key files checked to the
    ones that process holds (each container of a split deployment has only its own).
    """
    from clearing.api.settings import ServiceSettings
    from clearing.config import unknown_keys
    from keeper.settings import KeeperSettings

    report = CheckReport()
    path = config_path(args)
    if path is not None:
        known = {
            "chain": set(ServiceSettings.model_fields) & set(KeeperSettings.model_fields),
            "service": set(ServiceSettings.model_fields),
            "keeper": set(KeeperSettings.model_fields),
            "deploy": _deploy_fields(),
            "keyper": _keyper_fields(),
        }
        report.check(
            f"config file {path}",
            lambda: (
                f"unknown keys {', '.join(unknown)}"
                if (unknown := unknown_keys(path, known))
                else None
            ),
        )
    loaded: dict[str, Any] = {}
    for name, cls in (("service", ServiceSettings), ("keeper", KeeperSettings)):

        def load(name: str = name, cls: Any = cls) -> None:
            loaded[name] = settings_of(args, cls)

        report.check(f"{name} settings", load)
    if len(loaded) < 2:
        return report
    service, keeper = loaded["service"], loaded["keeper"]
    process = getattr(args, "process", "all") or "all"
    for missing in ("rpc_url", "vault", "settlement"):
        report.check(f"setting {missing}", partial(service.require, missing))
    if report.problems:
        return report
    _check_keys(report, service, keeper, process)
    _check_chain(report, service, keeper, process)
    _check_store(report, service)
    return report


def _keyper_fields() -> set[str]:
    from keeper.keyper import KeyperSettings

    return set(KeyperSettings.model_fields)


def _deploy_fields() -> set[str]:
    from qev.commands.deploy import DeploySettings

    return set(DeploySettings.model_fields)


def _check_keys(report: CheckReport, service: Any, keeper: Any, process: str) -> None:
    from clearing.keyfiles import read_account_key, read_key

    if process in ("all", "service"):
        report.check(
            "receipt signing key",
            partial(
                read_account_key,
                service.service_key_file,
                service.passphrase(),
                "receipt signing key",
            ),
        )
    if process in ("all", "keeper"):
        report.check("master secret", partial(read_key, keeper.master_secret_file, "master secret"))
        for lane in ("urgent", "housekeeping"):
            path = getattr(keeper, f"{lane}_key_file")
            report.check(
                f"{lane} lane key",
                partial(read_account_key, path, keeper.passphrase(), f"{lane} lane key"),
            )


def _check_chain(report: CheckReport, service: Any, keeper: Any, process: str) -> None:
    from eth_account import Account

    from clearing.keyfiles import read_account_key
    from keeper.factory import connect_chain, web3_for

    w3 = web3_for(service, 10)
    holder: dict[str, Any] = {}

    def connect() -> None:
        holder["chain"] = connect_chain(service, w3)

    if not report.check("chain id, contract code and genesis", connect):
        return
    chain = holder["chain"]
    settlement_vault = chain.settlement.functions.vault().call()
    report.check(
        "settlement's vault",
        lambda: (
            None
            if settlement_vault.lower() == chain.vault.address.lower()
            else f"the settlement contract points at vault {settlement_vault}"
        ),
    )
    vault_role = chain.vault.functions.QEV_SETTLEMENT_ROLE().call()
    report.check(
        "QEV_SETTLEMENT_ROLE on the vault",
        lambda: (
            None
            if chain.vault.functions.hasRole(vault_role, chain.settlement.address).call()
            else "not granted to the settlement contract"
        ),
    )
    strategy = chain.vault.functions.STRATEGY_ADMIN_ROLE().call()
    keeper_role = chain.settlement.functions.KEEPER_ROLE().call()
    for lane in ("urgent", "housekeeping") if process in ("all", "keeper") else ():
        try:
            key = read_account_key(getattr(keeper, f"{lane}_key_file"), keeper.passphrase())
        except QevError:
            continue  # reported above
        address = Account.from_key(key).address
        report.check(
            f"{lane} lane {address} roles",
            partial(_missing_roles, chain, address, strategy, keeper_role),
        )
        report.check(
            f"{lane} lane {address} balance",
            partial(_low_balance, w3, address),
        )
    if process in ("all", "service"):
        report.check("receipt signer registered", partial(_receipt_signer_problem, chain, service))


def _missing_roles(chain: Any, address: str, strategy: bytes, keeper_role: bytes) -> str | None:
    missing = []
    if not chain.vault.functions.hasRole(strategy, address).call():
        missing.append("STRATEGY_ADMIN_ROLE on the vault")
    if not chain.settlement.functions.hasRole(keeper_role, address).call():
        missing.append("KEEPER_ROLE on the settlement contract")
    return f"missing {' and '.join(missing)}" if missing else None


def _low_balance(w3: Any, address: str) -> str | None:
    balance = int(w3.eth.get_balance(address))
    if balance < LOW_BALANCE_WEI:
        return f"{balance / 1e18:.6f} ETH, below {LOW_BALANCE_WEI / 1e18:g} ETH: fund it"
    return None


def _receipt_signer_problem(chain: Any, service: Any) -> str | None:
    from clearing.hexcodec import to_checksum_address
    from clearing.keyfiles import read_account_key
    from clearing.signing import Signer

    key = read_account_key(service.service_key_file, service.passphrase(), "receipt signing key")
    ours = Signer(key).address
    registered = chain.receipt_signer()
    if registered != ours:
        return (
            f"the chain names {to_checksum_address(registered)}, the service key is "
            f"{to_checksum_address(ours)} (run `qev deploy`)"
        )
    return None


def _check_store(report: CheckReport, service: Any) -> None:
    from clearing.store import open_store

    def probe() -> None:
        store = open_store(service.store())
        try:
            store.migrate()
        finally:
            store.close()

    report.check("store reachable and migrated", probe)


def _run(args: argparse.Namespace) -> int:
    report = run_checks(args)
    for line in report.passed:
        print(f"ok    {line}")
    for line in report.problems:
        print(f"FAIL  {line}")
    verdict = "configuration ok" if not report.problems else f"{len(report.problems)} problem(s)"
    print(verdict)
    return 0 if not report.problems else 1


def register(sub: Any) -> None:
    """Add ``qev config``."""
    p = sub.add_parser("config", help="check the configuration: `qev config check`")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser(
        "check",
        help="settings, key files, chain id, genesis, roles, balances, receipt signer, store",
        description="Load the service's and the keeper's settings (config file + QEV_*), "
        "read every key file, and check against the chain: chain id, contract code, "
        "genesis read from the vault, the settlement's vault, roles granted, keeper "
        "balances, the receipt signer registered. One line per problem; exit 1 if any.",
    )
    c.add_argument(
        "--process",
        choices=["all", "service", "keeper"],
        default="all",
        help="check only the key files this process holds (split deployments)",
    )
    c.set_defaults(func=_run)
