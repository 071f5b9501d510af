"""Keeper duties, one module each, on the shared ``keeper.jobs.Keeper`` base.

A duty object offers what the loop (``keeper.loop``) calls: ``open_auction(T)`` (commit the
auction key at window open), ``pending_closes(genesis, window, lookback)`` (what is due) and
``close_auction(T, on_step=...)`` (run or finish a close, every step re-derived from chain and
store). ``keeper.jobs.Keeper`` is the ``merkle`` target's close; ``keeper.duties.registry``
the ``registry`` target's. ``keeper.factory`` picks one by ``settings.target`` and refuses a
target it has no duty for.
"""

from __future__ import annotations
