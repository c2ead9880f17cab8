"""The whole stack on loopback for browser tests and benchmarks: a relay serving the site, both
workers (advertised in the capability document, as ``willow up`` does) and a native peer. The
relay and the native peer share one asyncio loop in a background thread (callers run code on it
with ``call``); each worker runs in a child process of its own (``relay.supervise``, exactly as
``willow up`` runs them), so a worker's SQLite commit never stalls the relay it talks through.

``StackProcess`` runs the same stack in a child process, as ``willow up`` runs in its own: a
benchmark's Playwright client (its interpreter lock and its garbage collector) then never
stalls the relay it measures. Callers run module-level functions there with ``run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from relay.keyfile import load_or_create_identity
from relay.peer import PeerConnection
from relay.server import Relay
from relay.supervise import WorkerProcess
from willow_core.node import Node
from willow_core.testing import identity
from willow_core.wire import inbox_topic

__all__ = ["Stack", "StackProcess"]

T = TypeVar("T")
START_TIMEOUT_S = 30.0


class Stack:
    """Relay + storage worker + replay worker (child processes) + one native peer ("Dave")."""

    def __init__(self, data_dir: Path, static_dir: Path) -> None:
        self.data_dir = data_dir
        self.static_dir = static_dir
        self.loop = asyncio.new_event_loop()
        self.native = Node(identity("e2e/dave"))
        # Each worker's key is in its data directory, where its process loads it from.
        self.storage_key = load_or_create_identity(data_dir / "storage").public_key
        self.replay_key = load_or_create_identity(data_dir / "replay").public_key
        self.http_port: int | None = None
        #: the relay's WebSocket port and key (what the web app learns from /.well-known/willow)
        self.ws_port: int | None = None
        self.relay_key: bytes | None = None
        #: the worker processes (their ``pid`` for tests that look at them)
        self.workers: list[WorkerProcess] = []
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
        link = PeerConnection(self.native, "127.0.0.1", relay.tcp_port, backoff=(0.05, 0.5))
        self._native_link = link
        task: asyncio.Task[None] | None = None
        try:
            for kind in ("storage", "replay"):
                worker = WorkerProcess(kind, "127.0.0.1", relay.tcp_port, self.data_dir / kind)
                self.workers.append(worker)
                await worker.start()
            task = asyncio.create_task(link.run())
            await asyncio.wait_for(link.connected.wait(), 10)
            # A worker is connected once its inbox is subscribed (only it may subscribe there).
            inboxes = [inbox_topic(self.storage_key), inbox_topic(self.replay_key)]
            deadline = self.loop.time() + START_TIMEOUT_S
            while not all(relay.hub.bus.has_topic(t) for t in inboxes):
                if self.loop.time() > deadline:
                    raise TimeoutError("the workers did not connect to the relay")
                await asyncio.sleep(0.02)
            self.http_port = relay.http_port
            self.ws_port = relay.ws_port
            self.relay_key = relay.key
            self._stop = asyncio.Event()
            self._started.set()
            await self._stop.wait()
        finally:
            await link.stop()
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            for worker in self.workers:
                await worker.stop()
            await relay.stop()


class StackProcess:
    """A ``Stack`` in a child process (spawned); ``run(fn, *args)`` calls ``fn(stack, *args)``
    there, on the child's main thread, and returns its result (both must pickle; ``fn`` is a
    module-level function). ``fn`` reaches the native peer through ``stack.call``."""

    def __init__(self, data_dir: Path, static_dir: Path) -> None:
        self.data_dir = data_dir
        self.static_dir = static_dir
        self.http_port: int | None = None
        self.ws_port: int | None = None
        self.relay_key: bytes | None = None
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_stack, args=(child, data_dir, static_dir), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    def __enter__(self) -> StackProcess:
        self._process.start()
        if not self._conn.poll(START_TIMEOUT_S * 2):
            self._process.kill()
            raise TimeoutError("the stack process did not start")
        ok, value = self._conn.recv()
        if not ok:
            self._process.join(START_TIMEOUT_S)
            raise RuntimeError(f"the stack process failed to start: {value}")
        self.http_port, self.ws_port, self.relay_key = value
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):  # the child is gone already
            self._conn.send(None)
        self._process.join(START_TIMEOUT_S * 2)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        self._conn.send((fn, args))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"{fn.__name__} failed in the stack process: {value}")
        return value  # type: ignore[no-any-return]


def _serve_stack(conn: Connection, data_dir: Path, static_dir: Path) -> None:
    """The child: start the stack, report its ports, run calls until told to stop."""
    import gc
    import traceback

    gc.set_threshold(100_000, 50, 100)  # bench.harness.runtime_gc: the relay's settings
    try:
        stack = Stack(data_dir, static_dir).__enter__()
    except BaseException:
        conn.send((False, traceback.format_exc()))
        return
    try:
        conn.send((True, (stack.http_port, stack.ws_port, stack.relay_key)))
        while (request := conn.recv()) is not None:
            fn, args = request
            try:
                conn.send((True, fn(stack, *args)))
            except Exception:
                conn.send((False, traceback.format_exc()))
    except EOFError:
        pass
    finally:
        stack.__exit__(None, None, None)
