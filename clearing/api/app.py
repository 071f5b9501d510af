"""The FastAPI application of DESIGN 4 (served by uvicorn: ``qev serve``)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Path, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearing.api import problems
from clearing.api.jsonbody import (
    ClientDisconnectedError,
    is_json_content_type,
    read_body,
    string_fields,
)
from clearing.api.metrics import ServiceMetrics
from clearing.api.ratelimit import TokenBuckets
from clearing.api.schemas import (
    AllocationResponse,
    AuctionInfo,
    BidRequest,
    BidStatusResponse,
    BookResponse,
    CancelRequest,
    HistoryResponse,
    ReceiptResponse,
)
from clearing.api.service import ClearingService
from clearing.errors import ChainReadError, MalformedError, PayloadTooLargeError, QevError
from clearing.hexcodec import parse_uint
from clearing.store.artifacts import ALLOCATION_TREE, KEY, RESULT
from clearing.store.base import StoreUnavailableError

UINT256_PATH = r"^(0|[1-9][0-9]{0,77})$"


BIDS_PATH = re.compile(r"/v1/auctions/(0|[1-9][0-9]{0,19})/bids")  # used with fullmatch
BIDS_ROUTE = "/v1/auctions/{auction_id}/bids"
BID_FIELDS = ("redemption_id", "controller", "ciphertext", "signature")
UNLIMITED_PATHS = frozenset(("/healthz", "/readyz", "/metrics"))
_JSON_HEADERS = [(b"content-type", b"application/json")]

_BODY_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
#: An ``X-Request-Id`` a client may choose (else one is generated).
REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_LOGGED_PATH_CHARS = 256

log = logging.getLogger("qev.api")
access = logging.getLogger("qev.access")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then the connection's own messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


#: ``await accept(auction_id, fields, client) -> (status, body)``: one bid write, done (or
#: raise); ``client`` is the peer's address (charged for chain reads).
Accept = Callable[[int, dict[str, str], str], Awaitable[tuple[int, bytes]]]


def request_id_of(header: bytes | None) -> bytes:
    """The client's ``X-Request-Id`` if it is a short token, else a new one: 128 random bits
    in hex (``os.urandom`` alone: a ``uuid.UUID`` object costs eight times as much)."""
    if header is not None and REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex().encode()


class _Responder:
    """The ``send`` of one request: adds ``X-Request-Id`` and remembers the status sent."""

    __slots__ = ("request_id", "send", "status")

    def __init__(self, send: Send, request_id: bytes) -> None:
        self.send, self.request_id = send, request_id
        self.status = 0  # none sent yet

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message = {
                **message,
                "headers": [*message.get("headers", ()), (b"x-request-id", self.request_id)],
            }
        await self.send(message)


class ChainProbe:
    """Readiness of the chain RPC: ``probe()`` off the event loop, cached for ``ttl`` s.

    A burst of ``/readyz`` calls makes one read; a probe still running (a hung RPC) is not
    started again; its failure is reported without its text (an RPC URL may hold a key).
    """

    def __init__(
        self,
        probe: Callable[[], None],
        timeout: float,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe, self._timeout, self._ttl, self._clock = probe, timeout, ttl, clock
        self._checked_at: float | None = None
        self._failure = ""  # "" while the last probe passed
        self._running: asyncio.Future[None] | None = None

    async def check(self) -> None:
        """Return if the chain answered recently, else raise ``ChainReadError``."""
        if self._checked_at is None or self._clock() - self._checked_at >= self._ttl:
            await self._refresh()
        if self._failure:
            raise ChainReadError(self._failure)

    async def _refresh(self) -> None:
        running = self._running
        if running is None:
            running = self._running = asyncio.ensure_future(asyncio.to_thread(self._probe))
            running.add_done_callback(self._finished)
        try:
            await asyncio.wait_for(asyncio.shield(running), self._timeout)
        except TimeoutError:
            self._failure = f"the chain RPC did not answer within {self._timeout:g} s"
        except Exception as e:
            log.warning("chain probe failed", extra={"error": type(e).__name__})
            self._failure = "the chain RPC failed"
        else:
            self._failure = ""
        self._checked_at = self._clock()

    def _finished(self, running: asyncio.Future[None]) -> None:
        self._running = None
        if not running.cancelled():
            running.exception()  # retrieved (reported by ``_refresh`` or already stale)


class Edge:
    """Pure ASGI front of every HTTP request: body cap (413), per-client limit, metrics,
    ``X-Request-Id`` and the access log (one ``qev.access`` record per request).

    It also serves the hot path, ``POST /v1/auctions/{id}/bids``, without the framework's
    per-request machinery (routing, dependency solving, model validation): the body is
    checked by ``jsonbody.string_fields`` to the same rules as ``BidRequest`` and handed to
    the same ``accept`` function the documented FastAPI route calls. Anything else, and any
    path this fast matcher does not take, goes to the FastAPI app unchanged.
    """

    def __init__(
        self,
        inner: ASGIApp,
        *,
        accept: Accept,
        max_body: int,
        metrics: ServiceMetrics,
        client_limit: TokenBuckets,
        access_log: bool = True,
    ) -> None:
        self.inner, self.accept, self.max_body = inner, accept, max_body
        self.metrics, self.client_limit = metrics, client_limit
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        responder = _Responder(send, request_id_of(headers.get(b"x-request-id")))
        peer = scope.get("client")
        client = peer[0] if peer else "unknown"
        route, status = "unmatched", 0
        try:
            refusal = self._precheck(scope, client, headers)
            fast = None
            if refusal is None and scope["method"] == "POST":
                fast = BIDS_PATH.fullmatch(scope["path"])
            if fast is not None and int(fast.group(1)) < 2**64:
                route = BIDS_ROUTE
                status = await self._post_bid(
                    int(fast.group(1)), headers, client, receive, responder
                )
            else:
                route, status = await self._framework(scope, receive, responder, refusal)
        finally:
            elapsed = time.perf_counter() - started
            status = status or responder.status or 500
            self.metrics.observe_request(route, status, elapsed)
            if self.access_log and access.isEnabledFor(logging.INFO):
                access.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"][:_LOGGED_PATH_CHARS],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": client,
                        "request_id": responder.request_id.decode(),
                    },
                )

    async def _framework(
        self, scope: Scope, receive: Receive, send: _Responder, refusal: Response | None
    ) -> tuple[str, int]:
        """Everything but the fast path: the FastAPI app, with the cap; (route, status)."""
        if refusal is not None:
            await refusal(scope, receive, send)
            return "unmatched", send.status
        if scope["method"] in _BODY_METHODS:
            # Read the body here, up to the cap, and replay it: the framework would turn an
            # error raised from ``receive`` into a 400 instead of the 413 problem.
            try:
                body = await read_body(receive, self.max_body)
            except PayloadTooLargeError as e:
                await problems.problem_for(e)(scope, receive, send)
                return "unmatched", send.status
            except ClientDisconnectedError:
                return "unmatched", 499
            await self.inner(scope, _replay(body, receive), send)
        else:
            await self.inner(scope, receive, send)
        return getattr(scope.get("route"), "path", "unmatched"), send.status

    def _precheck(self, scope: Scope, client: str, headers: dict[bytes, bytes]) -> Response | None:
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                return problems.problem("malformed", "invalid Content-Length")
            if too_big:
                return problems.problem("payload_too_large", f"body over {self.max_body} bytes")
        if scope["path"] not in UNLIMITED_PATHS:
            try:
                self.client_limit.take(client, "client")
            except QevError as e:
                return problems.problem_for(e)
        return None

    async def _post_bid(
        self,
        auction_id: int,
        headers: dict[bytes, bytes],
        client: str,
        receive: Receive,
        send: Send,
    ) -> int:
        """Serve one bid write; returns the status sent (499: the client went away)."""
        try:
            body = await read_body(receive, self.max_body)
            if not is_json_content_type(headers.get(b"content-type")):
                raise MalformedError("body: Content-Type must be application/json")
            fields = string_fields(body, BID_FIELDS)
            status, payload = await self.accept(auction_id, fields, client)
        except ClientDisconnectedError:
            return 499
        except QevError as e:
            response = problems.problem_for(e)
        except Exception:  # the framework's ServerErrorMiddleware is not on this path
            log.exception("unexpected error in bid intake")
            response = problems.problem("internal", "unexpected server error")
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return status
        await response({"type": "http"}, receive, send)
        return response.status_code


class QevApp(FastAPI):
    """The FastAPI app with the ``Edge`` in front of every HTTP request."""

    edge: Edge | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.edge is not None:
            await self.edge(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The FastAPI/Starlette stack alone (what the edge falls back to)."""
        await super().__call__(scope, receive, send)


def create_app(
    service: ClearingService,
    *,
    max_body: int = 4096,
    client_limit: TokenBuckets | None = None,
    controller_limit: TokenBuckets | None = None,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    access_log: bool = True,
    chain_probe: Callable[[], None] | None = None,
) -> QevApp:
    """Build the app around a ``ClearingService`` (everything it uses is passed in).

    ``access_log``: one ``qev.access`` record per request (at INFO). ``chain_probe``: a
    cheap chain read (e.g. the latest block number) that ``/readyz`` makes, off the event
    loop, within the service's chain read timeout, at most every 2 s.
    """
    metrics = ServiceMetrics()
    no_limit = TokenBuckets(0, 0, time.monotonic)
    clients = client_limit or no_limit
    controllers = controller_limit or no_limit

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if on_startup:
            await on_startup()
        try:
            yield
        finally:
            if on_shutdown:
                await on_shutdown()

    app = QevApp(
        title="qev clearing service",
        version="1",
        description="Sealed-bid QEV auctions for sUSDai redemptions (DESIGN 4).",
        lifespan=lifespan,
    )
    problems.install(app)
    app.state.metrics = metrics
    metrics.watch_committer(service.d.committer)
    app.state.service = service
    app.state.controller_limit = controllers

    problem_responses: dict[int | str, dict[str, Any]] = {
        code: {"description": "RFC 9457 problem", "content": {problems.PROBLEM_JSON: {}}}
        for code in (400, 403, 404, 409, 413, 429, 503)
    }
    AuctionId = Path(ge=0, lt=2**64, description="window boundary timestamp")  # noqa: N806
    RedemptionId = Path(pattern=UINT256_PATH, description="uint256 decimal")  # noqa: N806

    def raw_json(body: bytes) -> Response:
        return Response(body, media_type="application/json")

    # Routes that read the store are plain ``def``: FastAPI runs them in its thread pool, so
    # a PostgreSQL round trip never blocks the event loop that serves bid intake.

    @app.get("/v1/auctions/current", response_model=AuctionInfo, responses=problem_responses)
    def current_auction() -> Any:
        published = getattr(app.state, "web_bundle_sha256", None)
        document = service.current_auction()
        return {**document, "web_bundle_sha256": published} if published else document

    @app.get("/v1/auctions/{auction_id}", response_model=AuctionInfo, responses=problem_responses)
    def get_auction(auction_id: int = AuctionId) -> Any:
        return service.auction(auction_id)

    def charge_controller(controller: bytes) -> None:
        # only after the request's signature verified: nobody can spend another's budget
        app.state.controller_limit.take(controller.hex(), "controller")

    async def accept(auction_id: int, fields: dict[str, str], client: str) -> tuple[int, bytes]:
        """One bid write: durable submit (the controller's limit charged once its signature
        verifies, any chain read to the client's budget), metrics, the receipt body."""
        started = time.perf_counter()
        try:
            ack = await service.submit(auction_id, fields, admit=charge_controller, client=client)
        except QevError as e:
            metrics.bid_outcome(e.code)
            raise
        metrics.commit.observe(time.perf_counter() - started)
        metrics.bid_outcome(ack.outcome)
        body = orjson.dumps({"receipt": ack.receipt, "status": ack.status})
        return (201 if ack.created else 200), body

    @app.post(
        BIDS_ROUTE,
        response_model=ReceiptResponse,
        status_code=201,
        responses={
            200: {"model": ReceiptResponse, "description": "identical resubmission"},
            **problem_responses,
        },
    )
    async def post_bid(request: Request, body: BidRequest, auction_id: int = AuctionId) -> Any:
        # Normally served by the Edge's fast path (same ``accept``); this route documents
        # the operation and serves any request the fast matcher leaves to the framework.
        client = request.client.host if request.client else "unknown"
        status, payload = await accept(auction_id, body.model_dump(), client)
        return Response(payload, status_code=status, media_type="application/json")

    @app.delete(
        "/v1/auctions/{auction_id}/bids/{redemption_id}",
        response_model=ReceiptResponse,
        responses=problem_responses,
    )
    async def cancel_bid(
        body: CancelRequest, auction_id: int = AuctionId, redemption_id: str = RedemptionId
    ) -> Any:
        ack = await service.cancel(
            auction_id, parse_uint(redemption_id), body.model_dump(), admit=charge_controller
        )
        metrics.bid_outcome(ack.outcome)
        return {"receipt": ack.receipt, "status": ack.status}

    @app.get(
        "/v1/auctions/{auction_id}/bids/{redemption_id}",
        response_model=BidStatusResponse,
        responses=problem_responses,
    )
    def get_bid(auction_id: int = AuctionId, redemption_id: str = RedemptionId) -> Any:
        return service.bid_status(auction_id, parse_uint(redemption_id))

    @app.get(
        "/v1/auctions/{auction_id}/book", response_model=BookResponse, responses=problem_responses
    )
    def get_book(auction_id: int = AuctionId) -> Any:
        # the frozen bytes as published (documented by BookResponse, not re-validated)
        return raw_json(service.book(auction_id))

    @app.get(
        "/v1/auctions/{auction_id}/book/history",
        response_model=HistoryResponse,
        responses=problem_responses,
    )
    def get_book_history(auction_id: int = AuctionId) -> Any:
        # superseded and cancelled envelopes with their receipts (DESIGN 4, rev 2)
        return raw_json(service.history(auction_id))

    @app.get("/v1/auctions/{auction_id}/result", responses=problem_responses)
    def get_result(auction_id: int = AuctionId) -> Response:
        return raw_json(service.artifact(auction_id, RESULT))

    @app.get(
        "/v1/auctions/{auction_id}/allocations/{redemption_id}",
        response_model=AllocationResponse,
        responses=problem_responses,
    )
    def get_allocation(auction_id: int = AuctionId, redemption_id: str = RedemptionId) -> Any:
        return service.allocation(auction_id, parse_uint(redemption_id))

    @app.get("/v1/auctions/{auction_id}/allocation-tree", responses=problem_responses)
    def get_allocation_tree(auction_id: int = AuctionId) -> Response:
        return raw_json(service.artifact(auction_id, ALLOCATION_TREE))

    @app.get("/v1/auctions/{auction_id}/key", responses=problem_responses)
    def get_key(auction_id: int = AuctionId) -> Response:
        return raw_json(service.artifact(auction_id, KEY))

    @app.get("/healthz")
    async def healthz() -> Any:
        return {"status": "ok"}

    chain = (
        ChainProbe(chain_probe, service.d.chain_read_timeout) if chain_probe is not None else None
    )

    def store_ready() -> None:
        committer = service.d.committer
        if committer.store_down:  # answer at once during an outage
            raise StoreUnavailableError("the last write found the store unavailable")
        service.d.store.ping()
        committer.store_answered()

    @app.get("/readyz", responses=problem_responses)
    async def readyz() -> Any:
        # the store first (503 store_unavailable), then the chain (503 chain_unavailable)
        await run_in_threadpool(store_ready)
        if chain is not None:
            await chain.check()
        return {"status": "ready"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.edge = Edge(
        app.framework,
        accept=accept,
        max_body=max_body,
        metrics=metrics,
        client_limit=clients,
        access_log=access_log,
    )
    return app


__all__ = ["BIDS_ROUTE", "ChainProbe", "Edge", "QevApp", "create_app", "request_id_of"]
