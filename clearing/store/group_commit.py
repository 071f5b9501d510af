"""Group commit: many concurrent asyncio submitters, one ``apply`` (one fsync) per batch.

Submitters queue their operations for a single worker thread. The worker takes what is
queued (up to ``max_batch``); when the previous batch showed concurrency it first lingers,
in short sleeps, while more keeps arriving (at most ``max_wait``; a lone submitter is never
kept waiting, and sleeping instead of waiting on the queue means submitters never wake it
one by one). It applies the batch with one ``store.apply`` call, runs each submitter's ``finish``
on its result (work such as signing a receipt, done here rather than on the event loop:
native code there runs while the loop goes on) and only then resolves the submitters'
futures, with one wake-up per event loop. While one batch commits the next one
fills up, so throughput grows with concurrency while every acknowledged operation is
durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from clearing.store._common import check_operation
from clearing.store.base import (
    BidStore,
    Operation,
    Result,
    StoreError,
    StoreUnavailableError,
)

T = TypeVar("T")


@dataclass(slots=True)
class _Pending:
    op: Operation
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    finish: Callable[[Result], Any] | None


_STOP = object()
_Delivery = tuple[asyncio.Future[Any], Any]


def _deliver(deliveries: list[_Delivery]) -> None:
    for future, outcome in deliveries:
        if future.done():  # the submitter was cancelled; the operation may still have committed
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _finished(pending: _Pending, result: Any) -> Any:
    """What the submitter gets: the refusal or failure, the result, or ``finish(result)``."""
    if pending.finish is None or isinstance(result, BaseException):
        return result
    try:
        return pending.finish(result)
    except Exception as exc:  # the write is committed; the submitter learns finish failed
        return exc


def _copy_error(exc: Exception) -> Exception:
    """One exception object per waiting task (tracebacks are per raise)."""
    if isinstance(exc, StoreError):
        copy = type(exc)(str(exc))
        copy.__cause__ = exc
        return copy
    return exc


class GroupCommitter:
    """An asyncio front for a ``BidStore`` that batches concurrent writes."""

    def __init__(
        self,
        store: BidStore,
        max_batch: int = 256,
        max_wait: float = 0.001,
        quiet: float = 0.0005,
        cooldown: float = 1.0,
    ) -> None:
        """Wrap ``store``; call ``start()`` before ``submit``.

        A batch lingers at most ``max_wait`` seconds for more operations, and stops
        lingering after ``quiet`` seconds that bring none. After a batch fails with
        ``StoreUnavailableError``, submissions fail at once for ``cooldown`` seconds; then
        one batch probes the store (others keep failing at once while it runs).
        """
        if max_batch < 1 or max_wait < 0 or quiet <= 0:
            raise ValueError("max_batch must be >= 1, max_wait >= 0 and quiet > 0")
        self._store = store
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._quiet = quiet
        self._cooldown = cooldown
        self._down = False  # the last batch found the store unavailable
        self._probe_at = 0.0  # monotonic time from which one submission may probe it
        self._probing = False  # a probe is queued or being applied
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._state_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self.batches = 0  # apply() calls made, for metrics and tests
        self.operations = 0  # operations applied

    def start(self) -> None:
        """Start the worker thread."""
        with self._state_lock:
            if self._thread is not None:
                raise RuntimeError("GroupCommitter already started")
            self._thread = threading.Thread(target=self._run, name="qev-group-commit", daemon=True)
            self._accepting = True
            self._thread.start()

    def stop(self) -> None:
        """Refuse new submissions, commit everything already queued, join the worker.

        Blocks the calling thread until the queue is drained; from a coroutine use
        ``await asyncio.to_thread(committer.stop)``.
        """
        with self._state_lock:
            thread, self._accepting = self._thread, False
            if thread is None:
                return
            self._queue.put(_STOP)
        thread.join()
        with self._state_lock:
            self._thread = None

    @property
    def store_down(self) -> bool:
        """True while the last batch found the store unavailable and no probe is due yet."""
        return self._down and time.monotonic() < self._probe_at

    def store_answered(self) -> None:
        """Another check (a readiness ping) reached the store: stop failing at once."""
        self._down = False

    @overload
    async def submit(self, op: Operation) -> Result: ...

    @overload
    async def submit(self, op: Operation, finish: Callable[[Result], T]) -> T: ...

    async def submit(self, op: Operation, finish: Callable[[Result], Any] | None = None) -> Any:
        """Queue ``op`` and return its result once its batch is committed.

        With ``finish``, return ``finish(result)`` instead, computed on the worker thread
        after the commit (an exception it raises is raised here).

        Raises the operation's ``StoreError`` (``NoLiveBidError``, ``StaleCancelError``,
        ``StaleEnvelopeError``, ``AuctionFrozenError``) if the store refused it,
        ``StoreUnavailableError`` if the batch failed (nothing of it was committed) or the
        store was found unavailable moments ago, ``ValueError`` for an operation no store
        can hold.
        """
        check_operation(op)
        if self._down:
            if self._probing or time.monotonic() < self._probe_at:
                raise StoreUnavailableError("the store is unavailable; retry shortly")
            self._probing = True  # this one probes, the others keep failing fast
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._state_lock:  # never queued behind the stop marker
            if not self._accepting:
                raise StoreUnavailableError("the group committer is not running")
            self._queue.put(_Pending(op, future, loop, finish))
        return await future

    # -- worker ------------------------------------------------------------------------

    def _collect(self, first: _Pending, linger: bool) -> tuple[list[_Pending], bool]:
        if linger:
            # Sleep in short steps rather than wait on the queue (submitters then never wake
            # this thread one by one: each wake-up costs both threads a GIL hand-over), and
            # stop as soon as a step brings nothing new: the burst has been collected.
            deadline = time.monotonic() + self._max_wait
            queued = self._queue.qsize()
            while queued < self._max_batch - 1 and time.monotonic() < deadline:
                time.sleep(self._quiet)
                before, queued = queued, self._queue.qsize()
                if queued == before:
                    break
        batch = [first]
        return batch, self._drain(batch)

    def _drain(self, batch: list[_Pending]) -> bool:
        """Move queued operations into ``batch`` (up to ``max_batch``); True at the stop mark."""
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            assert isinstance(item, _Pending)
            batch.append(item)
        return False

    def _run(self) -> None:
        last_size = 0
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            assert isinstance(item, _Pending)
            batch, stop = self._collect(item, linger=last_size > 1)
            try:
                with self._store.writer_turn():
                    # while another writer process held the database, more arrived
                    if not stop:
                        stop = self._drain(batch)
                    last_size = len(batch)
                    applied = self._apply(batch)
            except Exception as exc:  # the turn itself failed (closed store...)
                self._fail(batch, exc)
            else:  # receipts are signed after the writer turn: other writers go on meanwhile
                self._finish(applied)
            if stop:
                break
        # Drain anything queued before the stop marker was seen.
        leftovers: list[_Pending] = []
        with contextlib.suppress(queue.Empty):
            while True:
                item = self._queue.get_nowait()
                if isinstance(item, _Pending):
                    leftovers.append(item)
        self._finish(self._apply(leftovers))

    def _apply(self, batch: Sequence[_Pending]) -> list[tuple[Sequence[_Pending], list[Any]]]:
        """Apply ``batch`` in transactions of at most ``max_batch``: each chunk's outcomes."""
        return [
            (chunk, self._apply_one(chunk))
            for chunk in (
                batch[start : start + self._max_batch]
                for start in range(0, len(batch), self._max_batch)
            )
        ]

    def _finish(self, applied: list[tuple[Sequence[_Pending], list[Any]]]) -> None:
        """Run the submitters' ``finish`` on their results and resolve every future."""
        for chunk, outcomes in applied:
            self._resolve(chunk, [_finished(p, o) for p, o in zip(chunk, outcomes, strict=True)])

    def _fail(self, batch: Sequence[_Pending], exc: Exception) -> None:
        """Give every submitter of ``batch`` the failure."""
        self._record(exc)
        self._resolve(batch, [_copy_error(exc) for _ in batch])

    def _record(self, exc: Exception | None) -> None:
        """Breaker state after a batch: up on success, down (until a probe) if unavailable."""
        if exc is None:
            self._down = False
        elif isinstance(exc, StoreUnavailableError):
            self._probe_at = time.monotonic() + self._cooldown
            self._down = True
        self._probing = False

    def _apply_one(self, batch: Sequence[_Pending]) -> list[Any]:
        """One ``store.apply``: a result or refusal per operation, or the batch's failure."""
        outcomes: list[Any]
        try:
            outcomes = self._store.apply([p.op for p in batch])
            if len(outcomes) != len(batch):
                raise StoreUnavailableError("store returned a wrong number of results")
            self._record(None)
        except Exception as exc:  # every submitter of a failed batch gets the failure
            self._record(exc)
            outcomes = [_copy_error(exc) for _ in batch]
        self.batches += 1
        self.operations += len(batch)
        return outcomes

    @staticmethod
    def _resolve(batch: Sequence[_Pending], outcomes: Sequence[Any]) -> None:
        # one wake-up per event loop per batch, not one per operation
        by_loop: dict[asyncio.AbstractEventLoop, list[_Delivery]] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
        for loop, deliveries in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the submitter's loop is closed
                loop.call_soon_threadsafe(_deliver, deliveries)
