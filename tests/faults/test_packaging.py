"""The wheel: every package, and the contract artifacts as package data that load installed.

contracts/artifacts/*.json stays the one source (scripts/build-contracts --check compares it
with a fresh build); pyproject.toml ships it as the package ``qev_artifacts`` and
keeper/artifacts.py reads it from the source tree, else from the installed package. The
wheel is built from a copy of exactly what the Docker build context holds (.dockerignore),
without build isolation (setuptools is in the dev extra: no index needed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from keeper import artifacts

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ("pyproject.toml", "README.md", "qev", "clearing", "keeper", "contracts/artifacts")
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
ARTIFACT_FILES = sorted((ROOT / "contracts" / "artifacts").glob("*.json"))


def test_source_tree_reads_the_committed_artifacts():
    assert artifacts.ARTIFACTS == ROOT / "contracts" / "artifacts"
    assert artifacts.names() == [p.stem for p in ARTIFACT_FILES] and ARTIFACT_FILES
    assert artifacts.artifact("QEVSettlement") == json.loads(
        (ROOT / "contracts" / "artifacts" / "QEVSettlement.json").read_text()
    )


def test_every_package_directory_is_listed_in_pyproject():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("qev", "clearing", "keeper")
        for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    missing = sorted(on_disk - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert "qev_artifacts" in listed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the build context (the repository is left untouched)."""
    base = tmp_path_factory.mktemp("wheel")
    context = base / "context"
    for name in CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    out = subprocess.run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(base / "dist"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (built,) = (base / "dist").glob("qev-*.whl")
    return built


def test_wheel_carries_every_module_and_artifact(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for path in ARTIFACT_FILES:
            member = f"qev_artifacts/{path.name}"
            assert member in names, f"{member} missing from the wheel"
            assert zf.read(member) == path.read_bytes(), f"{member} differs from {path}"
        modules = {
            p.relative_to(ROOT).as_posix()
            for top in ("qev", "clearing", "keeper")
            for p in (ROOT / top).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert not modules - names, f"modules missing from the wheel: {sorted(modules - names)}"
        assert not any(n.startswith(("contracts/", "tests/")) for n in names)


def test_installed_wheel_loads_the_artifacts(wheel: Path, tmp_path: Path):
    target = tmp_path / "site"
    out = subprocess.run(
        [*PIP, "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    probe = (
        "import json, keeper, keeper.artifacts as a;"
        "print(json.dumps({'keeper': keeper.__file__, 'dir': str(a.ARTIFACTS), 'names': a.names(),"
        "'abi': len(a.artifact('QEVSettlement')['abi'])}))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,  # not the repository: its keeper/ must not be the one imported
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    seen = json.loads(run.stdout)
    assert Path(seen["keeper"]).is_relative_to(target), seen
    assert Path(seen["dir"]) == target / "qev_artifacts", seen
    assert seen["names"] == [p.stem for p in ARTIFACT_FILES]
    expected = json.loads((ROOT / "contracts" / "artifacts" / "QEVSettlement.json").read_text())
    assert seen["abi"] == len(expected["abi"]) > 0
