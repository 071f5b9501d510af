"""A holder's local journal of bids: what was sealed, sent, acknowledged, cancelled, claimed.

A sealed bid cannot be read back from the service (only the auction key opens it, after
close), so ``qev bid`` writes down, before anything is sent, the plaintext fields of every
bid it seals (shares, basis points, nonce), the envelope and its ciphertext hash, and the
service's URL; then every receipt, cancel and claim. The journal is how ``qev bid status``
shows what was bid and how ``qev bid cancel`` finds the live envelope.

One JSON object per line, appended (``O_APPEND``, flushed and fsynced per record), in a file
of mode 0600 in a directory of mode 0700: ``QEV_JOURNAL_FILE``, else
``$XDG_DATA_HOME/qev/journal.jsonl``, else ``~/.local/share/qev/journal.jsonl``. A journal
readable by others is refused (it tells what you bid). It never holds a key: records are
built from a fixed list of fields, and a field name that looks like a secret is refused.

Records (``event``): ``submit`` (before the POST), ``receipt`` (kind 0 or 1, after the
service answered and the receipt was verified), ``cancel`` (before the DELETE), ``failed``
(a submit or cancel whose answer was an error), ``claim`` (a claim transaction, or a claim
found pushed by a keeper). Each carries ``at`` (unix time), ``service``, ``chain_id``,
``settlement``, ``auction_id``, ``redemption_id`` and ``controller``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from clearing.config import ConfigError

VERSION = 1
_SECRETISH = ("key", "secret", "passphrase", "password", "mnemonic", "seed")


class JournalError(ConfigError):
    """The journal cannot be created, read or written, or is readable by others."""

    code = "journal"


def journal_path(env: Mapping[str, str] | None = None) -> Path:
    """``QEV_JOURNAL_FILE``, else ``$XDG_DATA_HOME/qev/journal.jsonl``, else ``~/.local/share``."""
    env = os.environ if env is None else env
    if env.get("QEV_JOURNAL_FILE"):
        return Path(env["QEV_JOURNAL_FILE"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qev" / "journal.jsonl"


def _pair_key(record: Mapping[str, Any]) -> tuple[int, str, int, str, str]:
    return (
        int(record.get("chain_id", 0)),
        str(record.get("settlement", "")).lower(),
        int(record.get("auction_id", 0)),
        str(record.get("redemption_id", "")),
        str(record.get("controller", "")).lower(),
    )


class Journal:
    """The journal file at ``path`` (created on first use, mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # --- writing ----------------------------------------------------------------

    def check_writable(self) -> None:
        """Create the file (0600) if needed and check it is private; before anything is sent."""
        fd = self._open()
        os.close(fd)

    def _open(self) -> int:
        directory = self.path.parent
        try:
            if not directory.exists():
                directory.mkdir(mode=0o700, parents=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(
                f"cannot open the bid journal {self.path}: {exc.strerror} "
                "(set QEV_JOURNAL_FILE to a writable path)"
            ) from None
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:  # pragma: no cover - fstat of an open file
            os.close(fd)
            raise JournalError(f"cannot stat the bid journal {self.path}: {exc.strerror}") from None
        if mode & 0o077:
            os.close(fd)
            raise JournalError(
                f"bid journal {self.path} is readable by others (chmod 600 it): it tells what "
                "you bid"
            )
        return fd

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record (flushed and fsynced before this returns); returns it."""
        for name in fields:
            lowered = name.lower()
            if any(word in lowered for word in _SECRETISH):
                raise ValueError(f"the journal never holds secrets: field {name!r} refused")
        record = {"v": VERSION, "event": event, "at": int(time.time()), **fields}
        line = (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode()
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
        except OSError as exc:
            raise JournalError(
                f"cannot write the bid journal {self.path}: {exc.strerror}"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return record

    # --- reading ----------------------------------------------------------------

    def records(self) -> Iterator[dict[str, Any]]:
        """Every readable record, oldest first (a torn last line after a crash is skipped)."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise JournalError(f"cannot read the bid journal {self.path}: {exc.strerror}") from None
        if mode & 0o077:
            raise JournalError(
                f"bid journal {self.path} is readable by others (chmod 600 it): it tells what "
                "you bid"
            )
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise JournalError(f"cannot read the bid journal {self.path}: {reason}") from None
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and "event" in record:
                    yield record

    def of_pair(
        self,
        *,
        chain_id: int,
        settlement: str,
        auction_id: int,
        redemption_id: int,
        controller: str,
    ) -> list[dict[str, Any]]:
        """The records of one (auction, redemption) pair of one controller, oldest first."""
        wanted = _pair_key(
            {
                "chain_id": chain_id,
                "settlement": settlement,
                "auction_id": auction_id,
                "redemption_id": str(redemption_id),
                "controller": controller,
            }
        )
        return [r for r in self.records() if _pair_key(r) == wanted]

    @staticmethod
    def sealed(records: list[dict[str, Any]], ciphertext_hash: str) -> dict[str, Any] | None:
        """The ``submit`` record of the envelope ``ciphertext_hash`` (its plaintext fields)."""
        for r in reversed(records):
            if r["event"] == "submit" and r.get("ciphertext_hash") == ciphertext_hash:
                return r
        return None

    @staticmethod
    def live(records: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The pair's live envelope as far as this journal knows: the last acknowledged bid
        (kind-0 receipt) not cancelled since (kind-1 receipt naming it); its ``submit``
        record merged with its receipt."""
        live: dict[str, Any] | None = None
        for r in records:
            if r["event"] != "receipt":
                continue
            if int(r.get("kind", 0)) == 0:
                live = r
            elif live is not None and r.get("ciphertext_hash") == live.get("ciphertext_hash"):
                live = None
        if live is None:
            return None
        submitted = Journal.sealed(records, str(live.get("ciphertext_hash")))
        return {**(submitted or {}), "receipt": live}

    def latest_auction(
        self,
        *,
        chain_id: int,
        settlement: str,
        redemption_id: int,
        controller: str,
        before: int | None = None,
    ) -> int | None:
        """The latest auction (before ``before``, if given) this journal has a bid receipt for."""
        found: int | None = None
        for r in self.records():
            if r["event"] != "receipt" or int(r.get("kind", 0)) != 0:
                continue
            key = _pair_key(r)
            if key[0] != chain_id or key[1] != settlement.lower():
                continue
            if key[3] != str(redemption_id) or key[4] != controller.lower():
                continue
            if before is not None and key[2] >= before:
                continue
            found = key[2] if found is None else max(found, key[2])
        return found


__all__ = ["Journal", "JournalError", "journal_path"]
