"""Deploy the contract stack (USDai model, vault model, QEVSettlement) and wire its roles.

``deploy_stack`` is the demo's and the tests' one-shot (an unlocked node account deploys);
``plan_actions`` is ``qev deploy``'s idempotent plan: it reads what the chain already has
and returns only the transactions still needed, for an unlocked dev account or a local key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from clearing.errors import QevError
from keeper.artifacts import artifact


@dataclass(frozen=True)
class Deployment:
    """Addresses of a deployed stack."""

    usdai: str
    vault: str
    settlement: str


def transact(w3: Any, fn: Any, sender: str) -> Any:
    """Send a call from an unlocked account and require success (setup only)."""
    receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    if receipt["status"] != 1:
        raise RuntimeError(f"{fn.fn_name} reverted")
    return receipt


def deploy(w3: Any, name: str, sender: str, *args: Any) -> Any:
    """Deploy ``name`` from the committed artifact; returns the bound contract."""
    data = artifact(name)
    factory = w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(*args).transact({"from": sender})
    )
    return w3.eth.contract(address=receipt["contractAddress"], abi=data["abi"])


def deploy_stack(
    w3: Any,
    admin: str,
    keepers: list[str],
    *,
    genesis: int = 0,
    admin_fee_bps: int = 0,
    fee_recipient: str | None = None,
    receipt_signer: str | None = None,
) -> Deployment:
    """Deploy USDai, the vault and QEVSettlement; grant the keeper accounts their roles.

    ``receipt_signer``, when given, is registered as the settlement's ``receiptSigner`` (the
    service's receipt-signing address clients pin from the chain) by the admin after the roles.
    """
    usdai = deploy(w3, "MockUSDai", admin, admin)
    vault = deploy(w3, "StakedUSDaiQueue", admin, usdai.address, genesis, admin)
    settlement = deploy(
        w3, "QEVSettlement", admin, vault.address, admin, admin_fee_bps, fee_recipient or admin
    )
    transact(
        w3,
        vault.functions.grantRole(vault.functions.QEV_SETTLEMENT_ROLE().call(), settlement.address),
        admin,
    )
    strategy = vault.functions.STRATEGY_ADMIN_ROLE().call()
    keeper_role = settlement.functions.KEEPER_ROLE().call()
    for k in keepers:
        transact(w3, vault.functions.grantRole(strategy, k), admin)
        transact(w3, settlement.functions.grantRole(keeper_role, k), admin)
    if receipt_signer is not None:
        transact(w3, settlement.functions.setReceiptSigner(receipt_signer), admin)
    return Deployment(usdai.address, vault.address, settlement.address)


# --- `qev deploy`: an idempotent plan from chain state ------------------------------------


@dataclass(frozen=True)
class Action:
    """One transaction ``qev deploy`` would send (``--dry-run`` prints ``describe``)."""

    describe: str
    run: Callable[[], Any]


@dataclass
class DeployPlan:
    """What a deployment needs, given what the chain already has."""

    chain_id: int
    dev: bool
    admin: str
    keepers: list[str]
    receipt_signer: str | None
    admin_fee_bps: int
    fee_recipient: str
    genesis: int
    fund_wei: int = 0
    usdai: str | None = None
    vault: str | None = None
    settlement: str | None = None
    block: int | None = None
    notes: list[str] = field(default_factory=list)


class TxSender(Protocol):
    """Sends one setup transaction and returns its receipt (failure raises)."""

    address: str

    def send(self, fn: Any, what: str) -> Any:
        """Send ``fn`` (a contract call or constructor) from ``address``; wait for success."""

    def send_value(self, to: str, wei: int) -> Any:
        """Send ``wei`` to ``to``."""


class UnlockedSender:
    """A dev node's unlocked account (anvil, py-evm): the node signs."""

    def __init__(self, w3: Any, address: str, timeout: float = 120) -> None:
        self.w3, self.address, self.timeout = w3, address, timeout

    def send(self, fn: Any, what: str) -> Any:
        """Send and wait; raise ``DeployError`` on a revert."""
        return _wait(self.w3, fn.transact({"from": self.address}), what, self.timeout)

    def send_value(self, to: str, wei: int) -> Any:
        """Plain ETH transfer."""
        tx = self.w3.eth.send_transaction({"from": self.address, "to": to, "value": wei})
        return _wait(self.w3, tx, f"fund {to}", self.timeout)


class LocalKeySender:
    """A deployer key held here (keystore): sign locally, send raw."""

    def __init__(self, w3: Any, account: Any, timeout: float = 300) -> None:
        self.w3, self.account, self.timeout = w3, account, timeout
        self.address = str(account.address)

    def _sign_send(self, tx: dict[str, Any], what: str) -> Any:
        tx.setdefault("from", self.address)
        tx["nonce"] = self.w3.eth.get_transaction_count(self.address, "pending")
        tx.setdefault("chainId", self.w3.eth.chain_id)
        if "gas" not in tx:
            tx["gas"] = int(self.w3.eth.estimate_gas(tx) * 1.2)
        signed = self.account.sign_transaction(tx)
        return _wait(
            self.w3, self.w3.eth.send_raw_transaction(signed.raw_transaction), what, self.timeout
        )

    def send(self, fn: Any, what: str) -> Any:
        """Build, sign and send ``fn``; wait for success."""
        return self._sign_send(dict(fn.build_transaction({"from": self.address})), what)

    def send_value(self, to: str, wei: int) -> Any:
        """Plain ETH transfer."""
        return self._sign_send({"to": to, "value": wei, "gas": 21_000}, f"fund {to}")


class DeployError(QevError):
    """A deployment transaction that reverted or a chain that cannot take this deployment."""

    code = "deploy"


def _wait(w3: Any, tx_hash: Any, what: str, timeout: float) -> Any:
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1:
        raise DeployError(f"{what} reverted (tx {receipt['transactionHash'].hex()})")
    return receipt


def _has_code(w3: Any, address: str | None) -> bool:
    return bool(address) and bool(w3.eth.get_code(address))


def plan_actions(w3: Any, plan: DeployPlan, sender: TxSender) -> list[Action]:
    """The transactions still needed, read from chain state; each re-reads what it needs.

    Contracts already at the plan's addresses (with code) are kept; roles already granted,
    a receipt signer already set and keeper balances already funded are skipped, so running
    it twice sends nothing the second time.
    """
    actions: list[Action] = []
    admin = sender.address
    if plan.dev and not _has_code(w3, plan.usdai):

        def deploy_usdai() -> None:
            contract, receipt = _deploy(w3, sender, "MockUSDai", admin)
            plan.usdai = contract.address
            plan.block = plan.block or int(receipt["blockNumber"])

        actions.append(Action(f"deploy MockUSDai (admin {admin})", deploy_usdai))
    if plan.dev and not _has_code(w3, plan.vault):

        def deploy_vault() -> None:
            contract, receipt = _deploy(
                w3, sender, "StakedUSDaiQueue", plan.usdai, plan.genesis, plan.admin
            )
            plan.vault = contract.address
            plan.block = plan.block or int(receipt["blockNumber"])

        actions.append(
            Action(f"deploy StakedUSDaiQueue (vault model, genesis {plan.genesis})", deploy_vault)
        )
    if not _has_code(w3, plan.settlement):

        def deploy_settlement() -> None:
            contract, receipt = _deploy(
                w3,
                sender,
                "QEVSettlement",
                plan.vault,
                plan.admin,
                plan.admin_fee_bps,
                plan.fee_recipient,
            )
            plan.settlement = contract.address
            plan.block = int(receipt["blockNumber"])

        actions.append(
            Action(
                f"deploy QEVSettlement (admin {plan.admin}, fee {plan.admin_fee_bps} bp)",
                deploy_settlement,
            )
        )
    vault = _bound(w3, "StakedUSDaiQueue", plan, "vault")
    settlement = _bound(w3, "QEVSettlement", plan, "settlement")

    def grant(contract_name: str, role_name: str, account_of: Callable[[], str]) -> Action:
        def run() -> None:
            contract = vault() if contract_name == "vault" else settlement()
            role = getattr(contract.functions, role_name)().call()
            account = account_of()
            if not contract.functions.hasRole(role, account).call():
                sender.send(contract.functions.grantRole(role, account), f"grant {role_name}")

        return Action(
            f"grant {role_name} on the {contract_name} to {account_of_label(account_of)}", run
        )

    needed = []
    existing = plan.vault if _has_code(w3, plan.vault) else None
    existing_settlement = plan.settlement if _has_code(w3, plan.settlement) else None
    if (
        existing is None
        or existing_settlement is None
        or not _has_role(
            w3, existing, "StakedUSDaiQueue", "QEV_SETTLEMENT_ROLE", existing_settlement
        )
    ):
        needed.append(grant("vault", "QEV_SETTLEMENT_ROLE", lambda: str(plan.settlement)))
    for keeper in plan.keepers:
        if existing is None or not _has_role(
            w3, existing, "StakedUSDaiQueue", "STRATEGY_ADMIN_ROLE", keeper
        ):
            needed.append(grant("vault", "STRATEGY_ADMIN_ROLE", partial(str, keeper)))
        if existing_settlement is None or not _has_role(
            w3, existing_settlement, "QEVSettlement", "KEEPER_ROLE", keeper
        ):
            needed.append(grant("settlement", "KEEPER_ROLE", partial(str, keeper)))
    actions.extend(needed)
    signer = plan.receipt_signer
    if signer is not None:
        current = (
            w3.eth.contract(address=existing_settlement, abi=artifact("QEVSettlement")["abi"])
            .functions.receiptSigner()
            .call()
            if existing_settlement
            else None
        )
        if current is None or current.lower() != signer.lower():
            actions.append(
                Action(
                    f"set the receipt signer to {signer}",
                    lambda: sender.send(
                        settlement().functions.setReceiptSigner(signer), "setReceiptSigner"
                    ),
                )
            )
    if plan.fund_wei:
        for keeper in plan.keepers:
            balance = int(w3.eth.get_balance(keeper))
            if balance < plan.fund_wei:
                top_up = plan.fund_wei - balance
                actions.append(
                    Action(
                        f"fund keeper {keeper} with {top_up / 10**18:g} ETH",
                        partial(sender.send_value, keeper, top_up),
                    )
                )
    return actions


def account_of_label(account_of: Callable[[], str]) -> str:
    """The account a grant goes to, or a placeholder when it is deployed by this plan."""
    try:
        value = account_of()
    except Exception:  # an address not known before its deployment
        return "(deployed above)"
    return value if value and value != "None" else "(deployed above)"


def _has_role(w3: Any, address: str, name: str, role_name: str, account: str) -> bool:
    contract = w3.eth.contract(address=address, abi=artifact(name)["abi"])
    role = getattr(contract.functions, role_name)().call()
    return bool(contract.functions.hasRole(role, account).call())


def _bound(w3: Any, name: str, plan: DeployPlan, attr: str) -> Callable[[], Any]:
    return lambda: w3.eth.contract(address=getattr(plan, attr), abi=artifact(name)["abi"])


def _deploy(w3: Any, sender: TxSender, name: str, *args: Any) -> tuple[Any, Any]:
    data = artifact(name)
    factory = w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
    receipt = sender.send(factory.constructor(*args), f"deploy {name}")
    return w3.eth.contract(address=receipt["contractAddress"], abi=data["abi"]), receipt


def deployment_document(plan: DeployPlan) -> dict[str, Any]:
    """The deployment file's content (read by serve, keeper, verify and status)."""
    return {
        "chain_id": plan.chain_id,
        "vault": plan.vault,
        "settlement": plan.settlement,
        "usdai": plan.usdai,
        "genesis": plan.genesis,
        "receipt_signer": plan.receipt_signer,
        "keepers": plan.keepers,
        "admin": plan.admin,
        "block": plan.block,
    }


__all__ = [
    "Action",
    "DeployError",
    "DeployPlan",
    "Deployment",
    "LocalKeySender",
    "TxSender",
    "UnlockedSender",
    "deploy",
    "deploy_stack",
    "deployment_document",
    "plan_actions",
    "transact",
]
