"""The page the operator cannot quietly change: headers, SRI, the published hash, CORS.

Against a real service (uvicorn) serving the committed bundle: a strict CSP on every page
response, every asset pinned by a Subresource-Integrity hash that matches the bytes served,
``web_bundle_sha256`` equal to what ``scripts/build-web --hash`` computes from the files,
no inline script anywhere, CORS off by default and exact when configured.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from clearing.api.webpage import (
    STATIC,
    WebBundle,
    WebBundleError,
    bundle_sha256,
    content_security_policy,
    install_webpage,
    origin_of,
)
from clearing.bidding import seal_bid
from clearing.eip712 import Eip712Domain
from clearing.hexcodec import from_hex, parse_address
from clearing.model import Bid
from tests.integration.conftest import AUCTION, envelope_body

ROOT = Path(__file__).resolve().parents[2]


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script>/<style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("script", "style") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in and data.strip():
            self.inline.append(data)


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_page_headers_sri_and_published_hash(web_app):
    svc = web_app()
    with httpx.Client(base_url=svc.url) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        csp = directives(page.headers["content-security-policy"])
        assert csp["default-src"] == ["'none'"]
        assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no host
        assert csp["style-src"] == ["'self'"]
        assert csp["connect-src"] == ["'self'"]  # no RPC configured: the wallet reads the chain
        assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        assert csp["object-src"] == ["'none'"] and csp["form-action"] == ["'none'"]
        assert csp["require-trusted-types-for"] == ["'script'"]
        for values in csp.values():
            assert not any(v.startswith(("http:", "https:", "*", "'unsafe")) for v in values)
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cross-origin-opener-policy"] == "same-origin"
        assert "access-control-allow-origin" not in page.headers

        tags = Tags()
        tags.feed(page.text)
        assert tags.inline == []  # no inline script or style
        assets = []
        for tag, attrs in tags.tags:
            assert not any(name.startswith("on") for name in attrs), (tag, attrs)  # no handlers
            if tag == "script":
                assert attrs.get("src") and attrs.get("integrity"), attrs
                assert attrs.get("crossorigin") == "anonymous"
                assets.append((attrs["src"], attrs["integrity"]))
            if tag == "link" and attrs.get("rel") == "stylesheet":
                assert attrs.get("integrity"), attrs
                assets.append((attrs["href"], attrs["integrity"]))
            for name in ("src", "href"):
                value = attrs.get(name) or ""
                assert "//" not in value and not value.startswith(("http", "data:")), value
        assert sorted(src for src, _ in assets) == ["assets/app.css", "assets/app.js"]

        served = {"index.html": page.content}
        for src, integrity in assets:
            response = http.get("/" + src)
            assert response.status_code == 200
            assert sri(response.content) == integrity  # what the browser checks
            assert response.content == (STATIC / src).read_bytes()
            assert (
                response.headers["content-security-policy"]
                == page.headers["content-security-policy"]
            )
            assert response.headers["x-content-type-options"] == "nosniff"
            served[src] = response.content
        assert http.get("/assets/app.js").headers["content-type"].startswith("text/javascript")
        assert http.get("/assets/app.css").headers["content-type"].startswith("text/css")

        manifest = http.get("/web/bundle.json").json()
        committed = {
            p.relative_to(STATIC).as_posix(): p.read_bytes()
            for p in STATIC.rglob("*")
            if p.is_file()
        }
        assert set(manifest["files"]) == set(committed)
        for path, data in committed.items():
            assert manifest["files"][path]["sha256"] == hashlib.sha256(data).hexdigest()
            assert manifest["files"][path]["integrity"] == sri(data)
        for path, data in served.items():
            assert committed[path] == data
        published = manifest["web_bundle_sha256"]
        assert published == bundle_sha256(committed) == svc.app.state.web_bundle_sha256
        assert page.headers["x-qev-web-bundle-sha256"] == published
        assert manifest["rpc_url"] is None
        # the shell definition (sha256sum lines, paths in byte order) gives the same hash
        shell = subprocess.run(
            [str(ROOT / "scripts" / "build-web"), "--hash"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert shell.stdout.strip() == published

        # nothing else is served from the bundle directory
        for path in ("/assets/../index.html", "/assets/%2e%2e%2fwebpage.py", "/assets/nope.js"):
            assert http.get(path).status_code == 404, path
        assert http.get("/static/index.html").status_code == 404
        assert http.get("/favicon.ico").status_code == 204
        routes = len(svc.app.routes)
        assert install_webpage(svc.app).sha256 == published  # a second call changes nothing
        assert len(svc.app.routes) == routes
        # the page stays out of the API schema (schemathesis tests the API only)
        schema_paths = http.get("/openapi.json").json()["paths"]
        assert "/" not in schema_paths and "/assets/{name}" not in schema_paths


def test_public_rpc_goes_into_connect_src_without_its_path(web_app):
    svc = web_app(web_rpc_url="https://rpc.example.org:8443/v2/SECRETKEY")
    with httpx.Client(base_url=svc.url) as http:
        csp = directives(http.get("/").headers["content-security-policy"])
        assert csp["connect-src"] == ["'self'", "https://rpc.example.org:8443"]
        assert http.get("/web/bundle.json").json()["rpc_url"].startswith("https://rpc.example.org")
    assert origin_of("http://[::1]:8545/x") == "http://[::1]:8545"
    with pytest.raises(ValueError):
        content_security_policy("javascript:alert(1)")


def test_cors_is_off_by_default_and_exact_when_configured(web_app, tmp_path):
    default = web_app()
    allowed = "https://holders.example.org"
    cors = web_app(cors_origins=[allowed])
    with httpx.Client() as http:
        preflight = {
            "Origin": allowed,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        url = f"/v1/auctions/{AUCTION}/bids"
        assert (
            "access-control-allow-origin"
            not in http.options(default.url + url, headers=preflight).headers
        )
        assert (
            "access-control-allow-origin"
            not in http.get(
                default.url + "/v1/auctions/current", headers={"Origin": allowed}
            ).headers
        )

        answer = http.options(cors.url + url, headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == allowed
        assert "POST" in answer.headers["access-control-allow-methods"]
        stranger = http.options(
            cors.url + url, headers={**preflight, "Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in stranger.headers
        current = http.get(cors.url + "/v1/auctions/current", headers={"Origin": allowed})
        assert current.headers["access-control-allow-origin"] == allowed
        # the edge's fast path (POST /bids) answers with CORS too
        doc = current.json()
        domain = Eip712Domain(
            doc["eip712"]["name"],
            doc["eip712"]["version"],
            doc["chain_id"],
            parse_address(doc["settlement"]),
        )
        env = seal_bid(
            cors.holder, Bid(AUCTION, 7, 10**18, 250, 0), domain, from_hex(doc["public_key"], 32)
        )
        posted = http.post(cors.url + url, json=envelope_body(env), headers={"Origin": allowed})
        assert posted.status_code == 201, posted.text
        assert posted.headers["access-control-allow-origin"] == allowed
        assert "x-request-id" in posted.headers["access-control-expose-headers"].lower()


def test_a_tampered_asset_is_refused_at_startup(tmp_path):
    copy = tmp_path / "static"
    for p in STATIC.rglob("*"):
        if p.is_file():
            target = copy / p.relative_to(STATIC)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(p.read_bytes())
    assert WebBundle.load(copy).sha256 == WebBundle.load(STATIC).sha256
    js = copy / "assets" / "app.js"
    js.write_bytes(js.read_bytes() + b"\n// quietly changed\n")
    with pytest.raises(WebBundleError, match="does not match its integrity hash"):
        WebBundle.load(copy)
    (copy / "index.html").write_text(
        re.sub(r'integrity="[^"]+"', "", (copy / "index.html").read_text())
    )
    with pytest.raises(WebBundleError, match="names no asset"):
        WebBundle.load(copy)
    assert WebBundle.load(tmp_path / "nothing") is None
