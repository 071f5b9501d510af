"""Fixtures of the Node cross-checks (the JavaScript SDK's driver, built once per session)."""

from tests.node.sdk_support import sdk  # noqa: F401 - a fixture
