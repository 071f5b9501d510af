"""Deploy the contract stack (USDai model, vault model, QEVSettlement) and wire its roles.

Used by ``qev demo`` and the tests; the deployer is an unlocked node account (py-evm or
anvil dev accounts), while the keeper itself always signs locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


__all__ = ["Deployment", "deploy", "deploy_stack", "transact"]
