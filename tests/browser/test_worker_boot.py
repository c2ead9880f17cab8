"""web/worker.mjs keeps its boot contract, checked against a stub app from a plain static host.

A copy of the project replaces ``willow_web.boot`` with a stub and the page with one that
records every worker message, so the test sees exactly what a page sees: progress stages,
page messages queued during boot and delivered in order, ``env.post`` with a Python dict,
``env.persist()`` surviving a browser restart (IDBFS), errors from a handler, and a failing
``start`` reported as ``boot-error``. Served by a plain static server: no special headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Playwright
from project_copy import copy_project

from bench.browserkit import BOOT_TIMEOUT_MS, ExternalRequests, StaticServer, chromium
from build import build_site

#: The stub entry point. It counts boots in /persist (so a restart shows what persisted),
#: posts a plain dict, echoes page messages (4 and 5 through an awaitable), and raises on
#: demand (3 at once, 5 later).
STUB_BOOT = """
import asyncio
from pathlib import Path

async def start(env):
    config = env.config.to_py()
    if config.get("fail"):
        raise RuntimeError("stub refused to start")
    counter = Path("/persist/boots")
    boots = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(boots))
    await asyncio.gather(env.persist(), env.persist())
    await asyncio.sleep(0.2)  # page messages keep arriving while start() runs
    version = env.sodium.sodium_version_string()
    env.post({"type": "started", "boots": boots, "sodium": version, "config": config})

    async def later(n):
        await asyncio.sleep(0.05)
        if n == 5:
            raise ValueError("five is refused later")
        env.post({"type": "echo", "n": n})

    def on_message(message):
        if message.n == 3:
            raise ValueError("three is refused")
        if message.n >= 4:
            return later(message.n)  # an awaitable: the worker runs it and reports failure
        env.post({"type": "echo", "n": message.n})

    return on_message
"""

#: A page that boots the worker and records what it says; ?config=<json> is the boot config.
STUB_MAIN = """
const manifest = JSON.parse(document.getElementById("willow-manifest").textContent);
const config = JSON.parse(new URLSearchParams(location.search).get("config") || "{}");
const worker = new Worker(new URL(manifest.worker, document.baseURI), { type: "module" });
window.received = [];
worker.onmessage = (event) => window.received.push(event.data);
worker.postMessage({ type: "page", n: 0 });  // before boot: held until the app starts
worker.postMessage({ type: "boot", manifest, config });
for (const n of [1, 2, 3, 4, 5]) worker.postMessage({ type: "page", n });
"""

STUB_INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="module" src="main.mjs"></script></head><body></body></html>
"""

STAGES = ["runtime", "crypto", "packages", "storage", "app"]


@pytest.fixture(scope="module")
def stub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = copy_project(tmp_path_factory.mktemp("stub") / "project")
    (root / "willow_web" / "boot.py").write_text(STUB_BOOT)
    (root / "web" / "main.mjs").write_text(STUB_MAIN)
    (root / "web" / "index.html").write_text(STUB_INDEX)
    site = build_site(root / "site", root=root)
    with StaticServer(site.root) as server:
        yield server.url


def boot(
    playwright: Playwright, profile: Path, url: str, external: ExternalRequests, until: str
) -> list[dict[str, Any]]:
    """Load the stub page on ``profile``; wait until a message satisfies ``until`` (JS)."""
    with chromium(playwright, profile, external) as context:
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(f"window.received.some(m => {until})", timeout=BOOT_TIMEOUT_MS)
        received: list[dict[str, Any]] = page.evaluate("window.received")
        return received


def of_type(received: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in received if m["type"] == kind]


def test_boot_contract(
    playwright: Playwright, stub_url: str, tmp_path: Path, external: ExternalRequests
) -> None:
    config = {"relay": "ws://127.0.0.1:1/", "nested": {"list": [1, 2]}}
    url = f"{stub_url}?config={quote(json.dumps(config))}"
    done = "m.type === 'error' && m.message.includes('five')"
    received = boot(playwright, tmp_path / "profile", url, external, done)

    progress = of_type(received, "boot-progress")
    assert [m["stage"] for m in progress][-1] == "app"
    assert sorted(m["stage"] for m in progress) == sorted(STAGES)
    assert [m["done"] for m in progress] == [1, 2, 3, 4, 5]
    assert {m["total"] for m in progress} == {len(STAGES)}
    order = [m["stage"] for m in progress]
    assert order.index("runtime") < order.index("packages")
    assert order.index("runtime") < order.index("storage")

    (started,) = of_type(received, "started")
    assert started["boots"] == 1
    assert started["sodium"].startswith("1.0.")
    assert started["config"] == config
    # Page messages, including one sent before the boot message, arrive once each, in order,
    # after start() resolved (the started post comes first).
    assert [m["n"] for m in of_type(received, "echo")] == [0, 1, 2, 4]
    assert received.index(started) < received.index(of_type(received, "echo")[0])
    errors = [m["message"] for m in of_type(received, "error")]
    assert len(errors) == 2
    assert "three is refused" in errors[0]
    assert "five is refused later" in errors[1]
    assert of_type(received, "boot-error") == []

    # Same profile, browser restarted: /persist came back from IndexedDB.
    again = boot(playwright, tmp_path / "profile", url, external, done)
    assert of_type(again, "started")[0]["boots"] == 2


def test_a_failing_start_is_a_boot_error(
    playwright: Playwright, stub_url: str, tmp_path: Path, external: ExternalRequests
) -> None:
    url = f"{stub_url}?config={quote(json.dumps({'fail': True}))}"
    received = boot(playwright, tmp_path / "profile", url, external, "m.type === 'boot-error'")
    (error,) = of_type(received, "boot-error")
    assert error["stage"] == "app"
    assert "stub refused to start" in error["message"]
    assert of_type(received, "echo") == []
    assert "app" not in [m["stage"] for m in of_type(received, "boot-progress")]
