"""``keeper.background.Background``: the value or the exception of one call, its thread
ended once ``result()`` returns."""

from __future__ import annotations

import threading

import pytest

from keeper.background import Background


def test_result_is_the_value_and_the_thread_has_ended() -> None:
    started = threading.Event()
    release = threading.Event()

    def work() -> int:
        started.set()
        release.wait(5)
        return 42

    job = Background(work, "test-background")
    assert started.wait(5)
    assert any(t.name == "test-background" for t in threading.enumerate())  # running beside
    release.set()
    assert job.result() == 42
    assert job.result() == 42  # taken again: the same value
    assert not any(t.name == "test-background" for t in threading.enumerate())


def test_the_calls_exception_is_raised_by_result() -> None:
    def fail() -> int:
        raise ValueError("no block at or after T yet")

    job = Background(fail, "test-background-fail")
    with pytest.raises(ValueError, match="no block at or after T"):
        job.result()
