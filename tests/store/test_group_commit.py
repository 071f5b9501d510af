"""GroupCommitter: batching, per-operation refusals, failures, draining on stop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from clearing.store.base import (
    BidStore,
    NoLiveBidError,
    Operation,
    PutOutcome,
    PutResult,
    Result,
    StoreError,
    StoreUnavailableError,
)
from clearing.store.group_commit import GroupCommitter
from tests.store.conftest import cancel_op, put_op

A = 1_767_225_600


class CountingStore:
    """Wraps a store, counting ``apply`` calls and optionally failing them."""

    def __init__(self, inner: BidStore) -> None:
        self.inner = inner
        self.applies: list[int] = []
        self.fail = False
        self.on_apply: threading.Event | None = None

        self.in_turn = False

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        with self.inner.writer_turn():
            self.in_turn = True
            try:
                yield
            finally:
                self.in_turn = False

    def apply(self, ops: Sequence[Operation]) -> list[Result | StoreError]:
        self.applies.append(len(ops))
        if self.on_apply is not None:
            self.on_apply.wait(10)
        if self.fail:
            raise StoreUnavailableError("disk on fire")
        return self.inner.apply(ops)


def committer_for(store: CountingStore, **kwargs: float) -> GroupCommitter:
    committer = GroupCommitter(store, **kwargs)  # type: ignore[arg-type]
    committer.start()
    return committer


def test_concurrent_submits_are_batched(store: BidStore) -> None:
    counting = CountingStore(store)
    committer = committer_for(counting)

    async def main() -> list[Result]:
        return await asyncio.gather(
            *(committer.submit(put_op(A, rid, f"b{rid}")) for rid in range(2_000))
        )

    try:
        results = asyncio.run(main())
    finally:
        committer.stop()
    assert all(isinstance(r, PutResult) and r.outcome is PutOutcome.CREATED for r in results)
    assert sorted(r.bid.sequence for r in results) == list(range(1, 2_001))
    assert [r.bid.redemption_id for r in results] == list(range(2_000))  # each got its own
    assert sum(counting.applies) == 2_000
    assert len(counting.applies) <= 2_000 // 20, counting.applies  # far fewer commits than ops
    assert max(counting.applies) <= 256
    assert committer.batches == len(counting.applies) and committer.operations == 2_000
    assert len(store.live_bids(A)) == 2_000


def test_refusals_raise_for_their_submitter_only(store: BidStore) -> None:
    committer = committer_for(CountingStore(store), max_wait=0.05)

    async def main() -> tuple[Result | BaseException, ...]:
        return await asyncio.gather(
            committer.submit(put_op(A, 1, "a")),
            committer.submit(cancel_op(A, 2, b"\x00" * 32)),
            committer.submit(put_op(A, 3, "c")),
            return_exceptions=True,
        )

    try:
        first, refused, third = asyncio.run(main())
    finally:
        committer.stop()
    assert isinstance(first, PutResult) and isinstance(third, PutResult)
    assert isinstance(refused, NoLiveBidError)
    with pytest.raises(ValueError):
        asyncio.run(GroupCommitter(store).submit(put_op(A, 2**256, "too big")))


def test_finish_runs_on_the_worker_after_the_writer_turn(store: BidStore) -> None:
    counting = CountingStore(store)
    committer = committer_for(counting, max_wait=0.05)
    calls: list[tuple[str, bool, int]] = []

    def finish(result: Result) -> tuple[int, int]:
        calls.append((threading.current_thread().name, counting.in_turn, result.bid.sequence))
        if result.bid.redemption_id == 2:
            raise RuntimeError("signer broke")
        return result.bid.redemption_id, result.bid.sequence

    async def main() -> list[object]:
        return await asyncio.gather(
            committer.submit(put_op(A, 1, "a"), finish),
            committer.submit(put_op(A, 2, "b"), finish),
            committer.submit(cancel_op(A, 9, b"\x00" * 32), finish),  # refused: no finish
            committer.submit(put_op(A, 3, "c")),  # no finish: the result itself
            return_exceptions=True,
        )

    try:
        first, broken, refused, plain = asyncio.run(main())
    finally:
        committer.stop()
    assert first == (1, 1)
    assert isinstance(broken, RuntimeError) and str(broken) == "signer broke"
    assert isinstance(refused, NoLiveBidError)
    assert isinstance(plain, PutResult) and plain.bid.sequence == 3
    assert sorted(c[2] for c in calls) == [1, 2]
    assert all(name == "qev-group-commit" and not in_turn for name, in_turn, _ in calls)
    # the write whose finish failed is committed all the same
    assert [b.redemption_id for b in store.live_bids(A)] == [1, 2, 3]


def test_failed_batch_fails_every_submitter(store: BidStore) -> None:
    counting = CountingStore(store)
    counting.fail = True
    committer = committer_for(counting)

    async def main() -> list[Result | BaseException]:
        return await asyncio.gather(
            *(committer.submit(put_op(A, rid, "x")) for rid in range(50)),
            return_exceptions=True,
        )

    try:
        outcomes = asyncio.run(main())
    finally:
        committer.stop()
    assert all(isinstance(o, StoreUnavailableError) for o in outcomes)
    assert len({id(o) for o in outcomes}) == 50  # one exception object per submitter
    assert store.live_bids(A) == []


def test_stop_drains_and_then_refuses(store: BidStore) -> None:
    counting = CountingStore(store)
    counting.on_apply = threading.Event()  # hold the first batch until stop() is called
    committer = committer_for(counting, max_batch=8)

    async def main() -> list[Result]:
        tasks = [asyncio.create_task(committer.submit(put_op(A, r, "x"))) for r in range(100)]
        await asyncio.sleep(0.05)  # all queued, the first batch is blocked in apply()
        stopper = asyncio.create_task(asyncio.to_thread(committer.stop))
        await asyncio.sleep(0.05)
        counting.on_apply.set()  # type: ignore[union-attr]
        await stopper
        with pytest.raises(StoreUnavailableError):
            await committer.submit(put_op(A, 999, "late"))
        return await asyncio.gather(*tasks)

    results = asyncio.run(main())
    assert len(results) == 100 and len(store.live_bids(A)) == 100
    assert max(counting.applies) <= 8


def test_linger_ends_when_a_quiet_step_brings_nothing(store: BidStore) -> None:
    import time

    counting = CountingStore(store)
    committer = committer_for(counting, max_wait=5.0, quiet=0.01)

    async def main() -> float:
        await asyncio.gather(*(committer.submit(put_op(A, r, "x")) for r in range(50)))
        started = time.perf_counter()  # the last batch had 50: the next one lingers...
        await committer.submit(put_op(A, 1_000, "alone"))
        return time.perf_counter() - started  # ...but only one quiet step, not max_wait

    try:
        elapsed = asyncio.run(main())
    finally:
        committer.stop()
    assert elapsed < 1.0, elapsed
    assert counting.applies[-1] == 1 and sum(counting.applies) == 51


def test_outage_fails_fast_then_one_probe_recovers(store: BidStore) -> None:
    import time

    counting = CountingStore(store)
    counting.fail = True
    committer = committer_for(counting, cooldown=0.2)

    async def main() -> None:
        first = await asyncio.gather(
            *(committer.submit(put_op(A, r, "x")) for r in range(5)), return_exceptions=True
        )
        assert all(isinstance(e, StoreUnavailableError) for e in first)
        assert committer.store_down
        applies = len(counting.applies)
        started = time.perf_counter()
        for r in range(20):  # during the cooldown: refused at once, the store is not touched
            with pytest.raises(StoreUnavailableError):
                await committer.submit(put_op(A, 100 + r, "y"))
        assert time.perf_counter() - started < 0.1
        assert len(counting.applies) == applies
        await asyncio.sleep(0.25)
        counting.fail = False  # the store is back: the next submission probes and succeeds
        probe = await committer.submit(put_op(A, 500, "probe"))
        assert isinstance(probe, PutResult) and not committer.store_down
        assert isinstance(await committer.submit(put_op(A, 501, "after")), PutResult)

    try:
        asyncio.run(main())
    finally:
        committer.stop()
    assert [b.redemption_id for b in store.live_bids(A)] == [500, 501]
