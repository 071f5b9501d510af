"""Spread the CPU-bound steps of a close (opening bids, hashing leaves) over processes.

The pure functions live in ``validation`` and ``merkle``; this module only splits the work
into contiguous chunks, runs them in forked worker processes and joins the results in
order, so the output is identical to the single-process call.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clearing.engine import ValidBid
from clearing.merkle import leaf_hasher
from clearing.model import Envelope
from clearing.validation import (
    AuctionContext,
    Exclusion,
    ExclusionReason,
    RequestSnapshot,
    validate_envelope,
)

# Inputs handed to forked workers by inheritance instead of pickling (set just before fork).
_SHARED: dict[str, Any] = {}


def default_workers() -> int:
    """Worker processes to use: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _chunks(n: int, parts: int) -> list[tuple[int, int]]:
    step = -(-n // parts)
    return [(i, min(i + step, n)) for i in range(0, n, step)]


#: Below this many items a fork costs more than it saves.
MIN_PARALLEL_ITEMS = 1_000


def _map_chunks(
    fn: Callable[[int, int], Any],
    n: int,
    workers: int,
    shared: dict[str, Any],
    min_parallel: int = MIN_PARALLEL_ITEMS,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> list[Any]:
    """``fn`` over contiguous chunks of ``range(n)`` on ``workers`` forked processes; the
    main process runs ``meanwhile`` (e.g. waiting on the network) while they work."""
    if (
        workers <= 1
        or n < max(2 * workers, min_parallel)
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        if meanwhile is not None:
            meanwhile()
        _SHARED.update(shared)
        try:
            return [fn(0, n)]
        finally:
            _SHARED.clear()
    _SHARED.update(shared)
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers) as pool:  # forked before ``meanwhile`` starts any I/O
            # a few chunks per worker, handed out as workers free up: one slow core
            # (another process on it) does not hold the whole run back
            pending = pool.starmap_async(fn, _chunks(n, workers * 4), chunksize=1)
            if meanwhile is not None:
                meanwhile()
            return pending.get()
    finally:
        _SHARED.clear()


def shared_input(name: str) -> Any:
    """An input of ``map_ranges`` (in a worker: inherited at fork, never pickled)."""
    return _SHARED[name]


def map_ranges(
    fn: Callable[[int, int], list[Any]],
    n: int,
    shared: dict[str, Any],
    workers: int = 0,
    min_parallel: int = MIN_PARALLEL_ITEMS,
) -> list[Any]:
    """``fn(start, end)`` over contiguous chunks of ``range(n)`` on ``workers`` forked
    processes (0 = all CPUs), its lists joined in order; ``fn`` (a module-level function)
    reads ``shared`` through ``shared_input``."""
    parts = _map_chunks(fn, n, workers or default_workers(), shared, min_parallel)
    return [item for part in parts for item in part]


def _hash_range(start: int, end: int) -> list[bytes]:
    h = leaf_hasher(_SHARED["types"])
    return list(map(h, _SHARED["values"][start:end]))


def leaf_hashes(
    values: Sequence[Sequence[Any]],
    types: Sequence[str],
    workers: int = 0,
    min_parallel: int = MIN_PARALLEL_ITEMS,
) -> list[bytes]:
    """Standard leaf hashes of ``values``, computed on ``workers`` processes (0 = all CPUs)."""
    shared = {"values": values, "types": tuple(types)}
    return map_ranges(_hash_range, len(values), shared, workers, min_parallel)


def _validate_range(start: int, end: int) -> list[tuple[Any, ...]]:
    """Rule 0 over a chunk; results as plain tuples (a third of the pickling cost)."""
    ctx: AuctionContext = _SHARED["ctx"]
    opener = ctx.opener()
    requests = _SHARED["requests"]
    envelopes = _SHARED["envelopes"]
    out: list[tuple[Any, ...]] = []
    for i in range(start, end):
        r = validate_envelope(envelopes[i], ctx, opener, requests)
        if isinstance(r, ValidBid):
            out.append((r.redemption_id, r.controller, r.basis_point, r.size))
        else:
            out.append((r.redemption_id, r.controller, r.ciphertext_hash, r.reason, r.detail))
    return out


def validate_book_parallel(
    envelopes: Sequence[Envelope],
    ctx: AuctionContext,
    requests: Mapping[int, RequestSnapshot],
    workers: int = 0,
    min_parallel: int = MIN_PARALLEL_ITEMS,
    *,
    meanwhile: Callable[[], None] | None = None,
) -> tuple[list[ValidBid], list[Exclusion]]:
    """``validation.validate_book`` on ``workers`` processes; same output, same order. The
    calling process runs ``meanwhile`` while the workers open the book."""
    w = workers or default_workers()
    shared = {"envelopes": envelopes, "ctx": ctx, "requests": requests}
    parts = _map_chunks(
        _validate_range, len(envelopes), w, shared, min_parallel, meanwhile=meanwhile
    )
    valid: list[ValidBid] = []
    excluded: list[Exclusion] = []
    for part in parts:
        for row in part:
            if len(row) == 4:
                valid.append(ValidBid(*row))
            else:
                excluded.append(Exclusion(row[0], row[1], row[2], ExclusionReason(row[3]), row[4]))
    return valid, excluded


__all__ = [
    "default_workers",
    "leaf_hashes",
    "map_ranges",
    "shared_input",
    "validate_book_parallel",
]
