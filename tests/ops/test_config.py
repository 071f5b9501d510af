"""One settings object per process: TOML file, QEV_* overrides, the deployment file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from clearing.api.settings import ServiceSettings
from clearing.config import (
    ChainSettings,
    ConfigError,
    load_settings,
    redact_url,
    scrub,
    unknown_keys,
)
from keeper.settings import KeeperSettings
from qev.commands.deploy import DeploySettings
from tests.ops.conftest import ROOT

VAULT = "0x" + "11" * 20
SETTLEMENT = "0x" + "22" * 20


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_env_over_file_over_deployment_over_default(tmp_path, monkeypatch):
    deployment = tmp_path / "deployment.json"
    deployment.write_text(
        json.dumps({"chain_id": 5, "vault": VAULT, "settlement": SETTLEMENT, "genesis": 7})
    )
    config = _write(
        tmp_path / "qev.toml",
        f'deployment_file = "{deployment}"\n'
        "[chain]\nchain_id = 6\n"
        "[service]\nport = 9000\nworkers = 2\n"
        "[keeper]\nport = 1\nconfirmations = 4\n",
    )
    monkeypatch.setenv("QEV_WORKERS", "3")
    s = load_settings(ServiceSettings, config)
    assert (s.chain_id, s.vault, s.settlement, s.genesis) == (6, VAULT, SETTLEMENT, 7)
    assert (s.port, s.workers) == (9000, 3)  # the file, then the environment on top
    assert s.window == 30 * 86_400  # the default
    k = load_settings(KeeperSettings, config)
    assert k.confirmations == 4 and k.chain_id == 6  # [keeper] is the keeper's only
    assert load_settings(ServiceSettings, config, port=1234).port == 1234  # code wins


def test_invalid_value_is_one_line_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("QEV_PORT", "eighty")
    with pytest.raises(ConfigError, match=r"^invalid setting port: "):
        load_settings(ServiceSettings)
    config = _write(tmp_path / "bad.toml", "[service\nport = 1\n")
    monkeypatch.delenv("QEV_PORT")
    with pytest.raises(ConfigError, match=r"config file .*bad.toml"):
        load_settings(ServiceSettings, config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(ServiceSettings, tmp_path / "missing.toml")


def test_missing_deployment_file_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("QEV_DEPLOYMENT_FILE", str(tmp_path / "none.json"))
    with pytest.raises(
        ConfigError, match=r"deployment file .*none.json does not exist \(run `qev deploy`\)"
    ):
        load_settings(KeeperSettings)
    assert load_settings(DeploySettings).deployment_file == tmp_path / "none.json"  # its output


def test_require_names_every_way_to_set_it():
    s = load_settings(KeeperSettings)
    with pytest.raises(ConfigError) as err:
        s.require("vault")
    assert str(err.value) == (
        "missing setting vault: set QEV_VAULT, `vault` in the config file, or deployment_file"
    )


def test_secrets_are_masked_in_repr_and_summary(monkeypatch):
    monkeypatch.setenv("QEV_RPC_URL", "https://user:pw@eth.example.com/v2/KEY123")
    monkeypatch.setenv("QEV_STORE_URL", "postgresql://qev:hunter2@db:5432/qev")
    monkeypatch.setenv("QEV_KEYSTORE_PASSPHRASE", "swordfish")
    s = load_settings(ServiceSettings)
    text = repr(s) + str(s) + json.dumps(s.summary())
    for secret in ("KEY123", "hunter2", "swordfish", "user:pw"):
        assert secret not in text
    assert s.summary()["rpc_url"] == "https://***@eth.example.com/..."
    assert s.summary()["store_url"] == "postgresql://***@db:5432/..."
    assert s.rpc() == "https://user:pw@eth.example.com/v2/KEY123"
    assert "swordfish" not in repr(s.passphrase())


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://mainnet.infura.io/v3/0123abcd", "https://mainnet.infura.io/..."),
        ("wss://eth.example.com:8546/?apikey=s3cret", "wss://eth.example.com:8546/..."),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("sqlite:///var/lib/qev/qev.db", "sqlite:///var/lib/qev/qev.db"),
        ("not a url", "(unparsable URL)"),
        (None, "(unset)"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_scrub_removes_urls_from_upstream_errors():
    text = (
        "HTTPSConnectionPool(host='eth.example.com', port=443): Max retries exceeded with "
        "url: /v2/APIKEY42 (Caused by x); see https://eth.example.com/v2/APIKEY42?x=1"
    )
    out = scrub(text)
    assert "APIKEY42" not in out
    assert "https://eth.example.com/..." in out


def test_example_file_documents_every_setting_and_nothing_else():
    path = ROOT / "docs" / "qev.example.toml"
    document = tomllib.loads(path.read_text())
    known = {
        "chain": set(ChainSettings.model_fields),
        "service": set(ServiceSettings.model_fields),
        "keeper": set(KeeperSettings.model_fields),
        "deploy": set(DeploySettings.model_fields),
    }
    assert unknown_keys(path, known) == []
    text = path.read_text()
    for table, cls, base in (
        ("chain", ChainSettings, set()),
        ("service", ServiceSettings, set(ChainSettings.model_fields)),
        ("keeper", KeeperSettings, set(ChainSettings.model_fields)),
        (
            "deploy",
            DeploySettings,
            set(ServiceSettings.model_fields) | set(KeeperSettings.model_fields),
        ),
    ):
        assert table in document
        for name in set(cls.model_fields) - base:
            assert f"{name} =" in text, f"{name} ([{table}]) is not in {path.name}"
    # the example's values load
    assert load_settings(ServiceSettings, path).port == 8000


def test_unknown_keys_are_reported(tmp_path):
    path = _write(tmp_path / "q.toml", "rpc_ulr = 'x'\n[service]\nprot = 1\n[nonsense]\na = 1\n")
    known = {"chain": {"rpc_url"}, "service": {"port"}}
    assert unknown_keys(path, known) == ["rpc_ulr", "service.prot", "[nonsense]"]
