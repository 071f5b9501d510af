"""Keyper fixtures: the committee world on py-evm (built once), a fresh service per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import Net, World, build_world, start_net


@pytest.fixture(scope="session")
def world() -> World:
    return build_world()


@pytest.fixture
def net(world: World, tmp_path: Path) -> Iterator[Net]:
    """The world rewound to just before the DKG opens, a fresh store and service."""
    world.tester.revert_to_snapshot(world.snapshot)
    n = start_net(world, tmp_path)
    try:
        yield n
    finally:
        n.close()
