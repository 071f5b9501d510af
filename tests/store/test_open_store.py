"""``open_store`` URL handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearing.store import open_store
from clearing.store.postgres import PostgresBidStore
from clearing.store.sqlite import SqliteBidStore
from tests.store.conftest import put_op


def test_sqlite_url_and_bare_path(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    store = open_store(f"sqlite:///{path}")  # absolute path -> sqlite:////tmp/...
    assert isinstance(store, SqliteBidStore)
    store.apply([put_op(1, 1, "x")])
    store.close()
    again = open_store(str(path))
    assert again.live_bid(1, 1) is not None
    again.close()


@pytest.mark.parametrize("url", ["sqlite://:memory:", "sqlite:///:memory:", "mysql://x/y", ""])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


def test_postgres_url_with_schema(pg_dsn: str, pg_schema: str) -> None:
    sep = "&" if "?" in pg_dsn else "?"
    store = open_store(f"{pg_dsn}{sep}schema={pg_schema}&application_name=qev-test")
    try:
        assert isinstance(store, PostgresBidStore) and store.schema == pg_schema
        store.ping()  # migrated by open_store
    finally:
        store.close()
    with pytest.raises(ValueError):
        open_store(f"{pg_dsn}{sep}schema=Bad-Name")
