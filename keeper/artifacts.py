"""Contract ABIs and bytecode built by ``scripts/build-contracts`` (committed JSON)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

ARTIFACTS = Path(__file__).resolve().parents[1] / "contracts" / "artifacts"


@cache
def artifact(name: str) -> dict[str, Any]:
    """``{contractName, abi, bytecode, deployedBytecode}`` of a contract."""
    data: dict[str, Any] = orjson.loads((ARTIFACTS / f"{name}.json").read_bytes())
    return data


__all__ = ["ARTIFACTS", "artifact"]
