"""The HTTP edge of ``qev serve`` under abuse: every finding of the edge issue, over real
uvicorn configured by ``uvicorn_config`` (in a thread, or a process of its own where a
resource limit or its RSS is measured).

Findings (uvicorn defaults): idle and slow sockets never closed; a 32 MiB header accepted;
unfinished 8 MiB heads grew RSS by 180 MiB; at 256 fds, 260 idle sockets locked everyone
out; throwaway-key bids each forced a blocking chain read that queued ahead of real bids;
``X-Forwarded-For`` believed from loopback; ``/readyz`` ready while every bid got 503.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import pickle
import re
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from clearing.api import edge_limits
from clearing.api.edge_limits import (
    EdgeConfig,
    EdgeHttpToolsProtocol,
    EdgeProtocol,
    trusted_proxy_list,
    uvicorn_config,
)
from clearing.redemptions import RedemptionInfo
from clearing.signing import Signer
from clearing.store import open_store
from clearing.store.base import PutBid
from tests.conftest import make_key
from tests.faults.edge_support import (
    E18,
    SlowChain,
    bid_body,
    connect,
    domain_of,
    edge_settings,
    open_fds,
    rss_kib,
    served_app,
    server_process,
    serving,
    wait_closed,
)
from tests.integration.conftest import AUCTION

HEADER_TIMEOUT = 1.0
MARGIN = 3.0  # seconds of slack on top of a timeout (loaded CI machines)


@pytest.fixture(params=["httptools", "h11"])
def protocol(request, monkeypatch):
    """Each edge protocol in turn for the servers this test starts in a thread (``serving``):
    the httptools one ``qev serve`` runs, and the h11 one used without httptools."""
    chosen = EdgeHttpToolsProtocol if request.param == "httptools" else EdgeProtocol
    monkeypatch.setattr(edge_limits, "edge_protocol", lambda: chosen)
    return chosen


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory):
    """The service in a process of its own with RLIMIT_NOFILE 256 (its RSS is its own)."""
    data = tmp_path_factory.mktemp("tight")
    with server_process(data, nofile=256, header_timeout=HEADER_TIMEOUT) as served:
        yield served


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _problem(raw: bytes) -> tuple[int, str]:
    """Status and problem code of a raw HTTP response."""
    status = int(raw.split(b" ", 2)[1])
    code = re.search(rb'"code":"([a-z_]+)"', raw)
    return status, code.group(1).decode() if code else ""


# --- configuration --------------------------------------------------------------------


def test_uvicorn_config_applies_the_edge_settings(tmp_path):
    settings = edge_settings(
        tmp_path,
        max_header_bytes=8192,
        keep_alive_timeout=2.5,
        max_connections=77,
        trusted_proxies=["10.0.0.0/8", "192.168.1.1"],
    )
    config = uvicorn_config("qev.commands.serve:serve_app", settings, factory=True, port=9)
    assert isinstance(config, EdgeConfig)
    assert config.http is EdgeHttpToolsProtocol and config.h11_max_incomplete_event_size == 8192
    assert config.access_log is False and config.proxy_headers is True
    assert config.forwarded_allow_ips == ["10.0.0.0/8", "192.168.1.1"]
    assert config.edge.keep_alive_timeout == 2.5 and config.edge.max_connections == 77
    assert (config.host, config.port, config.factory) == (settings.host, 9, True)
    # picklable: run_workers spawns worker processes with it
    again = pickle.loads(pickle.dumps(config))
    assert again.edge == config.edge and again.http is EdgeHttpToolsProtocol
    # no trusted proxy: X-Forwarded-For is never read
    plain = uvicorn_config("x:y", edge_settings(tmp_path))
    assert plain.proxy_headers is False and plain.forwarded_allow_ips == ""
    with pytest.raises(ValueError, match="not an IP address"):
        trusted_proxy_list(["10.0.0.0/8", "proxy.internal"])


# --- idle, slow and oversized clients ---------------------------------------------------


def test_idle_and_slow_sockets_are_closed_by_the_server(tmp_path, protocol):
    """300 sockets: 200 silent, 60 with half a request head, 20 dribbling a head a byte at
    a time, 20 with a head and half a body. All closed within the timeouts (+ margin);
    those that sent something are told ``408 request_timeout``."""
    settings = edge_settings(tmp_path, header_timeout=HEADER_TIMEOUT, body_timeout=1.0)
    with serving(served_app(settings), settings) as url:
        port = _port(url)
        opened = time.monotonic()
        idle = [connect(port) for _ in range(200)]
        half = [connect(port) for _ in range(60)]
        for s in half:
            s.send(b"GET /healthz HTTP/1.1\r\nHost: qev\r\n")
        dribble = [connect(port) for _ in range(20)]
        body = [connect(port) for _ in range(20)]
        for s in body:
            s.send(
                b"POST /v1/auctions/1/bids HTTP/1.1\r\nHost: qev\r\nContent-Type: "
                b'application/json\r\nContent-Length: 100\r\n\r\n{"redemption_id"'
            )
        stop = threading.Event()

        def trickle() -> None:  # one byte every 0.2 s: never a complete head
            line = b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 200
            for i in range(len(line)):
                if stop.wait(0.2):
                    return
                for s in dribble:
                    with contextlib.suppress(OSError):  # closed by the server
                        s.send(line[i : i + 1])

        dribbler = threading.Thread(target=trickle, daemon=True)
        dribbler.start()
        everyone = idle + half + dribble + body
        try:
            closed, received = wait_closed(everyone, opened + HEADER_TIMEOUT + MARGIN)
        finally:
            stop.set()
            dribbler.join(5)
        took = max(closed.values(), default=0) - opened
        print(f"\n300 idle/slow sockets: all closed {took:.2f} s after the first opened")
        assert len(closed) == 300, f"{300 - len(closed)} sockets still open"
        assert all(received[s] == b"" for s in idle)
        for s in half + dribble + body:
            assert _problem(received[s]) == (408, "request_timeout")
        assert took < HEADER_TIMEOUT + MARGIN
        for s in everyone:
            s.close()
        # the server still serves, and an idle keep-alive connection is closed after 1 s
        with httpx.Client(base_url=url) as client:
            assert client.get("/healthz").status_code == 200
            time.sleep(settings.keep_alive_timeout + 0.5)
            assert client.get("/healthz").status_code == 200  # a new connection
        ka = connect(port)
        ka.send(b"GET /healthz HTTP/1.1\r\nHost: qev\r\n\r\n")
        start = time.monotonic()
        closed, received = wait_closed([ka], start + settings.keep_alive_timeout + MARGIN)
        assert received[ka].startswith(b"HTTP/1.1 200") and ka in closed
        ka.close()


def test_oversized_head_is_refused_without_reading_it(tmp_path, tight_server, protocol):
    """A 1 MiB header: 431 (or a reset once the server closed); RSS of a server process
    stays flat under 20 unfinished 8 MiB heads."""
    settings = edge_settings(tmp_path / "thread")
    with serving(served_app(settings), settings) as url:
        port = _port(url)
        s = connect(port)
        s.send(b"GET /healthz HTTP/1.1\r\nHost: qev\r\nX-Big: " + b"a" * 65536)
        _, received = wait_closed([s], time.monotonic() + 5)
        assert _problem(received[s]) == (431, "headers_too_large")
        s.close()
        # a head in two reads, the second carrying a body larger than the head cap: only
        # the head counts (the body is the application's: 400 malformed JSON, never 431)
        body = b"{" + b"x" * (settings.max_header_bytes + 4096)
        s = connect(port)
        s.send(b"POST /v1/auctions/1/bids HTTP/1.1\r\nHost: qev\r\n")
        time.sleep(0.05)
        s.send(
            b"Content-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        _, received = wait_closed([s], time.monotonic() + 5)
        status, code = _problem(received[s])
        assert status != 431 and code != "headers_too_large", received[s][:200]
        s.close()
        big = socket.create_connection(("127.0.0.1", port), timeout=5)
        answer = b""
        with contextlib.suppress(OSError):  # the server closed while we were still sending
            big.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: qev\r\nX-Big: " + b"a" * 2**20 + b"\r\n\r\n"
            )
        try:
            while chunk := big.recv(65536):
                answer += chunk
        except OSError:
            pass
        big.close()
        assert answer == b"" or _problem(answer)[0] in (400, 431)

    url, proc = tight_server
    port = _port(url)
    for _ in range(20):  # warm up: the baseline holds the usual request allocations
        assert httpx.get(url + "/healthz", timeout=2).status_code == 200
    before = rss_kib(proc.pid)
    head = b"GET /healthz HTTP/1.1\r\nHost: qev\r\nX-Big: " + b"a" * (8 * 2**20)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    refused = 0

    def push(s: socket.socket) -> bool:
        try:
            s.sendall(head)  # never completed: no blank line
        except OSError:
            return True
        return False

    with ThreadPoolExecutor(20) as pool:
        refused = sum(pool.map(push, socks))
    after = rss_kib(proc.pid)
    for s in socks:
        s.close()
    grew = (after["VmRSS"] - before["VmRSS"]) / 1024
    peak = (after["VmHWM"] - before["VmHWM"]) / 1024
    print(
        f"\n20 unfinished 8 MiB heads: RSS {before['VmRSS'] / 1024:.1f} -> "
        f"{after['VmRSS'] / 1024:.1f} MiB (+{grew:.1f}), peak +{peak:.1f} MiB, "
        f"{refused} sends cut off by the server"
    )
    assert refused == 20  # the server closed every one before 8 MiB were taken
    assert grew < 8 and peak < 16


def test_idle_sockets_cannot_exhaust_file_descriptors(tight_server):
    """RLIMIT_NOFILE 256, 260 idle sockets: a new client's /healthz answers within
    header_timeout + a few seconds (sockets over the cap are refused 503 at once)."""
    url, proc = tight_server
    port = _port(url)
    idle = [connect(port) for _ in range(260)]
    opened = time.monotonic()
    time.sleep(0.2)
    fds = open_fds(proc.pid)  # the server's, with the idle sockets it accepted
    answered_at = None
    while time.monotonic() < opened + HEADER_TIMEOUT + MARGIN:
        with contextlib.suppress(httpx.HTTPError):  # refused or reset: try again
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                answered_at = time.monotonic()
                break
        time.sleep(0.05)
    closed, received = wait_closed(idle, time.monotonic() + HEADER_TIMEOUT + MARGIN)
    overloaded = sum(_problem(b)[1] == "overloaded" for b in received.values() if b)
    for s in idle:
        s.close()
    assert answered_at is not None, "a new client was locked out"
    print(
        f"\nfd limit 256, 260 idle sockets: /healthz answered after "
        f"{answered_at - opened:.2f} s; {overloaded} refused 503 at once; server fds {fds}"
    )
    assert answered_at - opened < HEADER_TIMEOUT + MARGIN
    assert overloaded > 0 and len(closed) == 260


# --- chain reads for junk bids ----------------------------------------------------------


def test_junk_bids_cannot_delay_a_valid_bid_and_spend_only_their_budget(tmp_path):
    """24 throwaway-key bids for unknown requests from one client (1 s RPC each) while a
    valid bid arrives from another: the valid bid does not wait for them; the junk client
    gets its budget of chain reads and then 429 before any read."""
    budget = 6
    holder = Signer(make_key("edge-holder"))
    chain = SlowChain({5: RedemptionInfo(5, holder.address, 10 * E18, AUCTION - 86_400)}, 1.0)
    settings = edge_settings(tmp_path, controller_lookup_budget=budget, chain_read_timeout=3.0)
    domain = domain_of(settings)
    junk = [
        bid_body(Signer(hashlib.sha256(b"junk%d" % i).digest()), domain, 10_000 + i)
        for i in range(24)
    ]
    with serving(served_app(settings, chain), settings) as url:
        attacker = httpx.Client(
            base_url=url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10
        )
        honest = httpx.Client(
            base_url=url, transport=httpx.HTTPTransport(local_address="127.0.0.3"), timeout=10
        )
        path = f"/v1/auctions/{AUCTION}/bids"
        with attacker, honest, ThreadPoolExecutor(24) as pool:
            flood = [pool.submit(attacker.post, path, json=body) for body in junk]
            time.sleep(0.3)  # the junk reads are running
            started = time.monotonic()
            valid = honest.post(path, json=bid_body(holder, domain, 5))
            delay = time.monotonic() - started
            answers = [f.result() for f in flood]
            print(f"\nvalid bid under 24 junk bids (1 s RPC): answered in {delay * 1000:.0f} ms")
            assert valid.status_code == 201, valid.text
            assert delay < chain.delay  # never queued behind a junk read
            codes = sorted(r.json()["code"] for r in answers)
            assert codes == ["not_controller"] * budget + ["rate_limited"] * (24 - budget)
            assert chain.unknown_reads() == budget
            limited = next(r for r in answers if r.status_code == 429)
            assert int(limited.headers["retry-after"]) >= 1
            # over budget: refused before any chain read
            more = attacker.post(path, json=bid_body(Signer(make_key("junk-x")), domain, 99_999))
            assert (more.status_code, more.json()["code"]) == (429, "rate_limited")
            assert chain.unknown_reads() == budget
            # another client has a budget of its own
            other = honest.post(path, json=bid_body(Signer(make_key("junk-y")), domain, 88_888))
            assert other.json()["code"] == "not_controller"
            assert chain.unknown_reads() == budget + 1


# --- GET /bids/{rid} reads only what it returns -----------------------------------------


def test_bid_status_time_is_flat_in_the_history(tmp_path):
    """10 vs 30,000 envelopes of one redemption id: the same median time (factor 3)."""
    settings = edge_settings(tmp_path)
    store = open_store(settings.store())
    store.migrate()
    controller = Signer(make_key("edge-history")).address

    def fill(redemption_id: int, count: int) -> None:
        for start in range(0, count, 2000):
            ops = []
            for n in range(start, min(count, start + 2000)):
                ct = hashlib.sha256(b"%d:%d" % (redemption_id, n)).digest()
                ops.append(
                    PutBid(AUCTION, redemption_id, controller, ct, ct, b"\x01" * 65, AUCTION - 9)
                )
            store.apply(ops)

    fill(1, 10)
    fill(2, 30_000)
    app = served_app(settings, store=store)
    with serving(app, settings) as url, httpx.Client(base_url=url) as client:

        def get_seconds(redemption_id: int) -> float:
            started = time.perf_counter()
            r = client.get(f"/v1/auctions/{AUCTION}/bids/{redemption_id}")
            took = time.perf_counter() - started
            assert r.status_code == 200
            return took

        latest = client.get(f"/v1/auctions/{AUCTION}/bids/2").json()
        assert latest["receipt"]["sequence"] == 30_010 and latest["status"] == "live"
        for _ in range(10):  # warm up
            get_seconds(1)
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(50):  # interleaved, so drift hits both alike
            for rid in (1, 2):
                times[rid].append(get_seconds(rid))
        small, large = (statistics.median(times[rid]) * 1000 for rid in (1, 2))
        print(f"\nGET /bids/{{rid}} median: {small:.2f} ms (10 rows), {large:.2f} ms (30,000 rows)")
        assert large < 3 * small


# --- X-Forwarded-For --------------------------------------------------------------------


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="qev.access")
    path = f"/v1/auctions/{AUCTION}"
    limits = {"client_rate": 0.001, "client_burst": 2}
    direct = edge_settings(tmp_path / "direct", **limits)
    with serving(served_app(direct), direct) as url, httpx.Client(base_url=url) as client:
        statuses = [
            client.get(path, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(3)
        ]
        assert statuses == [200, 200, 429]  # one bucket: the real peer's
    clients = {r.client for r in caplog.records if r.name == "qev.access"}
    assert clients == {"127.0.0.1"}

    caplog.clear()
    proxied = edge_settings(tmp_path / "proxied", trusted_proxies=["127.0.0.0/8"], **limits)
    with serving(served_app(proxied), proxied) as url, httpx.Client(base_url=url) as client:
        statuses = [
            client.get(path, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(3)
        ]
        assert statuses == [200, 200, 200]  # a bucket per forwarded client
        same = [
            client.get(path, headers={"X-Forwarded-For": "198.51.100.7"}).status_code
            for _ in range(3)
        ]
        assert same == [200, 200, 429]
    clients = {r.client for r in caplog.records if r.name == "qev.access"}
    assert clients == {"203.0.113.0", "203.0.113.1", "203.0.113.2", "198.51.100.7"}


# --- readiness covers the chain ---------------------------------------------------------


def test_readyz_reports_the_chain(tmp_path):
    state = {"fail": True, "hang": False, "calls": 0}
    secret_url = "https://eth-mainnet.example/v2/SECRET-API-KEY"

    def probe() -> None:
        state["calls"] += 1
        if state["hang"]:
            time.sleep(1.2)
        if state["fail"]:
            raise ConnectionError(f"HTTPSConnectionPool: {secret_url} refused")

    settings = edge_settings(tmp_path, chain_read_timeout=0.5)
    app = served_app(settings, chain_probe=probe)
    with serving(app, settings) as url, httpx.Client(base_url=url) as client:
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.headers["content-type"].startswith("application/problem+json")
        body = down.json()
        assert body["code"] == "chain_unavailable"
        assert "http" not in body["detail"] and "SECRET" not in body["detail"]
        assert "SECRET" not in down.text
        # a burst of probes within the cache time makes no further chain read
        with ThreadPoolExecutor(10) as pool:
            burst = list(pool.map(lambda _: client.get("/readyz").status_code, range(20)))
        assert burst == [503] * 20 and state["calls"] == 1
        state["fail"] = False
        time.sleep(2.1)
        assert client.get("/readyz").status_code == 200 and state["calls"] == 2
        # a hanging RPC: 503 within the chain read timeout, and no second probe thread
        state["hang"] = True
        time.sleep(2.1)
        started = time.monotonic()
        hung = client.get("/readyz")
        assert hung.json()["code"] == "chain_unavailable"
        assert time.monotonic() - started < 2.0
        assert "0.5 s" in hung.json()["detail"]


# --- request ids and the access log -----------------------------------------------------


def test_request_id_is_echoed_and_every_request_logged(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="qev.access")
    holder = Signer(make_key("edge-rid"))
    chain = SlowChain({8: RedemptionInfo(8, holder.address, 10 * E18, AUCTION - 86_400)}, 0.0)
    settings = edge_settings(tmp_path)
    with serving(served_app(settings, chain), settings) as url, httpx.Client(base_url=url) as c:
        ok = c.get("/healthz", headers={"X-Request-Id": "trace-1.A_b"})
        assert ok.headers["x-request-id"] == "trace-1.A_b"
        for bad in ("x" * 65, "has space", "semi;colon"):
            generated = c.get("/healthz", headers={"X-Request-Id": bad}).headers["x-request-id"]
            assert re.fullmatch("[0-9a-f]{32}", generated)
        missing = c.get("/nowhere")
        assert missing.status_code == 404 and re.fullmatch(
            "[0-9a-f]{32}", missing.headers["x-request-id"]
        )
        # the fast path, a refusal on it, and the framework route all carry it
        bid = c.post(
            f"/v1/auctions/{AUCTION}/bids",
            json=bid_body(holder, domain_of(settings), 8),
            headers={"X-Request-Id": "bid-1"},
        )
        assert bid.status_code == 201 and bid.headers["x-request-id"] == "bid-1"
        junk = c.post(
            f"/v1/auctions/{AUCTION}/bids", content=b"{}", headers={"X-Request-Id": "bid-2"}
        )
        assert junk.status_code == 400 and junk.headers["x-request-id"] == "bid-2"
        too_big = c.post(
            "/v1/auctions/1/bids/1", content=b"x" * 5000, headers={"X-Request-Id": "big"}
        )
        assert too_big.status_code == 413 and too_big.headers["x-request-id"] == "big"
    records = [r for r in caplog.records if r.name == "qev.access"]
    assert all(r.getMessage() == "request" and r.levelno == logging.INFO for r in records)
    by_id = {r.request_id: r for r in records}
    assert len(records) == 8 and len(by_id) == 8
    first = by_id["trace-1.A_b"]
    assert (first.method, first.path, first.status, first.client) == (
        "GET",
        "/healthz",
        200,
        "127.0.0.1",
    )
    assert isinstance(first.duration_ms, float) and first.duration_ms >= 0
    assert (by_id["bid-1"].method, by_id["bid-1"].status) == ("POST", 201)
    assert by_id["bid-2"].status == 400 and by_id["big"].status == 413
    assert by_id[missing.headers["x-request-id"]].status == 404

    # access_log=False: no records (and nothing formatted)
    caplog.clear()
    quiet = edge_settings(tmp_path / "quiet", access_log=False)
    with serving(served_app(quiet), quiet) as url:
        assert httpx.get(url + "/healthz").headers["x-request-id"]
    assert not [r for r in caplog.records if r.name == "qev.access"]
