"""Loopback browser tooling shared by the browser tests and the browser benchmarks.

- ``StaticServer``: a plain static host on 127.0.0.1 (content types only, no special headers),
  proving the built site needs nothing more than any static host gives;
- ``RelayThread``: a real relay (HTTP + WebSocket + TCP, optionally both workers) serving the
  site, in a thread with its own event loop, as ``willow up --static`` runs it;
- ``chromium``: Debian's Chromium under Playwright, headless, in a persistent context on a fresh
  profile directory, with a request hook that records every non-loopback URL (the tests assert
  there are none: the app must work fully offline);
- ``open_harness`` / ``run_python``: drive ``dev/harness.html``, which runs Python in the same
  worker runtime as the app.

Nothing here listens on anything but 127.0.0.1, and every server stops when its ``with`` ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from relay.http import STATIC_TYPES

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright, Request

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "BOOT_TIMEOUT_MS",
    "ExternalRequests",
    "RelayThread",
    "StaticServer",
    "chromium",
    "is_loopback",
    "open_harness",
    "run_python",
]

#: Debian's chromium (apt-get install chromium); Playwright's own browser download cannot work
#: offline, so it is never used.
CHROMIUM = "/usr/bin/chromium"
#: Headless and quiet: no sandbox (root in CI), no GPU, and nothing that phones home.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Pyodide boots in 3-7 s on a 2-core machine; leave room for a loaded CI box.
BOOT_TIMEOUT_MS = 120_000
#: Python run in the harness (the crypto suite, a 10k-event materialize) may take a while.
RUN_TIMEOUT_MS = 600_000
#: How long a server thread may take to start or stop before that is an error.
THREAD_TIMEOUT_S = 30.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Schemes that never leave the browser.
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})


def is_loopback(url: str) -> bool:
    """Whether fetching ``url`` stays on this machine."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.hostname in LOOPBACK_HOSTS


class ExternalRequests:
    """A ``context.on("request")`` hook that records every request leaving the machine."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, request: Request) -> None:
        if not is_loopback(request.url):
            self.urls.append(request.url)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files with correct content types, as any configured static host serves them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.extensions_map = {**self.extensions_map, **STATIC_TYPES}
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:
        return


class StaticServer:
    """``directory`` over HTTP on 127.0.0.1 (a free port), in a background thread."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_Handler, directory=str(directory))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def __enter__(self) -> StaticServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(THREAD_TIMEOUT_S)


class RelayThread:
    """A relay serving ``static_dir`` (and, with ``workers``, storage + replay workers)."""

    def __init__(self, data_dir: Path, static_dir: Path, *, workers: bool = False) -> None:
        self.data_dir = data_dir
        self.static_dir = static_dir
        self.workers = workers
        self.http_port: int | None = None
        self.ws_port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as e:  # reported to the starting thread
            self._error = e
            self._started.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        from relay.peer import PeerConnection, wall_ms
        from relay.replay_worker import ReplayWorker
        from relay.server import Relay
        from relay.storage_worker import StorageWorker
        from willow_core.testing import identity

        relay = Relay(
            "127.0.0.1",
            ws_port=0,
            tcp_port=0,
            http_port=0,
            data_dir=self.data_dir / "relay",
            static_dir=self.static_dir,
        )
        await relay.start()
        connections: list[PeerConnection] = []
        tasks: list[asyncio.Task[None]] = []
        try:
            if self.workers:
                assert relay.tcp_port is not None
                storage = StorageWorker(identity("browser/storage"), self.data_dir / "storage")
                storage.start(wall_ms())
                replay = ReplayWorker(identity("browser/replay"))
                for carrier in (storage, replay):
                    connection = PeerConnection(carrier, "127.0.0.1", relay.tcp_port)
                    connections.append(connection)
                    tasks.append(asyncio.create_task(connection.run()))
            self.http_port, self.ws_port = relay.http_port, relay.ws_port
            self._stop = asyncio.Event()
            self._started.set()
            await self._stop.wait()
        finally:
            for connection in connections:
                await connection.stop()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await relay.stop()

    def __enter__(self) -> RelayThread:
        self._thread.start()
        if not self._started.wait(THREAD_TIMEOUT_S) or self._error is not None:
            raise RuntimeError(f"relay did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(THREAD_TIMEOUT_S)


@contextlib.contextmanager
def chromium(
    playwright: Playwright, profile: Path, external: ExternalRequests
) -> Iterator[BrowserContext]:
    """A headless Chromium persistent context on ``profile``; ``external`` sees every request
    (dedicated workers' requests included).

    Reusing a profile directory across calls is how a test restarts "the same browser" (disk
    cache, IndexedDB); a fresh directory is a first visit. One ``sync_playwright()`` may launch
    many contexts, one after another or side by side.
    """
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=list(CHROMIUM_FLAGS),
    )
    context.on("request", external)
    try:
        yield context
    finally:
        context.close()


def open_harness(context: BrowserContext, base_url: str) -> Page:
    """Open ``dev/harness.html`` and wait until its worker runtime is ready (or raise)."""
    page = context.new_page()
    page.set_default_timeout(BOOT_TIMEOUT_MS)
    page.goto(f"{base_url}dev/harness.html")
    page.evaluate("() => harness.ready.then(() => true)")
    return page


def run_python(page: Page, code: str, data: bytes | None = None) -> Any:
    """Run ``code`` in the harness worker; returns its last expression converted to JSON-able.

    ``data`` reaches Python as ``harness_data`` (``harness_data.to_bytes()``). A Python
    exception raises here with its traceback in the message.
    """
    payload = base64.b64encode(data).decode() if data is not None else None
    page.set_default_timeout(RUN_TIMEOUT_MS)
    return page.evaluate(
        "([code, data]) => harness.run(code, {data: data ?? undefined})", [code, payload]
    )
