"""A counting JSON-RPC proxy in front of anvil (its own process: ``python -m
benchmarks.month_proxy --port P --upstream URL``).

Every JSON-RPC call that passes is counted by method (a batch counts each of its calls, and
the HTTP requests are counted too); ``GET /__count`` answers the totals as JSON and is not
forwarded. Threaded, one keep-alive upstream connection per thread.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_local = threading.local()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else head and body meet the client's delayed ACK (40 ms)
    upstream: tuple[str, int] = ("127.0.0.1", 8545)

    def log_message(self, *_: object) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with _lock:
            body = json.dumps(dict(_counts)).encode()
        self._reply(200, body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body)
            calls = payload if isinstance(payload, list) else [payload]
            methods = [str(c.get("method")) for c in calls]
        except (ValueError, AttributeError):
            methods = ["<unparsed>"]
        with _lock:
            _counts["<http requests>"] += 1
            _counts.update(methods)
        for attempt in (0, 1):
            conn = getattr(_local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(*self.upstream, timeout=120)
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _local.conn = conn
            try:
                conn.request("POST", "/", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                self._reply(resp.status, data)
                return
            except (OSError, http.client.HTTPException):
                conn.close()
                _local.conn = None
                if attempt:
                    self._reply(502, b'{"error":"upstream"}')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    args = p.parse_args()
    u = urllib.parse.urlparse(args.upstream)
    Handler.upstream = (u.hostname or "127.0.0.1", u.port or 80)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
