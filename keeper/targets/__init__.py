"""Settlement targets: one typed adapter per target (reads and unsent write builders).

``merkle`` is this repository's ``QEVSettlement`` (its reads live in ``keeper.chain.Chain``, its
jobs in ``keeper.jobs``); ``registry`` is USD.AI's draft QEV registry and the vault's reorder
(``keeper.targets.registry``, driven by ``keeper.duties.registry``). A target this tuple does
not name stops the keeper at start-up (``keeper.factory``).
"""

from __future__ import annotations

TARGETS = ("merkle", "registry")

__all__ = ["TARGETS"]
