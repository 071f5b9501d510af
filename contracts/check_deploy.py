"""Smoke check: the committed artifacts deploy and run on py-evm (web3's EthereumTesterProvider).

Deploys MockUSDai, StakedUSDaiQueue, QEVSettlement and QEVRegistry, then runs one auction
end to end: deposit -> requestRedeem -> commitAuctionKey -> (time travel past T) -> commitBook ->
settleAuction (one-leaf tree, root = leaf, empty proof) -> claim -> revealAuctionKey ->
serviceRedemptions.

    .venv/bin/python contracts/check_deploy.py
"""

import json
import pathlib

from eth_abi import encode
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

ART = pathlib.Path(__file__).resolve().parent / "artifacts"
WINDOW = 30 * 86400


def load(name):
    return json.loads((ART / f"{name}.json").read_text())


def main():
    provider = EthereumTesterProvider()
    w3 = Web3(provider)
    tester = provider.ethereum_tester
    admin, keeper, alice = w3.eth.accounts[:3]

    def deploy(name, *args):
        art = load(name)
        c = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        rcpt = w3.eth.wait_for_transaction_receipt(c.constructor(*args).transact({"from": admin}))
        return w3.eth.contract(address=rcpt.contractAddress, abi=art["abi"]), rcpt.gasUsed

    def send(fn, sender):
        rcpt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert rcpt.status == 1, fn
        return rcpt

    usdai, g1 = deploy("MockUSDai", admin)
    vault, g2 = deploy("StakedUSDaiQueue", usdai.address, 0, admin)
    settlement, g3 = deploy("QEVSettlement", vault.address, admin, 0, "0x" + "00" * 20)
    registry, g4 = deploy("QEVRegistry", vault.address, 100, admin)  # the draft's constructor
    send(registry.functions.initialize(), admin)
    print("deploy gas:", dict(MockUSDai=g1, StakedUSDaiQueue=g2, QEVSettlement=g3, QEVRegistry=g4))

    send(
        vault.functions.grantRole(vault.functions.QEV_SETTLEMENT_ROLE().call(), settlement.address),
        admin,
    )
    send(vault.functions.grantRole(vault.functions.STRATEGY_ADMIN_ROLE().call(), keeper), admin)
    send(settlement.functions.grantRole(settlement.functions.KEEPER_ROLE().call(), keeper), admin)

    e18 = 10**18
    send(usdai.functions.mint(alice, 1000 * e18), admin)
    send(usdai.functions.approve(vault.address, 1000 * e18), alice)
    send(vault.functions.deposit(1000 * e18, alice), alice)
    send(vault.functions.requestRedeem(100 * e18, alice, alice), alice)
    (red, _ahead) = vault.functions.redemption(1).call()
    t = vault.functions.redemptionTimestamp().call()
    assert red[6] == t and red[2] == 100 * e18, red
    print("queue info:", vault.functions.redemptionQueueInfo().call(), "T =", t)

    sk = Web3.keccak(text="demo auction key")
    send(settlement.functions.commitAuctionKey(t, b"\x11" * 32, Web3.keccak(sk)), keeper)

    tester.time_travel(t + 1)
    tester.mine_blocks(1)

    price = vault.functions.redemptionSharePrice().call()
    filled, bp = 60 * e18, 250
    burnt = filled * bp // 10000
    payout = (filled - burnt) * price // e18
    leaf_value = encode(
        ["uint64", "uint256", "address", "uint256", "uint256", "uint256"],
        [t, 1, alice, filled, burnt, payout],
    )
    leaf = Web3.keccak(Web3.keccak(leaf_value))
    assert leaf == settlement.functions.allocationLeaf(t, 1, alice, filled, burnt, payout).call()
    send(settlement.functions.commitBook(t, b"\x22" * 32, 1), keeper)  # the book before settling
    rcpt = send(
        settlement.functions.settleAuction(t, leaf, b"\x22" * 32, filled, burnt, payout), keeper
    )
    print("settleAuction gas:", rcpt.gasUsed)
    rcpt = send(settlement.functions.claim(t, 1, alice, filled, burnt, payout, []), keeper)
    print("claim gas (1-leaf tree):", rcpt.gasUsed)
    assert usdai.functions.balanceOf(alice).call() == payout
    send(settlement.functions.revealAuctionKey(t, sk), keeper)
    assert settlement.functions.auctionKey(t).call()[3] is True
    send(vault.functions.serviceRedemptions(40 * e18), keeper)
    print(
        "after service:",
        vault.functions.redemptionQueueInfo().call(),
        "balances",
        vault.functions.balances().call(),
    )
    print("OK: artifacts deploy and run on py-evm")


if __name__ == "__main__":
    main()
