"""The whole stack on loopback for browser tests and benchmarks: a relay serving the site, both
workers (advertised in the capability document, as ``willow up`` does) and a native peer, all on
one asyncio loop in a background thread. Callers run code on that loop with ``call``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from relay.peer import PeerConnection, wall_ms
from relay.replay_worker import ReplayWorker
from relay.server import Relay
from relay.storage_worker import StorageWorker
from willow_core.node import Node
from willow_core.testing import identity

__all__ = ["Stack"]

T = TypeVar("T")
START_TIMEOUT_S = 30.0


class Stack:
    """Relay + storage worker + replay worker + one native peer ("Dave")."""

    def __init__(self, data_dir: Path, static_dir: Path) -> None:
        self.data_dir = data_dir
        self.static_dir = static_dir
        self.loop = asyncio.new_event_loop()
        self.native = Node(identity("e2e/dave"))
        self.storage_key = identity("e2e/storage").public_key
        self.replay_key = identity("e2e/replay").public_key
        self.http_port: int | None = None
        #: the relay's WebSocket port and key (what the web app learns from /.well-known/willow)
        self.ws_port: int | None = None
        self.relay_key: bytes | None = None
        self.storage: StorageWorker | None = None
        self._native_link: PeerConnection | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def __enter__(self) -> Stack:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise TimeoutError("the stack did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the stack's loop (the native peer lives there) and return its result."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)
            if self._native_link is not None:
                self._native_link.wake()

        self.loop.call_soon_threadsafe(run)
        return future.result(30)

    def wait(self, condition: Callable[[], bool], what: str, limit_s: float = 30.0) -> None:
        deadline = time.monotonic() + limit_s
        while not self.call(condition):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._started.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        relay = Relay(
            "127.0.0.1",
            ws_port=0,
            tcp_port=0,
            http_port=0,
            data_dir=self.data_dir / "relay",
            static_dir=self.static_dir,
            services=[("storage", self.storage_key), ("replay", self.replay_key)],
        )
        await relay.start()
        assert relay.tcp_port is not None
        storage = StorageWorker(identity("e2e/storage"), self.data_dir / "storage")
        storage.start(wall_ms())
        self.storage = storage
        carriers: list[Any] = [storage, ReplayWorker(identity("e2e/replay")), self.native]
        links = [
            PeerConnection(c, "127.0.0.1", relay.tcp_port, backoff=(0.05, 0.5)) for c in carriers
        ]
        self._native_link = links[-1]
        tasks = [asyncio.create_task(link.run()) for link in links]
        try:
            for link in links:
                await asyncio.wait_for(link.connected.wait(), 10)
            self.http_port = relay.http_port
            self.ws_port = relay.ws_port
            self.relay_key = relay.key
            self._stop = asyncio.Event()
            self._started.set()
            await self._stop.wait()
        finally:
            for link in links:
                await link.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await relay.stop()
