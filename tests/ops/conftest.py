"""Operator-facing tests: settings, key files, the command line's errors, deploy, the guide."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.keeper_tx.conftest import Anvil, anvil  # noqa: F401 - the shared anvil fixture

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``QEV_*`` variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("QEV_"):
            monkeypatch.delenv(name)
    yield


def run_qev(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``qev ARGS`` in a subprocess with only ``env``'s QEV_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("QEV_")}
    return subprocess.run(
        [sys.executable, "-m", "qev", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


__all__ = ["ROOT", "Anvil", "run_qev"]
