"""The service's persisted secrets: created once, atomically, even by racing workers."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from clearing.keyfiles import load_or_create_key


def test_created_private_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "service.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == key.hex() + "\n"
    assert load_or_create_key(path) == key
    assert sorted(p.name for p in path.parent.iterdir()) == ["service.key"]  # no temp files


def _race(
    path: str, start: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    start.wait()
    out.put(load_or_create_key(Path(path)))


def test_racing_processes_all_get_the_one_key(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        path = tmp_path / f"race-{round_}.key"
        start, out = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(path), start, out)) for _ in range(8)]
        for p in procs:
            p.start()
        keys = {out.get(timeout=30) for _ in procs}
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
        assert keys == {bytes.fromhex(path.read_text())}
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"race-{i}.key" for i in range(5)]


def test_qev_keys_creates_a_master_secret_once(tmp_path, capsys):
    from qev.cli import main

    path = tmp_path / "keeper" / "master.key"
    assert main(["keys", "master-secret", "--file", str(path)]) == 0
    secret = path.read_text().strip()
    assert len(bytes.fromhex(secret)) == 32 and path.stat().st_mode & 0o777 == 0o600
    out = capsys.readouterr()
    assert secret not in out.out + out.err
    assert main(["keys", "master-secret", "--file", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_text().strip() == secret
