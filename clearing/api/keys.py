"""Where the service gets its signing key and each auction's public key."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from clearing.sealing import derive_auction_secret, public_key_of
from clearing.signing import Signer
from clearing.store.artifacts import PUBLIC_KEY
from clearing.store.base import BidStore
from qev.errors import QevError


class AuctionKeys(Protocol):
    """The auction public key bidders seal to (committed on-chain by the keeper)."""

    def public_key(self, auction_id: int) -> bytes | None:
        """Raw 32-byte X25519 public key, or None if not announced."""


class DerivedAuctionKeys:
    """Derive public keys from the master secret (single-operator and demo deployments)."""

    def __init__(self, master_secret: bytes) -> None:
        self._master = master_secret

    @lru_cache(maxsize=64)  # noqa: B019 - a handful of auctions, kept for the process life
    def public_key(self, auction_id: int) -> bytes | None:
        """Public key of ``auction_id``."""
        return public_key_of(derive_auction_secret(self._master, auction_id))


class StoredAuctionKeys:
    """Public keys the keeper published into the shared store at window open."""

    def __init__(self, store: BidStore) -> None:
        self._store = store

    def public_key(self, auction_id: int) -> bytes | None:
        """Public key of ``auction_id`` if the keeper announced it."""
        raw = self._store.get_artifact(auction_id, PUBLIC_KEY)
        return raw if raw is None or len(raw) == 32 else None


class KeyFileError(QevError):
    """A key file that is missing, unreadable, readable by others or not a 32-byte hex key."""

    code = "key_file"


def read_key(path: Path, what: str = "key") -> bytes:
    """Read a 32-byte secret stored as hex; never creates one (DESIGN 3, rev 2).

    A missing file is an error naming the file, so a keeper started with a wrong path stops
    instead of deriving keys from a fresh secret nobody committed.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise KeyFileError(f"{what} file {path} does not exist (create it explicitly)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise KeyFileError(f"{what} file {path} is readable by others (chmod 600 it)")
    try:
        key = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise KeyFileError(f"{what} file {path} is not hex") from None
    if len(key) != 32:
        raise KeyFileError(f"{what} file {path} does not hold 32 bytes")
    return key


def create_key(path: Path, what: str = "key") -> None:
    """Create a new random 32-byte secret at ``path`` (mode 0600); refuse to overwrite."""
    if path.exists():
        raise KeyFileError(f"{what} file {path} already exists: refusing to overwrite it")
    load_or_create_key(path)


def load_or_create_key(path: Path) -> bytes:
    """Read a 32-byte secret stored as hex; create it (mode 0600) if the file is missing.

    Only for the demo, the dev server and ``create_key``: services and the keeper use
    ``read_key``, which never creates a key.

    Creation is atomic: the key is written to a private temporary file and linked into
    place, so processes starting together (worker processes) all read the one key that won.
    Where the filesystem has no hard links, an exclusive create is used instead.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_bytes(32).hex() + "\n"
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
                    _create_exclusive(path, text)
        finally:
            os.unlink(tmp)
        _fsync_dir(path.parent)
    return bytes.fromhex(path.read_text().strip().removeprefix("0x"))


def _create_exclusive(path: Path, text: str) -> None:
    _write_synced(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), text)


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


def service_signer(path: Path) -> Signer:
    """The receipt-signing key (persisted, so receipts stay verifiable across restarts)."""
    return Signer(load_or_create_key(path))


__all__ = [
    "AuctionKeys",
    "DerivedAuctionKeys",
    "KeyFileError",
    "StoredAuctionKeys",
    "create_key",
    "load_or_create_key",
    "read_key",
    "service_signer",
]
