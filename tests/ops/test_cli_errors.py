"""Every command: one line, a documented exit code, no traceback, no secret (subprocesses)."""

from __future__ import annotations

import pytest

from qev.cli import EXIT_CHAIN, EXIT_CONFIG
from tests.ops.conftest import run_qev

SECRET_RPC = "https://user:pw@127.0.0.1:9/v2/SECRETAPIKEY"
VAULT = "0x" + "11" * 20
SETTLEMENT = "0x" + "22" * 20


def _one_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("command", "env", "missing"),
    [
        (["serve"], {}, "rpc_url"),
        (["serve"], {"QEV_RPC_URL": SECRET_RPC}, "vault"),
        (["serve"], {"QEV_RPC_URL": SECRET_RPC, "QEV_VAULT": VAULT}, "settlement"),
        (["keeper", "run"], {}, "rpc_url"),
        (["keeper", "run"], {"QEV_RPC_URL": SECRET_RPC}, "vault"),
        (["keeper", "run"], {"QEV_RPC_URL": SECRET_RPC, "QEV_VAULT": VAULT}, "settlement"),
        (["deploy"], {}, "rpc_url"),
        (["deploy"], {"QEV_RPC_URL": SECRET_RPC}, "vault"),
    ],
)
def test_missing_setting_is_one_line_naming_it(command, env, missing):
    proc = run_qev(*command, env=env)
    assert proc.returncode == EXIT_CONFIG
    line = _one_line(proc)
    assert line.startswith(
        f"qev {command[0]}: missing setting {missing}: set QEV_{missing.upper()}"
    )


@pytest.mark.parametrize("command", [["serve"], ["keeper", "run"], ["status"]])
def test_unreachable_rpc_is_one_line_without_the_url(command):
    env = {"QEV_RPC_URL": SECRET_RPC, "QEV_VAULT": VAULT, "QEV_SETTLEMENT": SETTLEMENT}
    proc = run_qev(*command, env=env)
    assert proc.returncode == EXIT_CHAIN
    line = _one_line(proc)
    assert "RPC unreachable" in line
    assert "SECRETAPIKEY" not in proc.stderr + proc.stdout and "user:pw" not in proc.stderr


def test_debug_adds_the_traceback_but_still_no_key():
    env = {"QEV_RPC_URL": SECRET_RPC, "QEV_VAULT": VAULT, "QEV_SETTLEMENT": SETTLEMENT}
    proc = run_qev("--debug", "status", env=env)
    assert proc.returncode == EXIT_CHAIN
    assert "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("qev status: RPC unreachable")


def test_key_file_problems(tmp_path):
    env = {"QEV_KEYSTORE_PASSPHRASE": "long enough phrase"}
    key = tmp_path / "k.json"
    assert run_qev("keys", "account", "--file", str(key), env=env).returncode == 0
    proc = run_qev("keys", "account", "--file", str(key), env=env)
    assert proc.returncode == EXIT_CONFIG
    assert (
        _one_line(proc)
        == f"qev keys: account key file {key} already exists: refusing to overwrite it"
    )
    proc = run_qev("keys", "master-secret", "--file", str(tmp_path / "m.key"))
    assert proc.returncode == 0 and "never printed" in proc.stdout
    secret = (tmp_path / "m.key").read_text().strip()
    assert secret not in proc.stdout + proc.stderr


def test_bad_config_file_and_bad_value(tmp_path):
    bad = tmp_path / "q.toml"
    bad.write_text("[service]\nport = 'x'\n")
    proc = run_qev("--config", str(bad), "serve")
    assert proc.returncode == EXIT_CONFIG
    assert _one_line(proc).startswith("qev serve: invalid setting port:")


def test_usage_errors_exit_2():
    proc = run_qev("keeper", "close")
    assert proc.returncode == EXIT_CONFIG
    assert "Traceback" not in proc.stderr


def test_help_lists_the_exit_codes():
    proc = run_qev("--help")
    assert proc.returncode == 0
    for line in ("2   usage or configuration error", "3   chain RPC error", "70  internal error"):
        assert line in proc.stdout
