"""The HTTP side (aiohttp): the signed capability document, a health check, dev static files.

``GET /.well-known/willow`` returns JSON::

    {"capabilities": {...}, "signature": "<128 hex digits>"}

**Signature scheme.** ``signature`` is the relay's Ed25519 signature over the canonical CBOR
(``willow_core.encoding.encode``, RFC 8949 section 4.2) of the two-element array
``["willow/relay-capabilities/v1", capabilities]``, where ``capabilities`` is the JSON object as
parsed (it holds only objects with string keys, arrays, strings, integers and booleans, so it
maps one-to-one onto CBOR). The signing key is ``capabilities["key"]`` (hex), the same key the
relay presents in HELLO, so a client can pin the relay it fetched the document from and check it
is the one it then connects to (``verify_capabilities``). The document holds no timestamp and
the signature is deterministic, so the response (and its ``ETag``, a hash of the body) is stable
for as long as the relay's key, ports and limits are.

``GET /healthz`` returns ``{"status": "ok", ...counters}``. With a ``static_dir`` (the web app
built by ``build.py``) every other path serves files from that directory, ``/`` serving
``index.html``, with the content types browsers insist on (module scripts as JavaScript, wasm
as ``application/wasm``) and caching to match how the site is built: assets whose path carries
a content hash never change, so they are cacheable for a year; everything else (the HTML pages)
is revalidated on every load, so a rebuilt site is picked up at once. Access logging is off:
the relay keeps no record of who fetched what.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from willow_core import crypto
from willow_core.encoding import encode
from willow_core.identity import Identity
from willow_core.wire import AUTH_TAG, ENVELOPE_TAG

from .limits import Limits

__all__ = [
    "CAPABILITIES_TAG",
    "PROTOCOL",
    "WELL_KNOWN_PATH",
    "capability_document",
    "capability_message",
    "sign_capabilities",
    "verify_capabilities",
    "make_app",
]

CAPABILITIES_TAG = "willow/relay-capabilities/v1"
#: The frame protocol of willow_core.wire (HELLO/AUTH/READY/SUBSCRIBE/UNSUBSCRIBE/PUBLISH/ERROR).
PROTOCOL = "willow-relay/1"
WELL_KNOWN_PATH = "/.well-known/willow"
#: Clients may cache the document this long; it changes only when the relay is reconfigured.
CACHE_SECONDS = 300
SOFTWARE = "willow-relay/0.1.0"
#: What this relay does beyond forwarding (the enabled transports are appended by name).
FEATURES = ("pubsub", "inbox-rule", "envelope-verification")

#: Content types of the web app's files, by suffix (guesses differ between systems).
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
}
#: build.py names every asset by content: 16 hex digits as a directory or a file-name part.
HASHED_ASSET = re.compile(r"(?:^|[/.])[0-9a-f]{16}[/.]")
#: A hashed asset's bytes never change under its name: cache it for a year, never revalidate.
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
#: Everything else (index.html) may change with a rebuild: revalidate on every use.
REVALIDATE_CACHE = "no-cache"

JsonObject = dict[str, Any]


def capability_document(
    key: bytes,
    limits: Limits,
    *,
    ws_port: int | None,
    tcp_port: int | None,
    services: Sequence[tuple[str, bytes]] = (),
) -> JsonObject:
    """The relay's self-description. ``services`` names the workers its operator runs (role,
    key): a client founding a community grants them SyncProvider so they store and replay it;
    the relay itself stays unable to read or change anything."""
    transports: JsonObject = {}
    if ws_port is not None:
        transports["websocket"] = {"port": ws_port, "path": "/", "message": "binary frame"}
    if tcp_port is not None:
        transports["tcp"] = {"port": tcp_port, "framing": "u32-be-length"}
    return {
        "software": SOFTWARE,
        "key": key.hex(),
        "protocols": [PROTOCOL],
        "envelope": ENVELOPE_TAG,
        "auth": AUTH_TAG,
        "transports": transports,
        "limits": limits.document(),
        "features": [*FEATURES, *sorted(transports)],
        "authority": "none",
        "services": [{"role": role, "key": k.hex()} for role, k in services],
    }


def capability_message(capabilities: JsonObject) -> bytes:
    """The bytes the signature covers."""
    return encode([CAPABILITIES_TAG, capabilities])


def sign_capabilities(identity: Identity, capabilities: JsonObject) -> JsonObject:
    if capabilities["key"] != identity.public_key.hex():
        raise ValueError("the document must name the signing key")
    signature = identity.sign(capability_message(capabilities))
    return {"capabilities": capabilities, "signature": signature.hex()}


def verify_capabilities(served: object, expected_key: bytes | None = None) -> bool:
    """Whether a fetched document is well-formed and signed by the key it names (and that key
    is ``expected_key`` when given)."""
    if not isinstance(served, dict):
        return False
    capabilities, signature = served.get("capabilities"), served.get("signature")
    if not isinstance(capabilities, dict) or not isinstance(signature, str):
        return False
    try:
        key = bytes.fromhex(str(capabilities.get("key")))
        sig = bytes.fromhex(signature)
        message = capability_message(capabilities)
    except ValueError:
        return False
    if expected_key is not None and key != expected_key:
        return False
    return crypto.ed25519_verify(key, message, sig)


def _document_handler(body: bytes) -> Callable[[web.Request], Any]:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={CACHE_SECONDS}",
        "Access-Control-Allow-Origin": "*",  # the web app may be served from anywhere
        "Access-Control-Expose-Headers": "ETag",
    }

    async def handler(request: web.Request) -> web.Response:
        match = request.headers.get("If-None-Match", "")
        if etag in (m.strip() for m in match.split(",")) or match.strip() == "*":
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)

    return handler


def make_app(
    signed_document: JsonObject,
    stats: Callable[[], dict[str, int]],
    static_dir: str | Path | None = None,
) -> web.Application:
    body = json.dumps(signed_document, sort_keys=True, separators=(",", ":")).encode()

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **stats()})

    app = web.Application()
    app.router.add_get(WELL_KNOWN_PATH, _document_handler(body))
    app.router.add_get("/healthz", healthz)
    if static_dir is not None:
        root = Path(static_dir).resolve()
        index = root / "index.html"

        async def home(request: web.Request) -> web.StreamResponse:
            if not index.is_file():
                raise web.HTTPNotFound()
            return web.FileResponse(index)

        app.router.add_get("/", home)
        app.router.add_static("/", root, show_index=False, follow_symlinks=False)
        app.on_response_prepare.append(_static_headers)
    return app


async def _static_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Content type and caching for files of the static tree (only they are FileResponses)."""
    if not isinstance(response, web.FileResponse):
        return
    path = request.path
    name = path.rsplit("/", 1)[-1] or "index.html"
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix in STATIC_TYPES:
        response.headers["Content-Type"] = STATIC_TYPES[suffix]
    hashed = HASHED_ASSET.search(path) is not None
    response.headers["Cache-Control"] = IMMUTABLE_CACHE if hashed else REVALIDATE_CACHE
