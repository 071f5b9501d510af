"""RFC 9457 problem responses: every ``QevError`` maps to HTTP here, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from clearing.errors import QevError, RateLimitedError

PROBLEM_JSON = "application/problem+json"

#: code -> HTTP status. Codes are stable API; add, never rename.
STATUS_BY_CODE: dict[str, int] = {
    "malformed": 400,
    "malformed_plaintext": 400,
    "bad_signature": 400,
    "bad_key": 400,
    "not_controller": 403,
    "unknown_auction": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "auction_closed": 409,
    "auction_not_closed": 409,
    "not_cleared": 409,
    "key_not_revealed": 409,
    "stale_cancel": 409,
    "stale_envelope": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "headers_too_large": 431,
    "internal": 500,
    "store_unavailable": 503,
    "store_error": 503,
    "chain_unavailable": 503,
    "overloaded": 503,
}
KNOWN_CODES = frozenset(STATUS_BY_CODE)


def problem_body(code: str, detail: str, status: int | None = None, **extra: object) -> bytes:
    """The JSON body of a problem with a stable ``code`` (what ``problem`` sends)."""
    status = status or STATUS_BY_CODE.get(code, 500)
    body = {
        "type": f"https://qev.usd.ai/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return orjson.dumps(body)


def raw_problem(code: str, detail: str, status: int | None = None) -> bytes:
    """A whole HTTP/1.1 problem response that closes the connection, as bytes.

    For the server's edge, which answers some requests before any ASGI cycle exists (a
    request head too large or too slow, a connection over the cap).
    """
    status = status or STATUS_BY_CODE.get(code, 500)
    body = problem_body(code, detail, status)
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def problem(
    code: str,
    detail: str,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> Response:
    """A problem+json response with a stable ``code``."""
    status = status or STATUS_BY_CODE.get(code, 500)
    headers = dict(headers or {})
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return Response(
        problem_body(code, detail, status, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_for(exc: QevError) -> Response:
    """The problem response of a domain error (with Retry-After when rate limited)."""
    if isinstance(exc, RateLimitedError):
        return problem(exc.code, exc.detail, retry_after=exc.retry_after)
    return problem(exc.code, exc.detail)


def install(app: FastAPI) -> None:
    """Register the exception handlers that turn every error into a problem."""

    @app.exception_handler(QevError)
    async def _qev(_: Request, exc: QevError) -> Response:
        return problem_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem("malformed", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "malformed" if exc.status_code < 500 else "internal"
        )
        # keep the exception's headers (e.g. ``Allow`` on a 405)
        return problem(code, str(exc.detail), status=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        return problem("internal", "unexpected server error")


__all__ = [
    "KNOWN_CODES",
    "PROBLEM_JSON",
    "STATUS_BY_CODE",
    "install",
    "problem",
    "problem_body",
    "problem_for",
    "raw_problem",
]
