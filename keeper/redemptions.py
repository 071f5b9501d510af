"""``RedemptionReader`` over the chain: who controls a request, as the vault says."""

from __future__ import annotations

from clearing.redemptions import RedemptionInfo
from keeper.chain import Chain


class Web3Redemptions:
    """Reads redemption requests from the StakedUSDai vault at ``block`` (default latest)."""

    blocking = True

    def __init__(self, chain: Chain, block: int | str = "latest") -> None:
        self._chain, self._block = chain, block

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """The request, or None if the vault has none with this id."""
        r = self._chain.request(redemption_id, self._block)
        if not any(r.controller):
            return None
        return RedemptionInfo(redemption_id, r.controller, r.pending_shares, r.redemption_timestamp)


__all__ = ["Web3Redemptions"]
