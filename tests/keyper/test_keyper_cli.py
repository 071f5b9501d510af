"""The keyper's command line and settings: ``qev keys keyper-identity``, ``qev keyper`` refusing
in one line without its settings, ``[keyper]`` in the config file, and the dealer's
polynomial derived from the identity key (what makes a restart stateless)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearing import threshold as th
from clearing.config import load_settings
from clearing.dkg import Committee
from clearing.eip712 import Eip712Domain
from clearing.keyfiles import read_key
from clearing.sealing import public_key_of
from keeper.keyper import KeyperSettings, dealer_polynomial
from qev.cli import main

SETTLEMENT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")


def test_keys_keyper_identity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys" / "identity.key"
    assert main(["keys", "keyper-identity", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert path.stat().st_mode & 0o777 == 0o600
    secret = read_key(path, "keyper identity key")
    assert f"0x{public_key_of(secret).hex()}" in out
    assert secret.hex() not in out  # never printed
    assert main(["keys", "keyper-identity", "--file", str(path)]) == 2  # never overwritten
    assert "already exists" in capsys.readouterr().err
    assert read_key(path) == secret


def test_keyper_settings_from_the_keyper_table(tmp_path: Path) -> None:
    config = tmp_path / "qev.toml"
    config.write_text(
        '[chain]\nrpc_url = "http://127.0.0.1:8545"\n'
        '[keyper]\nservice_url = "http://service:8000"\nidentity_key_file = "id.key"\n'
        "poll_seconds = 5\n"
        "[keeper]\npoll_seconds = 99\n"
    )
    s = load_settings(KeyperSettings, config)
    assert s.service_url == "http://service:8000"
    assert s.identity_key_file == Path("id.key")
    assert s.poll_seconds == 5  # the keyper table, not the keeper's


def test_keyper_run_without_settings_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("QEV_CONFIG", "QEV_RPC_URL", "QEV_SERVICE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["keyper", "once"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing setting service_url" in err[0]
    assert main(["keyper", "once", "--service", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "keyper identity key file" in err[0] and "does not exist" in err[0]


def test_the_dealer_polynomial_is_derived_not_stored() -> None:
    domain = Eip712Domain("QEVSettlement", "1", 31337, SETTLEMENT)
    committee = Committee(1, (b"\x01" * 20,) * 2, (b"\x02" * 32,) * 2, 3, 3600)
    identity = b"\x07" * 32
    poly = dealer_polynomial(identity, domain, 1_767_225_600, committee)
    assert poly == dealer_polynomial(identity, domain, 1_767_225_600, committee)
    assert len(poly.coefficients) == 3 and all(0 < a < th.L for a in poly.coefficients)
    others = [
        dealer_polynomial(b"\x08" * 32, domain, 1_767_225_600, committee),
        dealer_polynomial(identity, domain, 1_767_225_601, committee),
        dealer_polynomial(
            identity,
            domain,
            1_767_225_600,
            Committee(2, committee.keypers, committee.identity_keys, 3, 3600),
        ),
        dealer_polynomial(
            identity, Eip712Domain("QEVSettlement", "1", 1, SETTLEMENT), 1_767_225_600, committee
        ),
    ]
    assert len({p.coefficients for p in [poly, *others]}) == 5


def test_the_loop_outlives_a_bad_tick(caplog: pytest.LogCaptureFixture) -> None:
    from clearing.errors import ChainReadError
    from keeper.keyper import KeyperError, run

    outcomes: list[object] = [KeyperError("the board refused"), ChainReadError("rpc down"), []]
    slept: list[float] = []

    class Stub:
        def tick(self) -> list[str]:
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return ["deal 1"]

    run(Stub(), poll_seconds=7, iterations=3, sleep=slept.append)  # type: ignore[arg-type]
    assert slept == [7, 7, 7] and outcomes == []
    levels = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "qev.keyper"]
    assert ("ERROR", "keyper tick failed: the board refused") in levels
    assert any(level == "ERROR" and "rpc down" in m for level, m in levels)
    assert ("INFO", "done: deal 1") in levels
