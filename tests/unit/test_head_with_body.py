"""A response's head leaves with its body: one transport write per small response.

The protocol tests drive the real ``EdgeHttpToolsProtocol`` (uvicorn's httptools protocol
with the edge bounds) over a transport that records each write, so they count the sends a
client would see without the timing of a socket in between.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from clearing.api.edge_limits import EdgeHttpToolsProtocol, HeadWithBody, uvicorn_config
from clearing.api.settings import ServiceSettings

REQUEST = b"GET /thing HTTP/1.1\r\nHost: qev.test\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """Records every write; knows the peer and local addresses uvicorn asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.9", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )


def protocol_for(app: Any) -> EdgeHttpToolsProtocol:
    from uvicorn.server import ServerState

    config = uvicorn_config(app, ServiceSettings(), host="127.0.0.1", port=8000)
    config.load()
    return EdgeHttpToolsProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )


async def settle(transport: RecordingTransport, writes: int) -> None:
    """Run the loop until ``transport`` has ``writes`` writes (or fail after 2 s)."""
    for _ in range(2000):
        if len(transport.writes) >= writes:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"expected {writes} writes, got {transport.writes}")


def test_a_small_response_leaves_in_one_write():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    async def main() -> list[bytes]:
        transport = RecordingTransport()
        protocol = protocol_for(app)
        protocol.connection_made(transport)
        protocol.data_received(REQUEST)
        await settle(transport, 1)
        await asyncio.sleep(0.02)  # nothing else follows
        protocol.connection_lost(None)
        return transport.writes

    writes = asyncio.run(main())
    assert len(writes) == 1, writes
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"content-length: 11" in head
    assert body == b'{"ok":true}'


def test_a_head_whose_body_comes_later_is_not_held_back():
    async def main() -> tuple[list[bytes], list[bytes]]:
        release = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"4")],
                }
            )
            await release.wait()
            await send({"type": "http.response.body", "body": b"late"})

        transport = RecordingTransport()
        protocol = protocol_for(app)
        protocol.connection_made(transport)
        protocol.data_received(REQUEST)
        await settle(transport, 1)
        before = list(transport.writes)  # the head, sent at the end of its loop iteration
        release.set()
        await settle(transport, 2)
        protocol.connection_lost(None)
        return before, transport.writes

    before, writes = asyncio.run(main())
    assert len(before) == 1 and before[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert before[0].endswith(b"\r\n\r\n")
    assert writes == [before[0], b"late"]


def test_close_sends_what_is_held_first_and_other_calls_reach_the_transport():
    async def main() -> RecordingTransport:
        transport = RecordingTransport()
        view = HeadWithBody(transport, asyncio.get_running_loop())
        view.write(b"head")
        assert transport.writes == []  # held
        assert view.get_extra_info("peername") == ("127.0.0.9", 40000)
        view.pause_reading()
        assert not transport.reading
        view.close()
        assert view.is_closing()
        await asyncio.sleep(0)  # the scheduled flush finds nothing held: no write after close
        return transport

    transport = asyncio.run(main())
    assert transport.writes == [b"head"] and transport.closed


@pytest.mark.parametrize("parts", [[b"a"], [b"a", b"b"], [b"a", b"b", b"c", b"d"]])
def test_every_write_arrives_once_and_in_order(parts):
    async def main() -> list[bytes]:
        transport = RecordingTransport()
        view = HeadWithBody(transport, asyncio.get_running_loop())
        for part in parts:
            view.write(part)
        await asyncio.sleep(0)
        return transport.writes

    writes = asyncio.run(main())
    assert b"".join(writes) == b"".join(parts)
    assert len(writes) == max(1, len(parts) - 1)  # the first two leave together
