"""The relay's static side serves the built web app with the types and caching it needs.

Module scripts load only with a JavaScript content type, ``WebAssembly.instantiateStreaming``
only with ``application/wasm``; hashed assets (build.py's naming) are immutable, pages are not.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from multidict import CIMultiDict
from relay_testkit import relay_at, run

from relay.http import IMMUTABLE_CACHE, REVALIDATE_CACHE

HASH = "0123456789abcdef"

FILES = {
    "index.html": "<h1>willow</h1>",
    f"app/{HASH}/worker.mjs": "export {}",
    f"app/{HASH}/app.css": "body{}",
    f"pyodide/{HASH}/pyodide.asm.wasm": "\0asm",
    f"pyodide/{HASH}/pyodide-lock.json": "{}",
    f"pyodide/{HASH}/python_stdlib.zip": "PK",
    f"wheels/{HASH}/x-1-py3-none-any.whl": "PK",
    f"vendor/idiomorph.{HASH}.mjs": "export {}",
    "dev/harness.html": "<p>harness</p>",
    "plain.js": "1",
    "notes": "no suffix",
}

EXPECTED = {
    "/": ("text/html", REVALIDATE_CACHE),
    "/index.html": ("text/html", REVALIDATE_CACHE),
    f"/app/{HASH}/worker.mjs": ("text/javascript", IMMUTABLE_CACHE),
    f"/app/{HASH}/app.css": ("text/css", IMMUTABLE_CACHE),
    f"/pyodide/{HASH}/pyodide.asm.wasm": ("application/wasm", IMMUTABLE_CACHE),
    f"/pyodide/{HASH}/pyodide-lock.json": ("application/json", IMMUTABLE_CACHE),
    f"/pyodide/{HASH}/python_stdlib.zip": ("application/zip", IMMUTABLE_CACHE),
    f"/wheels/{HASH}/x-1-py3-none-any.whl": ("application/octet-stream", IMMUTABLE_CACHE),
    f"/vendor/idiomorph.{HASH}.mjs": ("text/javascript", IMMUTABLE_CACHE),
    "/dev/harness.html": ("text/html", REVALIDATE_CACHE),
    "/plain.js": ("text/javascript", REVALIDATE_CACHE),
}


async def head(port: int, path: str) -> tuple[int, CIMultiDict[str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        await response.read()
        return response.status, CIMultiDict(response.headers)


def test_static_types_and_caching(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for name, text in FILES.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)

    async def body() -> None:
        async with relay_at(tmp_path, static_dir=site) as relay:
            port = relay.http_port
            assert port is not None
            for path, (content_type, cache) in EXPECTED.items():
                status, headers = await head(port, path)
                assert status == 200, path
                assert headers["Content-Type"].split(";")[0] == content_type, path
                assert headers["Cache-Control"] == cache, path
            # A name that merely looks hashed somewhere else is not: the hash must be a
            # whole directory or a dotted part of the file name.
            status, headers = await head(port, "/notes")
            assert status == 200
            assert headers["Cache-Control"] == REVALIDATE_CACHE
            # The capability document keeps its own caching.
            status, headers = await head(port, "/.well-known/willow")
            assert status == 200
            assert headers["Cache-Control"] != IMMUTABLE_CACHE

    run(body)
