"""A throwaway PostgreSQL cluster (initdb into a temp dir, own port, loopback only).

Fault tests stop and restart it; the shared server on 127.0.0.1:5432 is never touched.
As root, the server runs as the ``postgres`` user (``runuser``), as initdb requires.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from loadtests.harness import free_port


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin dir (Debian layout), if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    return found[-1].parent if found else None


class ThrowawayPostgres:
    """``initdb`` + ``pg_ctl`` on a temp data dir and a free port; ``destroy()`` removes it."""

    def __init__(self) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="qev-pgstop-"))  # under /tmp: postgres can enter
        self.data, self.log = self.root / "data", self.root / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def dsn(self) -> str:
        """Base connection URL (database ``postgres``, trust auth)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self._as, *args], check=True, timeout=timeout, capture_output=True, cwd=self.root
        )

    def init(self) -> ThrowawayPostgres:
        """Create the cluster (trust auth for local and loopback connections)."""
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        return self

    def start(self) -> None:
        """Start and wait until it accepts connections (fsync on: commits are durable)."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
            str(self.log), "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop (``immediate`` = crash-like: no checkpoint, recovery on the next start)."""
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30",
            "stop",
        )  # fmt: skip

    def destroy(self) -> None:
        """Stop if running and delete the cluster."""
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
