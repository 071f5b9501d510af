"""Build and run the JavaScript SDK's cross-language driver (tests/node/qev_sdk_driver.ts)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
DRIVER = Path(__file__).with_name("qev_sdk_driver.ts")


def node() -> str:
    """The node executable; Node and `npm ci` are required for these tests."""
    path = shutil.which("node")
    hpke = ROOT / "node_modules" / "@hpke" / "core" / "package.json"
    if path is None or not ESBUILD.exists() or not hpke.exists():
        pytest.fail("Node and `npm ci` are required for the JavaScript SDK tests (see README)")
    return path


def bundle(entry: Path, out: Path) -> Path:
    """esbuild ``entry`` (TypeScript, importing js/sdk) into one Node ESM file ``out``."""
    node()
    proc = subprocess.run(
        [
            str(ESBUILD),
            str(entry),
            "--bundle",
            "--platform=node",
            "--format=esm",
            "--target=node20",
            "--log-level=warning",
            f"--outfile={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out


class SdkDriver:
    """Runs batches of operations through the bundled driver (one node process per batch)."""

    def __init__(self, script: Path) -> None:
        self.script = script

    def run(self, ops: list[dict[str, Any]]) -> list[Any]:
        proc = subprocess.run(
            [node(), str(self.script)],
            input=json.dumps(ops),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert len(out) == len(ops)
        return list(out)


@pytest.fixture(scope="session")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> SdkDriver:
    out = tmp_path_factory.mktemp("sdk") / "qev_sdk_driver.mjs"
    return SdkDriver(bundle(DRIVER, out))
