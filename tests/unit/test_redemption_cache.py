"""The intake's controller cache: paged misses, single flight per page, expiry, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

import pytest

from clearing.redemptions import CachedRedemptions, RedemptionInfo


def _info(rid: int) -> RedemptionInfo:
    return RedemptionInfo(rid, rid.to_bytes(20, "big"), rid * 10**18, 1_800_000_000)


class Vault:
    """Requests 1..count exist (an in-memory vault); counts what is read and how."""

    blocking = True

    def __init__(self, count: int) -> None:
        self.count = count
        self.single: list[int] = []
        self.pages: list[tuple[int, int]] = []
        self.gate: threading.Event | None = None
        self.fail = False

    def redemption(self, redemption_id: int) -> RedemptionInfo | None:
        self.single.append(redemption_id)
        return _info(redemption_id) if 1 <= redemption_id <= self.count else None

    def redemptions(self, ids: Sequence[int]) -> Mapping[int, RedemptionInfo | None]:
        if self.gate is not None:
            assert self.gate.wait(10)
        if self.fail:
            raise OSError("node down")
        self.pages.append((ids[0], ids[-1]))
        return {rid: _info(rid) if 1 <= rid <= self.count else None for rid in ids}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_miss_reads_its_whole_page_once() -> None:
    vault, clock = Vault(550), Clock()
    cache = CachedRedemptions(vault, ttl=300, clock=clock, negative_ttl=2, page=255)
    assert cache.redemption(300) == _info(300)
    assert vault.pages == [(255, 509)]
    for rid in (255, 300, 381):  # the first half of the page: no read-ahead
        assert cache.cached(rid) == (True, _info(rid))
        assert cache.redemption(rid) == _info(rid)
    assert vault.pages == [(255, 509)] and vault.single == []
    assert cache.redemption(510) == _info(510)
    assert vault.pages == [(255, 509), (510, 764)]
    assert cache.redemption(600) is None  # past the counter: not remembered from the page
    assert vault.pages == [(255, 509), (510, 764), (510, 764)] and cache.page_reads == 3
    assert cache.cached(600) == (True, None)  # the id asked for is remembered as missing
    assert cache.cached(601) == (False, None)  # its neighbours are not


def test_a_request_made_after_its_page_was_read_is_found() -> None:
    vault, clock = Vault(300), Clock()
    cache = CachedRedemptions(vault, ttl=300, clock=clock, negative_ttl=2, page=255)
    assert cache.redemption(299) == _info(299)  # reads 255..509: 301 does not exist yet
    vault.count = 301  # a holder makes a request and bids at once
    assert cache.redemption(301) == _info(301)


def _wait_for(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_hit_in_the_second_half_reads_the_next_page_ahead() -> None:
    vault, clock = Vault(2_000), Clock()
    cache = CachedRedemptions(vault, ttl=300, clock=clock, page=255)
    assert cache.redemption(200) == _info(200)  # a miss: never reads ahead
    time.sleep(0.05)
    assert vault.pages == [(0, 254)]
    assert cache.cached(100) == (True, _info(100))  # a hit in the first half: nothing
    time.sleep(0.05)
    assert vault.pages == [(0, 254)]
    assert cache.cached(200) == (True, _info(200))  # the second half: the next page ahead
    _wait_for(lambda: len(vault.pages) == 2 and 255 not in cache._loading)
    assert vault.pages == [(0, 254), (255, 509)]
    assert cache.cached(255) == (True, _info(255))  # bids in id order find it there
    for rid in range(201, 255):  # more hits: the page ahead is loaded once
        cache.cached(rid)
    time.sleep(0.05)
    assert vault.pages == [(0, 254), (255, 509)] and vault.single == []
    cache.close()


def test_a_failed_read_ahead_leaves_the_page_to_the_next_miss() -> None:
    vault, clock = Vault(2_000), Clock()
    cache = CachedRedemptions(vault, ttl=300, clock=clock, page=255)
    cache.redemption(10)
    vault.fail = True
    cache.cached(200)
    _wait_for(lambda: 255 not in cache._loading)
    assert cache.cached(300) == (False, None)
    vault.fail = False
    assert cache.redemption(300) == _info(300) and vault.pages == [(0, 254), (255, 509)]
    cache.close()


def test_missing_requests_expire_quickly_and_known_ones_after_the_ttl() -> None:
    vault, clock = Vault(600), Clock()
    cache = CachedRedemptions(vault, ttl=300, clock=clock, negative_ttl=2, page=255)
    assert cache.redemption(700) is None and cache.redemption(300) is not None
    vault.count = 800  # request 700 is created
    clock.now += 3
    assert cache.cached(700) == (False, None)  # the negative answer expired
    assert cache.cached(300) == (True, _info(300))
    assert cache.redemption(700) == _info(700)
    clock.now += 300
    assert cache.cached(300) == (False, None)


def test_concurrent_misses_on_one_page_share_one_read() -> None:
    vault, clock = Vault(600), Clock()
    vault.gate = threading.Event()
    cache = CachedRedemptions(vault, ttl=300, clock=clock, page=255)
    results: dict[int, RedemptionInfo | None] = {}

    def ask(rid: int) -> None:
        results[rid] = cache.redemption(rid)

    threads = [threading.Thread(target=ask, args=(rid,)) for rid in range(260, 280)]
    for t in threads:
        t.start()
    vault.gate.set()
    for t in threads:
        t.join(10)
    assert results == {rid: _info(rid) for rid in range(260, 280)}
    assert vault.pages == [(255, 509)] and vault.single == []


def test_a_failed_page_read_raises_and_the_next_miss_reads_again() -> None:
    vault, clock = Vault(600), Clock()
    cache = CachedRedemptions(vault, ttl=300, clock=clock, page=255)
    vault.fail = True
    with pytest.raises(OSError, match="node down"):
        cache.redemption(3)
    assert cache.cached(3) == (False, None)
    vault.fail = False
    assert cache.redemption(3) == _info(3) and vault.pages == [(0, 254)]


def test_without_paging_each_miss_reads_one_request() -> None:
    vault, clock = Vault(600), Clock()
    cache = CachedRedemptions(vault, ttl=300, clock=clock)
    assert cache.redemption(5) == _info(5) and cache.redemption(6) == _info(6)
    assert cache.redemption(5) == _info(5)
    assert vault.single == [5, 6] and vault.pages == []


def test_the_cache_stays_bounded() -> None:
    vault, clock = Vault(10_000), Clock()
    cache = CachedRedemptions(vault, ttl=300, clock=clock, page=100, max_entries=250)
    for rid in range(0, 1_000, 100):
        cache.redemption(rid)
    assert cache.cached(950) == (True, _info(950))
    assert cache.cached(5) == (False, None)  # the oldest pages were dropped
