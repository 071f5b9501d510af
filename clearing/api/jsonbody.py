"""Strict JSON request bodies for the hot path: an object of exactly the named string fields.

The same rules as the pydantic models in ``schemas`` (``extra="forbid"``, strings only, at
most ``max_length`` characters each), without the framework's per-request machinery.
"""

from __future__ import annotations

import orjson
from starlette.types import Message, Receive

from clearing.errors import MalformedError, PayloadTooLargeError

MAX_FIELD_LENGTH = 4096


class ClientDisconnectedError(Exception):
    """The client went away before its request body arrived (nothing to answer)."""


async def read_body(receive: Receive, max_body: int) -> bytes:
    """The whole request body; ``PayloadTooLargeError`` as soon as it passes ``max_body``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise PayloadTooLargeError(f"body over {max_body} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def is_json_content_type(value: bytes | None) -> bool:
    """True for a missing Content-Type or ``application/json`` / ``application/*+json``."""
    if value is None:
        return True
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def string_fields(
    body: bytes, fields: tuple[str, ...], max_length: int = MAX_FIELD_LENGTH
) -> dict[str, str]:
    """Decode ``body`` as a JSON object holding exactly ``fields``, each a string.

    Raises ``MalformedError`` naming the first offending field otherwise.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise MalformedError(f"body: invalid JSON ({e.msg})") from None
    if not isinstance(doc, dict):
        raise MalformedError("body: must be a JSON object")
    for name in fields:
        value = doc.get(name)
        if value is None:
            raise MalformedError(f"body.{name}: Field required")
        if not isinstance(value, str):
            raise MalformedError(f"body.{name}: Input should be a valid string")
        if len(value) > max_length:
            raise MalformedError(f"body.{name}: at most {max_length} characters")
    if len(doc) != len(fields):
        extra = next(k for k in doc if k not in fields)
        raise MalformedError(f"body.{extra}: Extra inputs are not permitted")
    return doc


__all__ = [
    "MAX_FIELD_LENGTH",
    "ClientDisconnectedError",
    "is_json_content_type",
    "read_body",
    "string_fields",
]
