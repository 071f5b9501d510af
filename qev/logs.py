"""Structured logs for every qev process: JSON in production, readable on a terminal.

The command line calls ``configure_logging`` once; modules log through stdlib ``logging``
with ``extra={...}`` fields (``auction_id``, ``duty``, ``tx_hash``, ``request_id``...), which
this formatter renders as keys. Every message and field passes through ``scrub`` so no URL
(an RPC URL can carry an API key) reaches a log line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

from clearing.config import scrub

#: ``LogRecord`` attributes that are not user fields.
_RECORD_KEYS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)


def _record_fields(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Lift a stdlib record's ``extra`` fields into the event and scrub every string."""
    record = event.get("_record")
    if record is not None:
        for key, value in vars(record).items():
            if key not in _RECORD_KEYS and not key.startswith("_") and key not in event:
                event[key] = value
    for key, value in list(event.items()):
        if isinstance(value, str) and not key.startswith("_"):
            event[key] = scrub(value)
    return event


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "info", *, stream: Any = None
) -> None:
    """Route every ``logging`` record through one formatter (idempotent)."""
    handler: logging.StreamHandler = (  # type: ignore[type-arg]
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    stream = stream or sys.stderr
    json_output = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _record_fields,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_qev", False):
            root.removeHandler(old)
    handler._qev = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("web3", "urllib3", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


__all__ = ["configure_logging"]
