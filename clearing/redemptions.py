"""The ``RedemptionReader`` port: who controls a redemption request, read from the chain."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from clearing.errors import RateLimitedError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RedemptionInfo:
    """What intake needs to know about a redemption request."""

    redemption_id: int
    controller: bytes
    pending_shares: int
    redemption_timestamp: int


class RedemptionReader(Protocol):
    """Reads redemption requests (the web3 implementation lives with the keeper's adapter).

    ``blocking`` says whether a read does I/O (the service then reads in a worker thread).
    """

    blocking: bool

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """The request, or None if it does not exist."""


class InMemoryRedemptions:
    """A ``RedemptionReader`` over a dict (unit tests, the example, load tests)."""

    blocking = False

    def __init__(self, requests: Mapping[int, RedemptionInfo] | None = None) -> None:
        self._requests = dict(requests or {})

    def add(self, info: RedemptionInfo) -> None:
        """Add or replace a request."""
        self._requests[info.redemption_id] = info

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """The request, or None."""
        return self._requests.get(redemption_id)


class PagedRedemptionReader(RedemptionReader, Protocol):
    """A reader that can also read many requests in one go (one batched chain read)."""

    def redemptions(self, redemption_ids: Sequence[int]) -> Mapping[int, RedemptionInfo | None]:
        """Each request (None where there is none)."""


class CachedRedemptions:
    """A ``RedemptionReader`` that remembers answers for ``ttl`` seconds (bounded LRU).

    A request's controller does not change, so intake need not read the chain for every
    bid of the same request; a missing request is remembered for ``negative_ttl`` only (it
    may be created any moment). ``clock`` is monotonic seconds, passed in.

    With ``page`` > 1 and a reader that has ``redemptions``, a miss reads the whole aligned
    page of ids around it in one batched read (request ids are a counter, so a month's bids
    fall on few pages), and concurrent misses on one page wait for that one read. A hit in the
    second half of a page reads the next page ahead on a thread of its own, so bids that
    arrive in id order rarely wait for a read (only hits read ahead: a miss never does, so
    look-ups of ids nobody asked for cost no more reads than before).
    """

    def __init__(
        self,
        reader: RedemptionReader,
        *,
        ttl: float,
        clock: Callable[[], float],
        negative_ttl: float = 2.0,
        max_entries: int = 1_000_000,
        page: int = 1,
        page_wait: float = 30.0,
    ) -> None:
        self.blocking = reader.blocking
        self._reader, self._ttl, self._negative_ttl = reader, ttl, negative_ttl
        self._clock, self._max = clock, max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[float, RedemptionInfo | None]] = OrderedDict()
        many = getattr(reader, "redemptions", None)
        self._many: Callable[[Sequence[int]], Mapping[int, RedemptionInfo | None]] | None = (
            many if page > 1 else None
        )
        self._page, self._page_wait = page, page_wait
        self._loading: dict[int, threading.Event] = {}
        self._ahead: ThreadPoolExecutor | None = None
        self.page_reads = 0  # batched reads made (for tests and metrics)

    def cached(self, redemption_id: int) -> tuple[bool, RedemptionInfo | None]:
        """``(True, answer)`` while a fresh answer is remembered, else ``(False, None)``;
        never reads (intake asks this on the event loop before deciding to read)."""
        now = self._clock()
        with self._lock:
            hit = self._entries.get(redemption_id)
            if hit is None or hit[0] <= now:
                return False, None
            self._entries.move_to_end(redemption_id)
            if self._many is not None and redemption_id % self._page >= self._page // 2:
                self._read_ahead(redemption_id - redemption_id % self._page + self._page, now)
            return True, hit[1]

    def _read_ahead(self, start: int, now: float) -> None:
        """Read page ``start`` on the read-ahead thread unless it is loading or fresh (held
        lock)."""
        ahead = self._entries.get(start)
        if start in self._loading or (ahead is not None and ahead[0] > now):
            return
        self._loading[start] = threading.Event()
        if self._ahead is None:
            self._ahead = ThreadPoolExecutor(1, thread_name_prefix="qev-read-ahead")
        self._ahead.submit(self._load_quietly, start)

    def _load_quietly(self, start: int) -> None:
        with contextlib.suppress(Exception):  # a miss on that page reads it again
            self._load(start)

    def _load(self, start: int, asked: int | None = None) -> Mapping[int, RedemptionInfo | None]:
        """Read page ``start`` (its loading event is set) and remember the requests found,
        and the answer for ``asked`` even if missing: only an id somebody asked for is
        remembered as missing (a request made a moment later must not be refused for the
        ``negative_ttl`` because its page was read for a neighbour)."""
        try:
            assert self._many is not None
            now = self._clock()
            infos = self._many(range(start, start + self._page))
            self.page_reads += 1
            found: dict[int, RedemptionInfo | None] = {
                rid: info for rid, info in infos.items() if info is not None
            }
            if asked is not None:
                found[asked] = infos.get(asked)
            self._remember(now, found)
            return infos
        finally:
            with self._lock:
                self._loading.pop(start).set()

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        """The request, from the cache while fresh, else from the reader (a page at a time
        when paging)."""
        hit, cached = self.cached(redemption_id)
        if hit:
            return cached
        if self._many is None:
            return self._read_one(redemption_id)
        start = redemption_id - redemption_id % self._page
        with self._lock:
            loading = self._loading.get(start)
            if loading is None:
                self._loading[start] = threading.Event()
        if loading is not None:  # another thread reads this page: wait for it
            loading.wait(self._page_wait)
            hit, cached = self.cached(redemption_id)
            return cached if hit else self._read_one(redemption_id)
        return self._load(start, redemption_id).get(redemption_id)

    def close(self) -> None:
        """Stop the read-ahead thread (a read in progress finishes on its own)."""
        if self._ahead is not None:
            self._ahead.shutdown(wait=False, cancel_futures=True)

    def _read_one(self, redemption_id: int) -> RedemptionInfo | None:
        now = self._clock()
        info = self._reader.redemption(redemption_id)
        self._remember(now, {redemption_id: info})
        return info

    def _remember(self, now: float, infos: Mapping[int, RedemptionInfo | None]) -> None:
        with self._lock:
            for rid, info in infos.items():
                expires = now + (self._ttl if info is not None else self._negative_ttl)
                self._entries[rid] = (expires, info)
                self._entries.move_to_end(rid)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


class _Slots:
    """One client's share of ``ChainReads``: a semaphore and who holds or waits for it."""

    __slots__ = ("semaphore", "users")

    def __init__(self, per_client: int) -> None:
        self.semaphore = asyncio.Semaphore(per_client)
        self.users = 0  # calls waiting or running, plus reads still running after a timeout


class ChainReads:
    """Blocking chain reads on a bounded thread pool of their own, shared fairly by clients.

    Each client address may have ``per_client`` reads running; its further reads wait (up
    to their timeout) for one of its own to finish, and past ``per_client + max_waiting``
    it is refused ``rate_limited`` at once. So a client's slow or junk look-ups never hold
    more than ``per_client`` of the ``threads`` and never queue ahead of another client's
    read while a thread is free; nothing else (FastAPI's sync routes, the default executor)
    shares this pool. A read that outlives its timeout keeps its slot until its thread
    returns (the reader's own RPC timeout bounds that), so timeouts cannot be used to run
    more than ``per_client`` reads at once. Used from one event loop.
    """

    def __init__(self, threads: int = 16, per_client: int = 4, max_waiting: int = 64) -> None:
        self._threads, self._per_client, self._max_waiting = threads, per_client, max_waiting
        self._pool: ThreadPoolExecutor | None = None
        self._clients: dict[str, _Slots] = {}

    def in_use(self, client: str) -> int:
        """Reads of ``client`` running or waiting (0 once all have finished)."""
        slots = self._clients.get(client)
        return 0 if slots is None else slots.users

    async def run(self, client: str, timeout: float, read: Callable[[], T]) -> T:
        """``read()`` on the pool within ``timeout`` seconds (``TimeoutError`` beyond)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        slots = self._clients.get(client)
        if slots is None:
            slots = self._clients[client] = _Slots(self._per_client)
        if slots.users >= self._per_client + self._max_waiting:
            raise RateLimitedError("too many chain look-ups in flight for this client")
        slots.users += 1
        try:
            await asyncio.wait_for(slots.semaphore.acquire(), max(0.0, deadline - loop.time()))
        except BaseException:
            self._leave(client, slots)
            raise
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="qev-chain-read")
        try:
            future: Future[T] = self._pool.submit(read)
        except BaseException:
            slots.semaphore.release()
            self._leave(client, slots)
            raise

        def release() -> None:
            slots.semaphore.release()
            self._leave(client, slots)

        def done(_: Future[T]) -> None:  # on the read's thread (or the loop's, if cancelled)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(release)

        # The slot is given back when the read returns, not when its caller stops waiting;
        # a read still queued when its caller gives up is cancelled and never runs.
        future.add_done_callback(done)
        return await asyncio.wait_for(asyncio.wrap_future(future), max(0.0, deadline - loop.time()))

    def _leave(self, client: str, slots: _Slots) -> None:
        slots.users -= 1
        if slots.users == 0 and self._clients.get(client) is slots:
            del self._clients[client]

    def close(self) -> None:
        """Stop the pool (reads not started are dropped; running ones finish on their own)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = [
    "CachedRedemptions",
    "ChainReads",
    "InMemoryRedemptions",
    "PagedRedemptionReader",
    "RedemptionInfo",
    "RedemptionReader",
]
