"""``RedemptionReader`` over web3: the vault's ``redemption(uint256)`` view."""

from __future__ import annotations

from typing import Any

from clearing.redemptions import RedemptionInfo
from keeper.artifacts import artifact
from qev.errors import ChainReadError


class Web3Redemptions:
    """Reads redemption requests from the StakedUSDai vault at ``block`` (default latest)."""

    blocking = True

    def __init__(self, w3: Any, vault: str, block: int | str = "latest") -> None:
        self._vault = w3.eth.contract(address=vault, abi=artifact("StakedUSDaiQueue")["abi"])
        self._block = block

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """The request, or None if the vault has none with this id."""
        try:
            (_, _, pending, _, _, controller, timestamp), _ = self._vault.functions.redemption(
                redemption_id
            ).call(block_identifier=self._block)
        except Exception as e:  # RPC errors of every transport
            raise ChainReadError(f"redemption({redemption_id}) failed: {e}") from e
        if int(controller, 16) == 0:
            return None
        return RedemptionInfo(redemption_id, bytes.fromhex(controller[2:]), pending, timestamp)


__all__ = ["Web3Redemptions"]
