"""Key files and keystores: one loader, never creates implicitly, refuses loose modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from clearing.keyfiles import (
    KeyFileError,
    Passphrase,
    account_address,
    create_key,
    create_keystore,
    read_account_key,
    read_key,
)

FAST = 2**10  # scrypt cost for tests only


def _passphrase_file(tmp_path: Path, text: str = "a fine passphrase") -> Passphrase:
    path = tmp_path / "pass"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return Passphrase(file=path)


def test_keystore_round_trip(tmp_path):
    pw = _passphrase_file(tmp_path)
    path = tmp_path / "k.json"
    address = create_keystore(path, pw, scrypt_n=FAST)
    assert path.stat().st_mode & 0o777 == 0o600
    document = json.loads(path.read_text())
    assert document["version"] == 3 and document["crypto"]["kdf"] == "scrypt"
    key = read_account_key(path, pw)
    assert Account.from_key(key).address == address
    assert account_address(path).lower() == address.lower()  # without the passphrase
    assert key.hex() not in path.read_text()


def test_wrong_passphrase_and_no_passphrase(tmp_path):
    path = tmp_path / "k.json"
    create_keystore(path, _passphrase_file(tmp_path), scrypt_n=FAST)
    with pytest.raises(KeyFileError, match="wrong passphrase or damaged keystore"):
        read_account_key(path, Passphrase(value="another passphrase"))
    with pytest.raises(KeyFileError, match="QEV_KEYSTORE_PASSPHRASE_FILE"):
        read_account_key(path, Passphrase())


def test_refuses_files_readable_by_others(tmp_path):
    path = tmp_path / "k.json"
    pw = _passphrase_file(tmp_path)
    create_keystore(path, pw, scrypt_n=FAST)
    path.chmod(0o640)
    with pytest.raises(KeyFileError, match="readable by others"):
        read_account_key(path, pw)
    pw.file.chmod(0o644)  # type: ignore[union-attr]
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"passphrase file .* readable by others"):
        read_account_key(path, pw)


def test_never_overwrites_and_never_creates_on_read(tmp_path):
    pw = _passphrase_file(tmp_path)
    path = tmp_path / "k.json"
    create_keystore(path, pw, scrypt_n=FAST)
    before = path.read_text()
    with pytest.raises(KeyFileError, match="already exists"):
        create_keystore(path, pw, scrypt_n=FAST)
    assert path.read_text() == before
    missing = tmp_path / "none.key"
    with pytest.raises(KeyFileError, match="does not exist"):
        read_key(missing, "master secret")
    with pytest.raises(KeyFileError, match="does not exist"):
        read_account_key(missing, pw)
    assert not missing.exists()


def test_hex_files_still_load_and_short_passphrases_are_refused(tmp_path):
    path = tmp_path / "m.key"
    create_key(path, "master secret")
    key = read_key(path)
    assert read_account_key(path, Passphrase()) == key  # a hex account key needs no passphrase
    assert account_address(path) is None
    with pytest.raises(KeyFileError, match="at least 8"):
        create_keystore(tmp_path / "x.json", Passphrase(value="short"), scrypt_n=FAST)


def test_damaged_keystore(tmp_path):
    path = tmp_path / "k.json"
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a valid keystore"):
        read_account_key(path, Passphrase(value="whatever it is"))
