"""Contract ABIs and bytecode built by ``scripts/build-contracts`` (committed JSON).

The committed ``contracts/artifacts/*.json`` are the one source. In a source tree (tests,
CI, an editable install) they are read where they are; an installed wheel carries the same
files as the package data of ``qev_artifacts`` (pyproject.toml maps that package to
``contracts/artifacts``), found through the import system, never through a fixed path.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

import orjson

PACKAGE = "qev_artifacts"
SOURCE = Path(__file__).resolve().parents[1] / "contracts" / "artifacts"


def _locate() -> Path:
    """The source tree's artifacts beside this package, else the installed package data."""
    if SOURCE.is_dir():
        return SOURCE
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    return SOURCE  # missing: `artifact` names this path in its error


ARTIFACTS = _locate()


def names() -> list[str]:
    """The contract names there are artifacts for."""
    return sorted(p.stem for p in ARTIFACTS.glob("*.json"))


@cache
def artifact(name: str) -> dict[str, Any]:
    """``{contractName, abi, bytecode, deployedBytecode}`` of a contract."""
    path = ARTIFACTS / f"{name}.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"contract artifact {path} not found: neither contracts/artifacts in a source "
            f"tree nor the installed package {PACKAGE} has it"
        ) from None
    data: dict[str, Any] = orjson.loads(raw)
    return data


__all__ = ["ARTIFACTS", "PACKAGE", "SOURCE", "artifact", "names"]
