"""``qev deploy`` on anvil: the plan, idempotence, --dry-run, the deployment file, config check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from clearing.keyfiles import Passphrase, create_key, create_keystore
from keeper.chain import Chain
from qev.cli import EXIT_CHECK_FAILED, main

PASSPHRASE = "a test passphrase"
FAST = 2**10


@pytest.fixture
def stack(tmp_path: Path, anvil, monkeypatch) -> dict[str, object]:
    """Key files, a config file and the environment of an operator on ``anvil``."""
    pw = Passphrase(value=PASSPHRASE)
    keys = tmp_path / "keys"
    addresses = {
        name: create_keystore(keys / f"{name}.json", pw, scrypt_n=FAST)
        for name in ("service", "urgent", "housekeeping")
    }
    create_key(keys / "master.key", "master secret")
    config = tmp_path / "qev.toml"
    config.write_text(
        f'[chain]\nrpc_url = "{anvil.url}"\ndeployment_file = "{tmp_path / "deployment.json"}"\n'
        f'store_url = "sqlite:///{tmp_path / "qev.db"}"\n'
        f'[service]\nservice_key_file = "{keys / "service.json"}"\n'
        f'[keeper]\nmaster_secret_file = "{keys / "master.key"}"\n'
        f'urgent_key_file = "{keys / "urgent.json"}"\n'
        f'housekeeping_key_file = "{keys / "housekeeping.json"}"\n'
        "[deploy]\nadmin_fee_bps = 25\nfirst_auction_in = 300\n"
    )
    monkeypatch.setenv("QEV_CONFIG", str(config))
    monkeypatch.setenv("QEV_KEYSTORE_PASSPHRASE", PASSPHRASE)
    return {"w3": anvil.w3(), "addresses": addresses, "deployment": tmp_path / "deployment.json"}


def _nonce(w3: Web3) -> int:
    return int(w3.eth.get_transaction_count(w3.eth.accounts[0]))


def test_deploy_is_idempotent_and_dry_run_sends_nothing(stack, capsys):
    w3, addresses = stack["w3"], stack["addresses"]
    assert main(["deploy", "--dev", "--fund", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "11 transaction(s) needed" in out and out.count("  would ") == 11
    assert _nonce(w3) == 0 and not stack["deployment"].exists()

    now = int(w3.eth.get_block("latest")["timestamp"])
    assert main(["deploy", "--dev", "--fund", "2"]) == 0
    sent = _nonce(w3)
    assert sent == 11
    document = json.loads(stack["deployment"].read_text())
    chain = Chain(w3, document["vault"], document["settlement"])
    assert document["chain_id"] == 31337
    assert document["genesis"] == chain.genesis()
    assert now + 300 - 30 * 86_400 <= chain.genesis() <= now + 310 - 30 * 86_400
    assert document["receipt_signer"] == addresses["service"]
    assert chain.receipt_signer().hex() == addresses["service"][2:].lower()
    assert chain.settlement.functions.adminFeeBps().call() == 25
    keeper_role = chain.settlement.functions.KEEPER_ROLE().call()
    strategy = chain.vault.functions.STRATEGY_ADMIN_ROLE().call()
    for lane in ("urgent", "housekeeping"):
        assert chain.settlement.functions.hasRole(keeper_role, addresses[lane]).call()
        assert chain.vault.functions.hasRole(strategy, addresses[lane]).call()
        assert w3.eth.get_balance(addresses[lane]) == 2 * 10**18
    capsys.readouterr()

    assert main(["deploy", "--dev", "--fund", "2"]) == 0  # again: nothing to send
    assert "0 transaction(s) needed" in capsys.readouterr().out
    assert _nonce(w3) == sent

    assert main(["config", "check"]) == 0
    assert "configuration ok" in capsys.readouterr().out


def test_deploy_repairs_only_what_is_missing(stack, capsys):
    w3, addresses = stack["w3"], stack["addresses"]
    assert main(["deploy", "--dev"]) == 0
    document = json.loads(stack["deployment"].read_text())
    chain = Chain(w3, document["vault"], document["settlement"])
    admin = w3.eth.accounts[0]
    keeper_role = chain.settlement.functions.KEEPER_ROLE().call()
    chain.settlement.functions.revokeRole(keeper_role, addresses["urgent"]).transact(
        {"from": admin}
    )
    chain.settlement.functions.setReceiptSigner(admin).transact({"from": admin})
    capsys.readouterr()

    assert main(["config", "check"]) == EXIT_CHECK_FAILED
    out = capsys.readouterr().out
    assert f"FAIL  urgent lane {addresses['urgent']} roles: missing KEEPER_ROLE" in out
    assert f"FAIL  urgent lane {addresses['urgent']} balance" in out  # not funded
    assert f"the chain names {admin}, the service key is {addresses['service']}" in out

    assert main(["deploy", "--dev", "--fund", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 transaction(s) needed" in out
    assert f"grant KEEPER_ROLE on the settlement to {addresses['urgent']}" in out
    assert f"set the receipt signer to {addresses['service']}" in out
    assert main(["config", "check"]) == 0


def test_deployment_file_of_another_chain_is_refused(stack, capsys):
    stack["deployment"].write_text(json.dumps({"chain_id": 1, "settlement": "0x" + "00" * 20}))
    assert main(["deploy", "--dev"]) == 2
    assert "is a deployment on chain 1, not 31337" in capsys.readouterr().err


def test_qev_serve_app_serves_the_page_and_publishes_its_hash(stack):
    """``qev serve``'s app (chain-checked settings) serves the holder's page at / with its
    CSP, and ``/v1/auctions/current`` publishes the bundle hash anyone can rebuild."""
    import subprocess

    from starlette.testclient import TestClient

    from qev.commands.serve import serve_app
    from tests.ops.conftest import ROOT

    assert main(["deploy", "--dev"]) == 0
    expected = subprocess.run(
        [str(ROOT / "scripts" / "build-web"), "--hash"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()[-1]
    with TestClient(serve_app()) as client:
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        current = client.get("/v1/auctions/current").json()
        assert current["web_bundle_sha256"] == expected
        assert page.headers["x-qev-web-bundle-sha256"] == expected  # the footer reads it too
