"""The HTTP edge of ``qev serve``: uvicorn configured from ``ServiceSettings``.

uvicorn's defaults leave a public server open to cheap resource exhaustion: a connection
that never sends a request is kept for ever (uvicorn arms its keep-alive timer only after a
response), a client may trickle a request head or body for as long as it likes, httptools
(picked by ``http="auto"``) buffers a request head of any size, and ``X-Forwarded-For`` is
believed from anyone on loopback. ``uvicorn_config`` turns each edge setting into a bound,
enforced by ``EdgeHttpToolsProtocol`` (uvicorn's httptools protocol: a C parser) or, where
httptools is not installed, by ``EdgeProtocol`` (h11's):

* ``max_header_bytes``: the cap on an unfinished request head; a larger head is answered
  ``431 headers_too_large`` (a malformed one ``400 malformed``) and the connection closed,
  after reading at most one socket read past the cap;
* ``header_timeout``: a connection must deliver a complete request head within this many
  seconds of opening, or of its first byte after a keep-alive pause; otherwise it is closed
  (with ``408 request_timeout`` if it had sent part of a head, silently if nothing);
* ``body_timeout``: once the head is in, the body must arrive within this many seconds
  (``408``, and the application sees a disconnect);
* ``keep_alive_timeout``: an idle connection between requests is closed after this long;
* ``max_connections``: open connections per worker (lowered to leave file descriptors for
  the store and the chain client when ``RLIMIT_NOFILE`` is tight); one more is answered
  ``503 overloaded`` and closed at once, so the process never runs out of descriptors and
  idle sockets cannot lock clients out for longer than ``header_timeout``;
* ``trusted_proxies``: only these peers (IPs or CIDRs) may name the client in
  ``X-Forwarded-For``; none by default;
* a response's head is held until its body is written (``HeadWithBody``), so a small
  response leaves in one send, not two (httptools' protocol);
* ``access_log`` and ``log_level``: uvicorn's own access log stays off (the app's ``Edge``
  writes one structured ``qev.access`` record per request) and uvicorn installs no logging
  configuration of its own (``qev.logs`` configures the root logger).

The config is picklable (``run_workers`` spawns worker processes with it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # uvicorn[standard]: the C parser
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools not installed: h11 only
    HttpToolsProtocol = None  # type: ignore[assignment,misc]
from uvicorn.server import ServerState

from clearing.api.problems import raw_problem
from clearing.api.settings import ServiceSettings

log = logging.getLogger("qev.edge")

#: File descriptors kept free for everything but client sockets (store, RPC, logs...).
FD_RESERVE = 64
_WARN_EVERY = 10.0  # seconds between two "connection refused" warnings


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """The per-connection bounds ``EdgeProtocol`` enforces (seconds and counts)."""

    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float
    max_connections: int
    max_header_bytes: int


def connection_cap(configured: int) -> int:
    """``configured``, lowered so client sockets leave ``FD_RESERVE`` descriptors free."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not a POSIX system
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - min(FD_RESERVE, soft // 4)))


class EdgeConfig(uvicorn.Config):
    """A ``uvicorn.Config`` carrying the ``EdgeLimits`` to each ``EdgeProtocol``."""

    def __init__(self, app: Any, *, edge: EdgeLimits, **kwargs: Any) -> None:
        self.edge = edge
        self.connection_cap = edge.max_connections
        super().__init__(app, **kwargs)

    def load(self) -> None:
        """Load as uvicorn does; the connection cap is fixed here, in the serving process."""
        super().load()
        self.connection_cap = connection_cap(self.edge.max_connections)
        if self.connection_cap < self.edge.max_connections:
            log.warning(
                "max_connections lowered to the file descriptor limit",
                extra={"configured": self.edge.max_connections, "cap": self.connection_cap},
            )


class _EdgeBounds:
    """What both edge protocols share: the connection cap, one deadline per connection
    (the request head, then its body) and closing refusals written outside any ASGI cycle.

    Mixed into a uvicorn HTTP protocol, which provides ``transport``, ``loop``, ``cycle``,
    ``connections`` and ``timeout_keep_alive_task``.
    """

    _last_refusal_warning = 0.0
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    connections: set[Any]

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)  # type: ignore[call-arg]
        if not isinstance(config, EdgeConfig):
            raise TypeError(f"{type(self).__name__} needs the EdgeConfig of uvicorn_config()")
        self.limits = config.edge
        self.cap = config.connection_cap
        self.timeout_keep_alive = self.limits.keep_alive_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for = ""  # "head" or "body" while the deadline is armed

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self.cap:
            self._warn_refusal()
            self._refuse("overloaded", "too many open connections; retry shortly")
            return
        self._arm("head", self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _head_started(self) -> bool:
        """Whether part of a request head has arrived (408 then, else a silent close)."""
        raise NotImplementedError

    def _arm(self, what: str, seconds: float) -> None:
        self._disarm()
        self._waiting_for = what
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = ""

    def _expired(self) -> None:
        what = self._waiting_for
        self._deadline, self._waiting_for = None, ""
        if self.transport.is_closing():
            return
        if what == "head":
            if self._head_started():  # part of a head: tell the client why
                self._refuse("request_timeout", "request head not received in time")
            else:  # nothing sent: just close
                self._close()
            return
        cycle = self.cycle
        answered = cycle is not None and cycle.response_started
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application reads a disconnect, writes nothing
            cycle.message_event.set()
        if answered:
            self._close()
        else:
            self._refuse("request_timeout", "request body not received in time")

    def _refuse(self, code: str, detail: str) -> None:
        """Write a closing problem response (outside any ASGI cycle) and close."""
        self.transport.write(raw_problem(code, detail))
        self._close()

    def _close(self) -> None:
        self._disarm()
        self.transport.close()

    def _warn_refusal(self) -> None:
        now = time.monotonic()
        if now - _EdgeBounds._last_refusal_warning >= _WARN_EVERY:
            _EdgeBounds._last_refusal_warning = now
            log.warning("connection refused: too many open connections", extra={"cap": self.cap})


# (the keep-alive timeout is a float here: uvicorn's own is whole seconds)
class EdgeProtocol(_EdgeBounds, H11Protocol):  # type: ignore[misc]
    """uvicorn's h11 protocol with a connection cap and request head and body deadlines
    (used where httptools is not installed; ``EdgeHttpToolsProtocol`` otherwise).

    One timer per connection: armed for the head when the connection opens (and when the
    first byte of a request arrives after a keep-alive pause, which uvicorn's own
    keep-alive timer covers), re-armed for the body once the head is complete, cancelled
    once the whole request is in (the application's own time is not bounded here).
    """

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def send_400_response(self, msg: str) -> None:
        """Answer a request h11 refused: 431 for a head over the cap, else 400 (a problem)."""
        exc = sys.exc_info()[1]  # called from uvicorn's ``except h11.RemoteProtocolError``
        if isinstance(exc, h11.RemoteProtocolError) and exc.error_status_hint == 431:
            self._refuse(
                "headers_too_large", f"request head over {self.limits.max_header_bytes} bytes"
            )
        else:
            self._refuse("malformed", "invalid HTTP request")

    def _head_started(self) -> bool:
        return bool(self.conn.trailing_data[0])

    def _follow(self) -> None:
        """Arm, move or cancel the deadline for the state of the request being received."""
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # between requests uvicorn's keep-alive timer runs until the first byte arrives
            if self._waiting_for != "head" and self.timeout_keep_alive_task is None:
                self._arm("head", self.limits.header_timeout)
        elif state is h11.SEND_BODY:
            if self._waiting_for != "body":
                self._arm("body", self.limits.body_timeout)
        else:  # the whole request is in (or the connection is done with)
            self._disarm()


class HeadWithBody:
    """One response's view of the connection's transport: its first write (the status line
    and headers) is held until the next write (the body), or the end of this event loop
    iteration, so a whole small response leaves in one ``send`` (one segment for the
    client to read) instead of two.
    """

    __slots__ = ("_held", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        """Hold the first write; send anything later with whatever is held before it."""
        if not self._started:
            self._started, self._held = True, data
            self._loop.call_soon(self.flush)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def flush(self) -> None:
        """Send the held head now (a response whose body is not written at once)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        """Send what is held, then close the connection."""
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        """Whether the connection is closing (as ``asyncio.Transport.is_closing``)."""
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # the rest of the transport, unchanged
        return getattr(self._transport, name)


if HttpToolsProtocol is not None:

    class EdgeHttpToolsProtocol(_EdgeBounds, HttpToolsProtocol):  # type: ignore[valid-type,misc]
        """uvicorn's httptools protocol (a C parser: ~100 us less CPU per request than h11)
        with the same bounds as ``EdgeProtocol``.

        The request head is counted as it arrives (from the first byte of a request to its
        blank line): past ``max_header_bytes`` the connection is answered ``431`` and
        closed, after parsing at most one socket read past the cap. Deadlines follow the
        parser's callbacks: the head from the connection's opening (or a request's first
        byte after a keep-alive pause), the body from the end of the head, none once the
        whole request is in.
        """

        _in_head = False  # a request has begun and its head is not complete
        _head_bytes = 0

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_head and not self.transport.is_closing():
                # the head is still unfinished after this read: all of it counts (with the
                # tail of a pipelined request before it, at most: conservative)
                self._head_bytes += len(data)
                if self._head_bytes > self.limits.max_header_bytes:
                    self._too_large()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes = True, 0
            if self._waiting_for != "head":
                self._arm("head", self.limits.header_timeout)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()
            if self.cycle is not None:  # the response head leaves with its body
                self.cycle.transport = HeadWithBody(self.transport, self.loop)
            self._arm("body", self.limits.body_timeout)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._disarm()

        def send_400_response(self, msg: str) -> None:
            """Answer a request the parser refused: ``400 malformed`` (a problem)."""
            self._refuse("malformed", "invalid HTTP request")

        def _head_started(self) -> bool:
            return self._in_head

        def _too_large(self) -> None:
            self._in_head = False
            self._refuse(
                "headers_too_large", f"request head over {self.limits.max_header_bytes} bytes"
            )


def trusted_proxy_list(entries: list[str]) -> list[str]:
    """The ``trusted_proxies`` entries, each checked to be an IP address or a CIDR network.

    uvicorn would take anything else as a literal host name that never matches, silently;
    a typo here must stop the service instead.
    """
    checked = []
    for entry in entries:
        text = entry.strip()
        try:
            if "/" in text:
                ipaddress.ip_network(text, strict=False)
            else:
                ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(
                f"trusted_proxies: {entry!r} is not an IP address or CIDR network"
            ) from None
        checked.append(text)
    return checked


def edge_protocol() -> type[asyncio.Protocol]:
    """The HTTP protocol of the edge: httptools' when installed (uvicorn[standard]), else
    h11's; both enforce the same ``EdgeLimits``."""
    return EdgeHttpToolsProtocol if HttpToolsProtocol is not None else EdgeProtocol


def uvicorn_config(
    app_or_import_string: Any,
    settings: ServiceSettings,
    *,
    factory: bool = False,
    host: str | None = None,
    port: int | None = None,
) -> uvicorn.Config:
    """The uvicorn config of the service with every edge setting of ``settings`` applied.

    ``host`` and ``port`` default to the settings'. Serve it with ``uvicorn.Server(config)``
    or ``run_workers(config, n)`` (then the app must be an import string).
    """
    proxies = trusted_proxy_list(settings.trusted_proxies)
    limits = EdgeLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        keep_alive_timeout=settings.keep_alive_timeout,
        max_connections=settings.max_connections,
        max_header_bytes=settings.max_header_bytes,
    )
    return EdgeConfig(
        app_or_import_string,
        edge=limits,
        factory=factory,
        host=settings.host if host is None else host,
        port=settings.port if port is None else port,
        http=edge_protocol(),
        ws="none",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=max(1, math.ceil(settings.keep_alive_timeout)),  # exact: protocol
        limit_concurrency=None,  # the cap is enforced as connections open (EdgeProtocol)
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or "",
        access_log=False,  # the app's Edge writes the access log ("qev.access")
        log_config=None,  # logging is configured by the command (qev.logs), not uvicorn
        log_level=settings.log_level.lower(),
    )


__all__ = [
    "EdgeConfig",
    "EdgeHttpToolsProtocol",
    "EdgeLimits",
    "EdgeProtocol",
    "HeadWithBody",
    "connection_cap",
    "edge_protocol",
    "trusted_proxy_list",
    "uvicorn_config",
]
