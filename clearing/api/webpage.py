"""The holder's web page (docs/WEB.md): the committed bundle, its hash, SRI and CSP, and CORS.

``clearing/api/static/`` is built by ``scripts/build-web`` and committed; ``--check`` proves
it is a byte-for-byte rebuild of ``js/``. At startup the service reads it once and computes
``web_bundle_sha256`` (sha256 of the ``sha256sum`` lines of its files, in byte order of their
paths: ``scripts/build-web --hash`` prints the same), which it publishes and the page's
footer shows. Every asset the page loads carries a Subresource-Integrity hash in
``index.html``; here each asset is checked against that hash before it is served at all.

Served (outside the OpenAPI schema):

- ``GET /``: ``index.html`` with a strict Content-Security-Policy: scripts and styles from
  this origin only (no inline script, no third-party host), ``connect-src`` only ``'self'``
  and the configured public RPC, Trusted Types, no framing, no referrer.
- ``GET /assets/{name}``: the bundle's assets, same headers.
- ``GET /web/bundle.json``: ``web_bundle_sha256``, each file's sha256 and SRI, and the
  public RPC URL the page may read the chain through (``web_rpc_url``, optional).

CORS for pages hosted elsewhere: ``cors_origins`` (default none: same origin only).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from clearing.api import problems

STATIC = Path(__file__).with_name("static")
INDEX = "index.html"

log = logging.getLogger("qev.web")

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_INTEGRITY = re.compile(r'(?:src|href)="([^"]+)"\s+integrity="(sha384-[A-Za-z0-9+/=]+)"')


class WebBundleError(Exception):
    """The committed bundle is inconsistent (an asset does not match its SRI hash)."""


def sri(data: bytes) -> str:
    """The Subresource-Integrity value ``sha384-<base64>`` of ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def bundle_sha256(files: Mapping[str, bytes]) -> str:
    """sha256 of ``"<sha256 hex>  <path>\\n"`` per file, paths in byte order (``sha256sum``)."""
    lines = "".join(
        f"{hashlib.sha256(files[path]).hexdigest()}  {path}\n"
        for path in sorted(files, key=lambda p: p.encode())
    )
    return hashlib.sha256(lines.encode()).hexdigest()


@dataclass(frozen=True)
class WebBundle:
    """The page's files (relative path -> bytes) and the published hash."""

    files: dict[str, bytes]
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", bundle_sha256(self.files))

    @classmethod
    def load(cls, root: Path = STATIC) -> WebBundle | None:
        """Read every file under ``root`` (None if there is no ``index.html``) and check SRI."""
        if not (root / INDEX).is_file():
            return None
        files = {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        }
        bundle = cls(files)
        bundle.check_integrity()
        return bundle

    @property
    def index(self) -> bytes:
        return self.files[INDEX]

    def integrity_attributes(self) -> dict[str, str]:
        """``{asset path: sha384 SRI}`` as written in ``index.html``."""
        return {
            src.removeprefix("./").removeprefix("/"): value
            for src, value in _INTEGRITY.findall(self.index.decode())
        }

    def check_integrity(self) -> None:
        """Every asset named in ``index.html`` exists and matches its SRI hash."""
        named = self.integrity_attributes()
        if not named:
            raise WebBundleError("index.html names no asset with an integrity hash")
        for path, value in named.items():
            data = self.files.get(path)
            if data is None:
                raise WebBundleError(f"index.html names {path}, which is not in the bundle")
            if sri(data) != value:
                raise WebBundleError(f"{path} does not match its integrity hash in index.html")

    def manifest(self) -> dict[str, Any]:
        """``web_bundle_sha256`` and each file's sha256 and SRI."""
        return {
            "web_bundle_sha256": self.sha256,
            "files": {
                path: {"sha256": hashlib.sha256(data).hexdigest(), "integrity": sri(data)}
                for path, data in sorted(self.files.items())
            },
        }


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an http(s)/ws(s) URL (the path, maybe holding a key, dropped)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise ValueError(f"not an http(s) or ws(s) URL: {parts.scheme}://{parts.hostname or ''}")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def content_security_policy(rpc_url: str | None = None) -> str:
    """The page's CSP: this origin only, plus the public RPC's origin for ``connect-src``."""
    connect = "'self'" + (f" {origin_of(rpc_url)}" if rpc_url else "")
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            f"connect-src {connect}",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        )
    )


def security_headers(csp: str, bundle_hash: str) -> dict[str, str]:
    """Headers of every page response."""
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        "Cache-Control": "no-cache",
        "X-Qev-Web-Bundle-Sha256": bundle_hash,
    }


def _media_type(path: str) -> str:
    return MEDIA_TYPES.get(Path(path).suffix, "application/octet-stream")


def add_cors(app: FastAPI, origins: Iterable[str]) -> bool:
    """Let pages hosted at ``origins`` call the API (in front of the edge's fast path too)."""
    allowed = [o.rstrip("/") for o in origins if o]
    if not allowed:
        return False
    options: dict[str, Any] = {
        "allow_origins": allowed,
        "allow_methods": ["GET", "POST", "DELETE"],
        "allow_headers": ["content-type", "x-request-id"],
        "expose_headers": ["x-request-id", "retry-after"],
        "allow_credentials": False,
        "max_age": 600,
    }
    edge = getattr(app, "edge", None)
    if edge is not None:  # wrap the pure ASGI edge, so POST /bids answers carry CORS too
        app.edge = CORSMiddleware(edge, **options)  # type: ignore[attr-defined]
    else:
        app.add_middleware(CORSMiddleware, **options)
    return True


def install_webpage(
    app: FastAPI,
    settings: Any = None,
    *,
    bundle: WebBundle | None = None,
    root: Path = STATIC,
) -> WebBundle | None:
    """Serve the page at ``/`` (and its assets) on ``app``; returns the bundle (None if absent).

    Reads ``web_rpc_url`` (a public RPC URL the page may read the chain through, in
    ``connect-src``) and ``cors_origins`` (origins allowed to call the API; none by default)
    from ``settings`` when it has them. ``app.state.web_bundle_sha256`` is the published hash.
    A second call on the same app changes nothing.
    """
    if getattr(app.state, "web_installed", False):  # already wired (by build_app)
        installed: WebBundle | None = app.state.web_bundle
        return installed
    app.state.web_installed = True
    rpc_url: str | None = getattr(settings, "web_rpc_url", None) or None
    add_cors(app, getattr(settings, "cors_origins", None) or ())
    bundle = bundle or WebBundle.load(root)
    app.state.web_bundle = bundle
    app.state.web_bundle_sha256 = bundle.sha256 if bundle else None
    if bundle is None:
        log.warning("no web bundle in %s: the page is not served", root)
        return None
    headers = security_headers(content_security_policy(rpc_url), bundle.sha256)
    manifest = {**bundle.manifest(), "rpc_url": rpc_url}

    def page(path: str) -> Response:
        return Response(bundle.files[path], media_type=_media_type(path), headers=headers)

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return page(INDEX)

    @app.get("/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        path = f"assets/{name}"
        if not _ASSET_NAME.fullmatch(name) or path not in bundle.files:
            return problems.problem("not_found", f"no asset {name}")
        return page(path)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:  # browsers ask for it; the page has none
        return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})

    @app.get("/web/bundle.json", include_in_schema=False)
    def bundle_manifest() -> Any:
        return manifest

    log.info("web page served at /", extra={"web_bundle_sha256": bundle.sha256})
    return bundle


__all__ = [
    "STATIC",
    "WebBundle",
    "WebBundleError",
    "add_cors",
    "bundle_sha256",
    "content_security_policy",
    "install_webpage",
    "origin_of",
    "security_headers",
    "sri",
]
