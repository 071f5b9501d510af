"""compose.yaml's jobs run for real, without Docker: anvil, `keys`, `deploy`, then the readers.

Each container path of compose.yaml (a volume's mount point, the secret, the container's
/tmp) becomes a directory of the test, shared the way the volume is shared; the commands,
scripts and environments are taken from compose.yaml unchanged otherwise. Checked: anvil
with compose's arguments mines on its own and keeps its chain across a clean restart
(--state); `keys` creates the five files once (a second run changes nothing) and writes
the public addresses; `deploy` deploys, grants, registers and funds from them and writes
the deployment file (a second run sends nothing); the keeper's and the service's settings
from compose read their keys and that file (`qev keys show`, `qev config check`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.faults import composefile as cf

pytestmark = pytest.mark.node

ANVIL = cf.ROOT / "node_modules" / ".bin" / "anvil"
PASSPHRASE = "compose-test-passphrase (not a secret)"
TIMEOUT = 180
# `qev config check --process P` in a container: (service, process, items that must be ok);
# each container holds only its own keys (split volumes), and nothing may fail
CONFIG_CHECK = (
    (
        "keeper",
        "keeper",
        (
            "master secret",
            "urgent lane key",
            "housekeeping lane key",
            "store reachable and migrated",
        ),
    ),
    (
        "service-1",
        "service",
        ("receipt signing key", "receipt signer registered", "chain id, contract code and genesis"),
    ),
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """compose.yaml's services with their container paths mapped onto ``base``."""

    base: Path
    port: int
    services: dict[str, Any] = field(default_factory=lambda: cf.load()["services"])
    anvil: subprocess.Popen[bytes] | None = None

    def paths(self, service: str) -> dict[str, Path]:
        """Container path -> host path for one service (volumes, secrets, /tmp)."""
        svc = self.services[service]
        out = {m.target: self.base / "volumes" / m.source for m in cf.mounts(svc)}
        for secret in svc.get("secrets") or []:
            name = secret if isinstance(secret, str) else secret["source"]
            out[f"/run/secrets/{name}"] = self.base / "secrets" / name
        out["/tmp"] = self.base / "tmp" / service
        for path in out.values():
            (path.parent if path.parent.name == "secrets" else path).mkdir(
                parents=True, exist_ok=True
            )
        return out

    def remap(self, service: str, text: str) -> str:
        """``text`` with the service's container paths and anvil's address made local."""
        paths = self.paths(service)
        pattern = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
        text = re.sub(
            rf"(?<![\w/.])({pattern})(?=/|$|[\s\"'])", lambda m: str(paths[m.group(1)]), text
        )
        return text.replace("http://anvil:8545", f"http://127.0.0.1:{self.port}")

    def env(self, service: str, **extra: str) -> dict[str, str]:
        """The service's environment (remapped) over a clean one, with this venv first."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("QEV_")}
        base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
        own = {k: self.remap(service, v) for k, v in cf.environment(self.services[service]).items()}
        return {**base, **own, **extra}

    def run(self, service: str, argv: list[str] | None = None, **extra: str) -> str:
        """Run the service's command (or ``qev <argv>`` in its environment); its output."""
        if argv is None:
            argv = [self.remap(service, cf.unescape(a)) for a in cf.argv_of(self.services[service])]
        else:
            argv = ["qev", *argv]
        if argv[0] == "qev":
            argv = [sys.executable, "-m", "qev", *argv[1:]]
        out = subprocess.run(
            argv,
            env=self.env(service, **extra),
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert out.returncode == 0, f"{service}: {argv[:4]}\n{out.stdout}\n{out.stderr}"
        return out.stdout + out.stderr

    def start_anvil(self) -> None:
        """anvil with compose's arguments (listening on loopback, on a free port)."""
        args = [self.remap("anvil", a) for a in cf.argv_of(self.services["anvil"])[1:]]
        args[args.index("--host") + 1] = "127.0.0.1"
        args[args.index("--port") + 1] = str(self.port)
        self.anvil = subprocess.Popen(
            [str(ANVIL), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own group: the stop signal reaches the real binary
        )
        deadline = time.monotonic() + 60
        while self.rpc_or_none("eth_chainId") is None:
            assert self.anvil.poll() is None and time.monotonic() < deadline, "no anvil"
            time.sleep(0.1)

    def stop_anvil(self) -> None:
        """Stop anvil with compose's stop signal; it dumps its state on the way out."""
        if self.anvil is None or self.anvil.poll() is not None:
            return
        stop = getattr(signal, self.services["anvil"].get("stop_signal", "SIGTERM"))
        os.killpg(self.anvil.pid, stop)
        try:
            self.anvil.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.anvil.pid, signal.SIGKILL)
            self.anvil.wait()
            raise

    def rpc_or_none(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}", body.encode(), {"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read()).get("result")
        except OSError:
            return None

    def volume(self, name: str) -> Path:
        return self.base / "volumes" / name


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not ANVIL.exists() or shutil.which("node") is None:
        pytest.skip("anvil (npm @foundry-rs/anvil) not installed")
    s = Stack(tmp_path_factory.mktemp("compose"), _free_port())
    secrets = s.base / "secrets"
    secrets.mkdir(mode=0o700)
    for svc in s.services.values():  # the secret files compose would mount
        for name in svc.get("secrets") or []:
            path = secrets / name
            path.write_text(PASSPHRASE + "\n")
            path.chmod(0o600)
    s.start_anvil()
    try:
        yield s
    finally:
        s.stop_anvil()


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_keys_job_creates_each_key_once_and_publishes_addresses(stack: Stack):
    first = stack.run("keys")
    service_keys, keeper_keys = stack.volume("service-keys"), stack.volume("keeper-keys")
    assert set(_files(service_keys)) == {"service.json"}, first
    assert set(_files(keeper_keys)) == {"master.secret", "urgent.json", "housekeeping.json"}
    for path in [*service_keys.iterdir(), *keeper_keys.iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert PASSPHRASE not in path.read_text()
    created = {**_files(service_keys), **_files(keeper_keys)}
    second = stack.run("keys")
    assert {**_files(service_keys), **_files(keeper_keys)} == created, "keys were replaced"
    assert "created" not in second, second
    accounts = tomllib.loads((stack.volume("qev-deploy") / "accounts.toml").read_text())
    address = {
        name: "0x" + json.loads((directory / name).read_text())["address"].lower()
        for directory, name in (
            (service_keys, "service.json"),
            (keeper_keys, "urgent.json"),
            (keeper_keys, "housekeeping.json"),
        )
    }
    assert accounts["receipt_signer"].lower() == address["service.json"]
    assert [k.lower() for k in accounts["deploy"]["keepers"]] == [
        address["urgent.json"],
        address["housekeeping.json"],
    ]


def test_deploy_job_deploys_funds_and_writes_the_deployment_file(stack: Stack):
    first = stack.run("deploy")
    deployment_file = stack.volume("qev-deploy") / "deployment.json"
    deployment = json.loads(deployment_file.read_text())
    accounts = tomllib.loads((stack.volume("qev-deploy") / "accounts.toml").read_text())
    assert deployment["chain_id"] == 31337, first
    assert deployment["receipt_signer"].lower() == accounts["receipt_signer"].lower()
    assert [k.lower() for k in deployment["keepers"]] == [
        k.lower() for k in accounts["deploy"]["keepers"]
    ]
    for keeper in deployment["keepers"]:
        assert int(stack.rpc_or_none("eth_getBalance", keeper, "latest"), 16) >= 10 * 10**18
    for contract in ("vault", "settlement"):
        assert stack.rpc_or_none("eth_getCode", deployment[contract], "latest") not in (None, "0x")
    again = stack.run("deploy")
    assert re.search(r"\b0 transaction", again) and "up to date" in again, again
    assert json.loads(deployment_file.read_text()) == deployment


def test_keeper_and_service_read_their_keys_and_the_deployment(stack: Stack, tmp_path: Path):
    store = f"sqlite:///{tmp_path / 'qev.db'}"  # compose's PostgreSQL is not here
    shown = json.loads(stack.run("keeper", ["keys", "show", "--json"], QEV_STORE_URL=store))
    rows = {row["key"]: row for row in shown}
    assert {"urgent_key", "housekeeping_key", "master_secret"} <= set(rows), shown
    assert not any("problem" in row for row in shown), shown
    assert "service_key" not in rows, "the keeper is told where the receipt key is"
    for service, process, own in CONFIG_CHECK:
        out = subprocess.run(
            [sys.executable, "-m", "qev", "config", "check", "--process", process],
            env=stack.env(service, QEV_STORE_URL=store),
            cwd=stack.base,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        text = out.stdout + out.stderr
        assert "Traceback" not in text, text
        status = {}  # item -> "ok" | "FAIL", from lines like "FAIL  master secret: ..."
        for line in out.stdout.splitlines():
            found = re.match(r"(ok|FAIL)\s+([^:]+)", line)
            if found:
                status[found.group(2).strip()] = found.group(1)
        for item in own:
            assert status.get(item) == "ok", f"{service}: {item}\n{text}"
        failed = {item for item, verdict in status.items() if verdict == "FAIL"}
        assert not failed and out.returncode == 0, f"{service}:\n{text}"


def test_anvil_mines_by_itself_and_keeps_its_chain_across_a_restart(stack: Stack):
    deployment = json.loads((stack.volume("qev-deploy") / "deployment.json").read_text())
    before = int(stack.rpc_or_none("eth_blockNumber"), 16)
    time.sleep(2.5)
    after = int(stack.rpc_or_none("eth_blockNumber"), 16)
    assert after >= before + 2, "no blocks without transactions: --block-time is not set"
    stack.stop_anvil()
    state = stack.volume("anvil-state")
    assert any(state.iterdir()), "anvil wrote no state on exit"
    stack.start_anvil()
    code = stack.rpc_or_none("eth_getCode", deployment["settlement"], "latest")
    assert code not in (None, "0x"), "the restarted chain lost the deployment"
    assert int(stack.rpc_or_none("eth_blockNumber"), 16) >= after
    assert "0 transaction" in stack.run("deploy")
