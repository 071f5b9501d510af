"""``gc_paused``: the collector is off inside, restored as it was on exit, errors included."""

from __future__ import annotations

import gc

import pytest

from clearing.gcpause import gc_paused


def test_paused_inside_and_restored_after_even_on_error() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: still off, and the outer pause keeps it off after
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_spaced_out_collections_freeze_what_exists_and_raise_the_threshold() -> None:
    from clearing.gcpause import space_out_collections

    before = gc.get_threshold()
    try:
        space_out_collections(0)  # 0: untouched
        assert gc.get_threshold() == before
        space_out_collections(50_000)
        assert gc.get_threshold() == (50_000, 10, 10)
        assert gc.get_freeze_count() > 0  # the objects that existed are kept out
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
