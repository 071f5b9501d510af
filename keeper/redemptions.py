"""``RedemptionReader`` over the chain: who controls a request, as the vault says."""

from __future__ import annotations

from collections.abc import Sequence

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

    def redemptions(self, redemption_ids: Sequence[int]) -> dict[int, RedemptionInfo | None]:
        """Many requests in batched reads (None where the vault has none)."""
        read = self._chain.requests(redemption_ids, self._block)
        return {
            rid: RedemptionInfo(rid, r.controller, r.pending_shares, r.redemption_timestamp)
            if any(r.controller)
            else None
            for rid, r in read.items()
        }


__all__ = ["Web3Redemptions"]
