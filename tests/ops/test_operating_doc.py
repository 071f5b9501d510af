"""docs/OPERATING.md, run verbatim: fresh keys to a verified auction on anvil, real clock."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.ops.conftest import ROOT

GUIDE = ROOT / "docs" / "OPERATING.md"
BLOCK = re.compile(r"^```sh( background)?\n(.*?)^```$", re.S | re.M)
PORTS = (8545, 8000, 9101)  # the guide's anvil, service and keeper metrics


def guide_script(text: str, logs: Path) -> str:
    """The guide's ``sh`` blocks as one bash script; ``background`` blocks keep running."""
    parts = ["set -euo pipefail"]
    for number, (background, body) in enumerate(BLOCK.findall(text)):
        if background:
            parts.append(f"( {body.strip()} ) > {logs}/background-{number}.log 2>&1 &")
        else:
            parts.append(f"echo '>>> block {number}'\n{body}")
    return "\n".join(parts) + "\n"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_the_guide_has_every_step():
    blocks = BLOCK.findall(GUIDE.read_text())
    text = "\n".join(body for _, body in blocks)
    for command in (
        "anvil ",
        "qev keys master-secret",
        "qev keys service-key",
        "qev keys account",
        "qev deploy --dev",
        "qev config check",
        "qev serve",
        "qev keeper run",
        "qev bid submit",
        "qev verify --service",
    ):
        assert command in text, command
    assert sum(1 for background, _ in blocks if background) == 3


def test_operating_guide_runs_verbatim(tmp_path):
    busy = [p for p in PORTS if not _port_free(p)]
    assert not busy, f"ports the guide uses are taken: {busy}"
    script = tmp_path / "guide.sh"
    script.write_text(guide_script(GUIDE.read_text(), tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QEV_")}
    proc = subprocess.Popen(
        ["bash", str(script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the guide did not finish in 15 min:\n{out[-4000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    logs = "\n".join(
        f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp_path.glob("background-*.log"))
    )
    assert proc.returncode == 0, f"{out[-6000:]}\n{logs}"
    assert "configuration ok" in out
    assert "0 transaction(s) needed" in out  # the second deploy
    assert '"created": true' in out
    verdict = out.strip().splitlines()[-1]
    assert re.fullmatch(r"auction \d+: \d+ checks, verified", verdict), out[-3000:]
    for secret_marker in ("choose a long passphrase here",):
        assert secret_marker not in out + logs
