"""Fault tests (issue 7): replicas on one PostgreSQL, kill -9, PostgreSQL outage, fuzzing.

Markers (registered here, so ``--strict-markers`` accepts them without pyproject changes):
``faults_long`` for the full-size variants, which run only with ``QEV_FAULTS_LONG=1``;
``pgstop`` for tests that stop a PostgreSQL server (always a throwaway cluster of their own).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from clearing.hexcodec import from_hex

LONG = os.environ.get("QEV_FAULTS_LONG") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults_long: full-size fault variant; runs only with QEV_FAULTS_LONG=1"
    )
    config.addinivalue_line(
        "markers", "pgstop: stops and restarts a PostgreSQL server (a throwaway cluster)"
    )


long_only = pytest.mark.skipif(not LONG, reason="full-size variant: set QEV_FAULTS_LONG=1")


def pg_available() -> bool:
    """Whether the shared PostgreSQL server answers on 127.0.0.1:5432."""
    import psycopg

    try:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def receipt_key(body: dict[str, Any]) -> tuple[int, int, bytes]:
    """``(redemption_id, sequence, ciphertext_hash)`` of a receipt response."""
    r = body["receipt"]
    return int(r["redemption_id"]), int(r["sequence"]), from_hex(r["ciphertext_hash"], 32)
