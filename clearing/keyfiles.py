"""Key files, keystores and the master secret: the one place secrets are read or created.

Used by the service, the keeper, the keypers and the ``qev`` command. Nothing here ever
creates a secret implicitly except ``load_or_create_key``, which only the demo and the dev
server call. Two formats:

- a *secret file*: 32 bytes as hex, mode 0600 (the master secret; plain dev keys);
- a *keystore*: an Ethereum account key encrypted as eth-account keystore v3 (scrypt), mode
  0600, unlocked with a passphrase read from a file or an environment variable.

Account keys (keeper lanes, the receipt signer, keypers) may be either: a file whose text
starts with ``{`` is a keystore. No function here logs or returns a secret in a message.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from clearing.errors import QevError

#: Keystores unlocked in this process (scrypt costs ~2 s each), by file identity + passphrase.
_UNLOCKED: dict[tuple[str, int, int, bytes], bytes] = {}


class KeyFileError(QevError):
    """A key file that is missing, unreadable, readable by others or not in a known format."""

    code = "key_file"


@dataclass(frozen=True)
class Passphrase:
    """Where a keystore passphrase comes from: a file, else an environment value."""

    file: Path | None = None
    value: str | None = field(default=None, repr=False)

    def read(self, for_path: Path) -> str:
        """The passphrase; an error naming ``for_path`` when none is configured."""
        if self.file is not None:
            _check_private(self.file, "passphrase")
            try:
                return self.file.read_text().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                if isinstance(exc, UnicodeDecodeError):
                    raise KeyFileError(f"passphrase file {self.file} is not UTF-8 text") from None
                raise KeyFileError(
                    f"cannot read passphrase file {self.file}: {exc.strerror}"
                ) from None
        if self.value:
            return self.value
        raise KeyFileError(
            f"{for_path} is a keystore: set QEV_KEYSTORE_PASSPHRASE_FILE (or "
            "QEV_KEYSTORE_PASSPHRASE) to unlock it"
        )

    def __repr__(self) -> str:
        return f"Passphrase(file={self.file!r}, value={'***' if self.value else None})"


def _check_private(path: Path, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"{what} file {path} does not exist (create it explicitly)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise KeyFileError(f"{what} file {path} is readable by others (chmod 600 it)")


def _read_text(path: Path, what: str) -> str:
    _check_private(path, what)
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise KeyFileError(f"cannot read {what} file {path}: {reason}") from None


def _parse_hex_key(text: str, path: Path, what: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise KeyFileError(f"{what} file {path} is not hex") from None
    if len(key) != 32:
        raise KeyFileError(f"{what} file {path} does not hold 32 bytes")
    return key


def read_key(path: Path, what: str = "key") -> bytes:
    """Read a 32-byte secret stored as hex; never creates one (DESIGN 3, rev 2).

    A missing file is an error naming the file, so a keeper started with a wrong path stops
    instead of deriving keys from a fresh secret nobody committed.
    """
    return _parse_hex_key(_read_text(path, what), path, what)


def is_keystore(path: Path) -> bool:
    """Whether ``path`` holds a keystore (JSON) rather than a hex secret."""
    try:
        with path.open("rb") as f:
            return f.read(64).lstrip().startswith(b"{")
    except OSError:
        return False


def read_account_key(path: Path, passphrase: Passphrase, what: str = "account key") -> bytes:
    """A 32-byte secp256k1 key from a keystore (unlocked with ``passphrase``) or a hex file."""
    text = _read_text(path, what)
    if not text.lstrip().startswith("{"):
        return _parse_hex_key(text, path, what)
    from eth_account import Account

    try:
        document = json.loads(text)
    except ValueError:
        raise KeyFileError(f"{what} file {path} is not a valid keystore") from None
    secret = passphrase.read(path)
    stat = path.stat()
    memo = (
        str(path.resolve()),
        stat.st_mtime_ns,
        stat.st_size,
        hashlib.sha256(secret.encode()).digest(),
    )
    if memo in _UNLOCKED:
        return _UNLOCKED[memo]
    try:
        key = bytes(Account.decrypt(document, secret))
    except KeyFileError:
        raise
    except ValueError:
        raise KeyFileError(f"{what} file {path}: wrong passphrase or damaged keystore") from None
    except (KeyError, TypeError):
        raise KeyFileError(f"{what} file {path} is not a valid keystore") from None
    _UNLOCKED[memo] = key
    return key


def account_address(path: Path, what: str = "account key") -> str | None:
    """The address a keystore names without unlocking it (None for a hex file)."""
    text = _read_text(path, what)
    if not text.lstrip().startswith("{"):
        return None
    try:
        address = json.loads(text)["address"]
    except (ValueError, KeyError, TypeError):
        raise KeyFileError(f"{what} file {path} is not a valid keystore") from None
    return "0x" + str(address).removeprefix("0x")


def create_key(path: Path, what: str = "key") -> None:
    """Create a new random 32-byte secret at ``path`` (mode 0600); refuse to overwrite."""
    if path.exists():
        raise KeyFileError(f"{what} file {path} already exists: refusing to overwrite it")
    load_or_create_key(path)


def create_keystore(
    path: Path, passphrase: Passphrase, what: str = "account key", *, scrypt_n: int | None = None
) -> str:
    """Create a new account as a keystore v3 at ``path`` (mode 0600); returns its address.

    Refuses to overwrite. ``scrypt_n`` lowers the KDF cost (tests only; the default is
    eth-account's, 2^18).
    """
    from eth_account import Account

    if path.exists():
        raise KeyFileError(f"{what} file {path} already exists: refusing to overwrite it")
    secret = passphrase.read(path)
    if len(secret) < 8:
        raise KeyFileError("the keystore passphrase must be at least 8 bytes")
    account = Account.create()
    document = Account.encrypt(account.key, secret, kdf="scrypt", iterations=scrypt_n)
    _publish(path, json.dumps(document) + "\n")
    return str(account.address)


def load_or_create_key(path: Path) -> bytes:
    """Read a 32-byte secret stored as hex; create it (mode 0600) if the file is missing.

    Only for the demo, the dev server and ``create_key``: services and the keeper use
    ``read_key``, which never creates a key.

    Creation is atomic: the key is written to a private temporary file and linked into
    place, so processes starting together (worker processes) all read the one key that won.
    """
    if not path.exists():
        _publish(path, secrets.token_bytes(32).hex() + "\n")
    return bytes.fromhex(path.read_text().strip().removeprefix("0x"))


def _publish(path: Path, text: str) -> None:
    """Write ``text`` to a new file ``path`` (mode 0600) atomically; a racing winner stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        _write_synced(fd, text)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process's key won
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            with contextlib.suppress(FileExistsError):
                _write_synced(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), text)
    finally:
        os.unlink(tmp)
    _fsync_dir(path.parent)


def _write_synced(fd: int, text: str) -> None:
    """Write ``text`` to the new file ``fd`` and fsync it (closes ``fd``)."""
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (a crash must not lose the key's name)."""
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = [
    "KeyFileError",
    "Passphrase",
    "account_address",
    "create_key",
    "create_keystore",
    "is_keystore",
    "load_or_create_key",
    "read_account_key",
    "read_key",
]
