"""The FastAPI application of DESIGN 4 (served by uvicorn: ``qev serve``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Path
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearing.api import problems
from clearing.api.metrics import ServiceMetrics
from clearing.api.ratelimit import TokenBuckets
from clearing.api.schemas import (
    AllocationResponse,
    AuctionInfo,
    BidRequest,
    BidStatusResponse,
    BookResponse,
    CancelRequest,
    ReceiptResponse,
)
from clearing.api.service import ClearingService
from clearing.hexcodec import parse_uint
from clearing.store.artifacts import ALLOCATION_TREE, KEY, RESULT
from qev.errors import PayloadTooLargeError, QevError

UINT256_PATH = r"^(0|[1-9][0-9]{0,77})$"


class BodyLimitAndMetrics:
    """Pure ASGI middleware: body size cap (413 problem), per-client rate limit, metrics."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        metrics: ServiceMetrics,
        client_limit: TokenBuckets,
    ) -> None:
        self.app, self.max_body, self.metrics, self.client_limit = (
            app,
            max_body,
            metrics,
            client_limit,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        error = self._precheck(scope)
        if error is not None:
            await error(scope, receive, send_wrapper)
        else:
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        raise PayloadTooLargeError(f"body over {self.max_body} bytes")
                return message

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except PayloadTooLargeError as e:
                await problems.problem(e.code, e.detail)(scope, receive, send_wrapper)
        route = scope.get("route")
        path = getattr(route, "path", "unmatched")
        self.metrics.requests.labels(path, str(status_holder["status"])).inc()
        self.metrics.latency.labels(path).observe(time.perf_counter() - started)

    def _precheck(self, scope: Scope) -> Response | None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_body
                except ValueError:
                    return problems.problem("malformed", "invalid Content-Length")
                if too_big:
                    return problems.problem("payload_too_large", f"body over {self.max_body} bytes")
        if scope["path"] not in ("/healthz", "/readyz", "/metrics"):
            client = scope.get("client")
            try:
                self.client_limit.take(client[0] if client else "unknown", "client")
            except QevError as e:
                return problems.problem(e.code, e.detail, retry_after=getattr(e, "retry_after", 1))
        return None


def create_app(
    service: ClearingService,
    *,
    max_body: int = 4096,
    client_limit: TokenBuckets | None = None,
    controller_limit: TokenBuckets | None = None,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """Build the app around a ``ClearingService`` (everything it uses is passed in)."""
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

    app = FastAPI(
        title="qev clearing service",
        version="1",
        description="Sealed-bid QEV auctions for sUSDai redemptions (DESIGN 4).",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(
        BodyLimitAndMetrics, max_body=max_body, metrics=metrics, client_limit=clients
    )
    app.state.metrics = metrics
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

    @app.get("/v1/auctions/current", response_model=AuctionInfo, responses=problem_responses)
    async def current_auction() -> Any:
        return service.current_auction()

    @app.get("/v1/auctions/{auction_id}", response_model=AuctionInfo, responses=problem_responses)
    async def get_auction(auction_id: int = AuctionId) -> Any:
        return service.auction(auction_id)

    @app.post(
        "/v1/auctions/{auction_id}/bids",
        response_model=ReceiptResponse,
        status_code=201,
        responses={
            200: {"model": ReceiptResponse, "description": "identical resubmission"},
            **problem_responses,
        },
    )
    async def post_bid(body: BidRequest, auction_id: int = AuctionId) -> Any:
        app.state.controller_limit.take(body.controller.lower(), "controller")
        started = time.perf_counter()
        try:
            ack = await service.submit(auction_id, body.model_dump())
        except QevError as e:
            metrics.bids.labels(e.code).inc()
            raise
        metrics.commit.observe(time.perf_counter() - started)
        metrics.bids.labels("created" if ack.created else "identical").inc()
        # Serialized here (no response-model re-validation on the hot path); the route's
        # response_model still documents the body in the OpenAPI schema.
        return Response(
            orjson.dumps({"receipt": ack.receipt, "status": ack.status}),
            status_code=201 if ack.created else 200,
            media_type="application/json",
        )

    @app.delete(
        "/v1/auctions/{auction_id}/bids/{redemption_id}",
        response_model=ReceiptResponse,
        responses=problem_responses,
    )
    async def cancel_bid(
        body: CancelRequest, auction_id: int = AuctionId, redemption_id: str = RedemptionId
    ) -> Any:
        app.state.controller_limit.take(body.controller.lower(), "controller")
        ack = await service.cancel(auction_id, parse_uint(redemption_id), body.model_dump())
        metrics.bids.labels("cancelled").inc()
        return {"receipt": ack.receipt, "status": ack.status}

    @app.get(
        "/v1/auctions/{auction_id}/bids/{redemption_id}",
        response_model=BidStatusResponse,
        responses=problem_responses,
    )
    async def get_bid(auction_id: int = AuctionId, redemption_id: str = RedemptionId) -> Any:
        return service.bid_status(auction_id, parse_uint(redemption_id))

    @app.get(
        "/v1/auctions/{auction_id}/book", response_model=BookResponse, responses=problem_responses
    )
    async def get_book(auction_id: int = AuctionId) -> Any:
        return service.book(auction_id)

    @app.get("/v1/auctions/{auction_id}/result", responses=problem_responses)
    async def get_result(auction_id: int = AuctionId) -> Response:
        return raw_json(service.artifact(auction_id, RESULT))

    @app.get(
        "/v1/auctions/{auction_id}/allocations/{redemption_id}",
        response_model=AllocationResponse,
        responses=problem_responses,
    )
    async def get_allocation(auction_id: int = AuctionId, redemption_id: str = RedemptionId) -> Any:
        return service.allocation(auction_id, parse_uint(redemption_id))

    @app.get("/v1/auctions/{auction_id}/allocation-tree", responses=problem_responses)
    async def get_allocation_tree(auction_id: int = AuctionId) -> Response:
        return raw_json(service.artifact(auction_id, ALLOCATION_TREE))

    @app.get("/v1/auctions/{auction_id}/key", responses=problem_responses)
    async def get_key(auction_id: int = AuctionId) -> Response:
        return raw_json(service.artifact(auction_id, KEY))

    @app.get("/healthz")
    async def healthz() -> Any:
        return {"status": "ok"}

    @app.get("/readyz", responses=problem_responses)
    async def readyz() -> Any:
        service.d.store.ping()
        return {"status": "ready"}

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


__all__ = ["create_app"]
