"""Durable bid store: one interface (``base``), SQLite and PostgreSQL backends, group commit."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from clearing.store._common import check_schema_name
from clearing.store.base import BidStore


def open_store(url: str, *, migrate: bool = True) -> BidStore:
    """Open the store named by ``url`` and (by default) bring its schema up to date.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or a bare file path open
    a ``SqliteBidStore``; ``postgresql://...`` (or ``postgres://``) opens a
    ``PostgresBidStore``, with an optional ``?schema=name`` (default ``qev``) that is removed
    from the DSN handed to libpq.
    """
    store: BidStore
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        from clearing.store.postgres import PostgresBidStore

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        rest = [(key, value) for key, value in query if key != "schema"]
        schema = check_schema_name(schemas[-1]) if schemas else "qev"
        dsn = urlunsplit(parts._replace(query=urlencode(rest)))
        store = PostgresBidStore(dsn, schema=schema)
    elif scheme in ("sqlite", ""):
        from clearing.store.sqlite import SqliteBidStore

        path = url[len("sqlite:///") :] if scheme else url
        if scheme and not url.startswith("sqlite:///"):
            raise ValueError(f"SQLite URL must look like sqlite:///path.db: {url!r}")
        if not path or path == ":memory:":
            raise ValueError("the SQLite store needs a file path (WAL, several connections)")
        store = SqliteBidStore(path)
    else:
        raise ValueError(f"unsupported store URL scheme {scheme!r}")
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store


__all__ = ["open_store"]
