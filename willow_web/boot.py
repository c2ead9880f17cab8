"""The browser shell: runs the app inside the Web Worker (Pyodide), the only module that
touches browser APIs (``js``, ``pyodide.ffi``).

``start(env)`` is called by ``web/worker.mjs`` once Pyodide, libsodium and the wheels are
loaded and ``/persist`` is populated from IndexedDB. It installs the libsodium.js crypto
backend, starts the app (the cached state renders before any network), connects to the relay
over ``js.WebSocket`` with reconnect and backoff, and returns the function the worker calls
with every page message.

Scheduling: everything runs on Pyodide's event loop (setTimeout under the hood). Renders are
coalesced: any number of frames arriving together cause one render, and while frames keep
coming (a catch-up) the next render starts no sooner than a multiple of the last one's cost after
it ended, so the worker keeps ingesting instead of drawing every intermediate state. A frame
that finds the worker idle (live chat) renders at once.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections import deque
from typing import Any

from willow_core import crypto
from willow_core.errors import DecodeError, WillowError

from .app import App
from .sodium_backend import SodiumBackend
from .store import Store

__all__ = [
    "start",
    "BrowserShell",
    "BACKOFF_S",
    "TICK_S",
    "PERSIST_DIR",
    "PERSIST_LATER_S",
    "GC_THRESHOLDS",
]

PERSIST_DIR = "/persist"
#: Reconnect delays: first, then doubling up to the second (with jitter).
BACKOFF_S = (0.5, 15.0)
TICK_S = 1.0
#: A render that cost ``t`` holds the next one back until ``RENDER_BACKOFF * t`` after it ended
#: (at most ``MAX_RENDER_DELAY_S``), unless the frame that asks for it found the worker idle for
#: IDLE_S: frames queued behind work (a catch-up) arrive back to back, live ones do not.
RENDER_BACKOFF = 3.0
MAX_RENDER_DELAY_S = 0.5
#: While a catch-up runs, renders (the banner's count; the list is held) come at most this
#: often: nobody reads a counter changing thirty times a second, and each render costs the
#: page a frame's worth of work.
CATCH_UP_RENDER_S = 0.25
IDLE_S = 0.005
#: Received frames are handled in slices of about this long (a sync batch is one frame); between
#: slices the worker yields, and while the person is typing or clicking (an input within
#: INPUT_RECENT_S) it rests TYPING_PAUSE times as long as the slice took, leaving the page's
#: threads three quarters of a processor the catch-up would otherwise take.
SLICE_S = 0.008
INPUT_RECENT_S = 0.5
TYPING_PAUSE = 3.0
#: Received events are flushed to IndexedDB at most this long after they arrive: one flush
#: for a burst (a catch-up flushes a few times, not once per batch), and none between an
#: arriving message and its drawing. Own events and settings flush at once.
PERSIST_LATER_S = 0.5
#: The collector's thresholds, as in every native Willow process: replay keeps many small
#: long-lived objects, and CPython's defaults would walk them again and again (in the browser a
#: walk of the whole heap is a visible pause).
GC_THRESHOLDS = (100_000, 50, 100)


class BrowserIo:
    """``app.Io`` over the worker's environment object."""

    def __init__(self, env: Any, shell: BrowserShell) -> None:
        self.env = env
        self.shell = shell

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def random(self, n: int) -> bytes:
        import os

        return os.urandom(n)  # crypto.getRandomValues under Pyodide

    def post(self, message: dict[str, Any]) -> None:
        from js import Object
        from pyodide.ffi import to_js

        self.env.post(to_js(message, dict_converter=Object.fromEntries))

    def persist(self) -> None:
        self.shell.schedule_persist()

    def persist_later(self) -> None:
        self.shell.schedule_persist(PERSIST_LATER_S)

    def wake(self) -> None:
        self.shell.flush()


class BrowserShell:
    """Owns the socket, the timers and the app."""

    def __init__(self, env: Any, config: dict[str, Any]) -> None:
        self.env = env
        self.config = config
        self.io = BrowserIo(env, self)
        self.app = App(self.io, Store(PERSIST_DIR), config)
        self.socket: Any = None
        self._proxies: list[Any] = []
        #: (loop time, handle) of the flush that is due, if any
        self._persist_due: tuple[float, asyncio.Handle | asyncio.TimerHandle] | None = None
        self._render_scheduled = False
        #: ``time.perf_counter()`` before which the next render waits (see RENDER_BACKOFF)
        self._render_not_before = 0.0
        self._render_later: asyncio.Handle | None = None
        self._render_soon: asyncio.Handle | None = None
        #: the next render shows what the person just did (``App.render(acted=True)``)
        self._acted = False
        #: frames received and not yet handled, with the socket each came from (``_drain``)
        self._inbox: deque[tuple[Any, bytes]] = deque()
        self._draining = False
        #: ``time.perf_counter()`` before which the next slice waits (see ``_drain``)
        self._drain_not_before = 0.0
        #: ``time.perf_counter()`` of the person's last keystroke or click (the page says)
        self._input_at = float("-inf")
        #: ``time.perf_counter()`` when the worker last finished a frame or a render
        self._busy_until = 0.0
        #: ``time.perf_counter()`` when the last render ended
        self._rendered_at = 0.0
        self._delay = BACKOFF_S[0]
        self._stopped = False
        self._wanted_offline = False
        self._tasks: set[asyncio.Future[None]] = set()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.app.start()
        self._freeze()
        self.schedule_persist()
        self._tasks.add(asyncio.ensure_future(self._ticker()))
        self.connect()

    def relay_url(self) -> str | None:
        url = self.config.get("relay")
        return str(url) if url else None

    def connect(self) -> None:
        app = self.app
        url = self.relay_url()
        if app.link is None or url is None or self.socket is not None or self._wanted_offline:
            return
        from js import WebSocket
        from pyodide.ffi import create_proxy

        app.link_connecting()
        pinned = self.config.get("relay_key")
        if pinned:
            try:
                app.link.pinned_key = bytes.fromhex(str(pinned))
            except ValueError:
                app.link.pinned_key = None
        socket = WebSocket.new(url)
        socket.binaryType = "arraybuffer"
        self.socket = socket

        def on_open(_event: Any) -> None:
            if self.socket is socket and app.link is not None:
                app.link.opened()

        def on_message(event: Any) -> None:
            if self.socket is not socket or app.link is None:
                return
            from js import Uint8Array

            self._inbox.append((socket, Uint8Array.new(event.data).to_bytes()))
            if not self._draining:
                wait = self._drain_not_before - time.perf_counter()
                if wait > 0:  # the person is typing and the last slice was long: rest first
                    self._draining = True
                    asyncio.get_event_loop().call_later(wait, self._drain)
                else:
                    self._drain()

        def on_close(_event: Any) -> None:
            if self.socket is not socket:
                return
            self.socket = None
            for proxy in handlers:
                proxy.destroy()
            delay = self._delay * (0.5 + random.random())
            self._delay = min(self._delay * 2, BACKOFF_S[1])
            if self._wanted_offline:
                app.link_closed(None)  # waits for the browser's "online"
                return
            app.link_closed(self.io.now_ms() + int(delay * 1000))
            if not self._stopped:
                task = asyncio.ensure_future(self._reconnect_after(delay))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        handlers = [create_proxy(on_open), create_proxy(on_message), create_proxy(on_close)]
        socket.onopen, socket.onmessage, socket.onclose = handlers

    def _drain(self) -> None:
        """Handle received frames for about SLICE_S, then yield. While the person is typing or
        clicking (an input within INPUT_RECENT_S), the worker then rests TYPING_PAUSE times as
        long as it worked before it handles the next frame, whenever that arrives: a catch-up
        gets a quarter of a processor and the page the rest. Otherwise a frame is handled as
        soon as it arrives (live chat waits for nothing)."""
        self._draining = False
        app = self.app
        began = time.perf_counter()
        idle = began - self._busy_until >= IDLE_S
        while self._inbox:
            socket, frame = self._inbox.popleft()
            if socket is not self.socket or app.link is None:
                continue  # from a connection that has closed since
            try:
                self._send(app.link.receive(frame, self.io.now_ms()))
            except (DecodeError, WillowError, AssertionError, ValueError) as exc:
                app.toast(f"Relay connection reset: {exc}")
                socket.close(4000, "protocol error")
                self._inbox.clear()
                break
            if app.link.ready:
                self._delay = BACKOFF_S[0]
            if time.perf_counter() - began >= SLICE_S:
                break
        app.notice_acks()  # drawn below with whatever else came
        now = time.perf_counter()
        typing = now - self._input_at < INPUT_RECENT_S
        self._drain_not_before = now + ((now - began) * TYPING_PAUSE if typing else 0.0)
        if self._inbox:
            self._draining = True
            asyncio.get_event_loop().call_later(self._drain_not_before - now, self._drain)
        if idle and not self._draining and not app.catching:
            self.render_now()  # live chat: draw in the task that received it
        else:
            self.schedule_render()
        self._busy_until = time.perf_counter()

    async def _reconnect_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.connect()

    async def _ticker(self) -> None:
        while not self._stopped:
            await asyncio.sleep(TICK_S)
            catching = bool(self.app.catching)
            try:
                self.app.tick()
            except Exception as exc:  # the loop must survive a bug in one tick
                self.app.toast(f"Internal error: {exc}")
            if catching and not self.app.catching:
                self._freeze()

    @staticmethod
    def _freeze() -> None:
        """Move what is alive now (restored or caught-up history: it lives as long as the
        tab) out of the collector's reach, so no later collection walks it."""
        gc.collect()
        gc.freeze()

    # --- output ---------------------------------------------------------------------------

    def _send(self, frames: list[bytes]) -> None:
        socket = self.socket
        if socket is None or not frames:
            return
        from pyodide.ffi import to_js

        for frame in frames:
            socket.send(to_js(frame))

    def flush(self) -> None:
        link = self.app.link
        if link is not None:
            self._send(link.flush())

    def schedule_persist(self, delay_s: float = 0.0) -> None:
        """Flush after ``delay_s`` (an earlier flush already due covers this one)."""
        loop = asyncio.get_event_loop()
        due = loop.time() + delay_s
        if self._persist_due is not None and self._persist_due[0] <= due:
            return
        if self._persist_due is not None:
            self._persist_due[1].cancel()
        handle = (
            loop.call_later(delay_s, self._persist) if delay_s else loop.call_soon(self._persist)
        )
        self._persist_due = (due, handle)

    def _persist(self) -> None:
        self._persist_due = None
        self.env.persist()

    def schedule_render(self, *, at_once: bool = False) -> None:
        """Render soon: at once, or after the backoff (see RENDER_BACKOFF)."""
        if self._render_scheduled:
            if not at_once or self._render_later is None:
                return  # one is due already
            self._render_later.cancel()  # a held-back render is brought forward
        self._render_scheduled = True
        loop = asyncio.get_event_loop()
        not_before = self._render_not_before
        if self.app.catching and not at_once:
            not_before = max(not_before, self._rendered_at + CATCH_UP_RENDER_S)
        wait = 0.0 if at_once else not_before - time.perf_counter()
        if wait > 0.002:
            self._render_later = loop.call_later(wait, self._render)
        else:
            self._render_later = None
            self._render_soon = loop.call_soon(self._render)

    def render_now(self) -> None:
        """Render in this task (a due render is cancelled: this one covers it)."""
        for handle in (self._render_later, self._render_soon):
            if handle is not None:
                handle.cancel()
        self._render()

    def _render(self) -> None:
        self._render_scheduled = False
        self._render_later = self._render_soon = None
        began = time.perf_counter()
        if self._acted:
            self._acted = False
            self.app.save_ui()
            self.app.render(acted=True)
        else:
            self.app.render()
        ended = self._busy_until = self._rendered_at = time.perf_counter()
        self._render_not_before = ended + min((ended - began) * RENDER_BACKOFF, MAX_RENDER_DELAY_S)

    # --- page messages --------------------------------------------------------------------

    def on_page_message(self, data: Any) -> None:
        message = data.to_py() if hasattr(data, "to_py") else dict(data)
        kind = message.get("type")
        if kind == "action":
            for key, value in list(message.items()):
                if isinstance(value, memoryview):
                    message[key] = bytes(value)
            self.app.handle(message, render=False)
            self._acted = True
            self.schedule_render(at_once=True)
            if (
                self.socket is None
                and self.app.link is not None
                and self.app.connection == "offline"
                and self.app.retry_at is None
            ):
                self.connect()  # the identity was just created: first connection
        elif kind == "resync":
            self.app.resync(str(message.get("region", "")))
        elif kind == "input":
            self._input_at = time.perf_counter()
        elif kind == "online":
            self._wanted_offline = False
            self._delay = BACKOFF_S[0]
            self.connect()
        elif kind == "offline":
            self._wanted_offline = True
            if self.socket is not None:
                self.socket.close(1000, "the browser is offline")
        elif kind == "inspect":
            self.io.post({"type": "inspect", "id": message.get("id"), **self.inspect()})

    def inspect(self) -> dict[str, Any]:
        """What tests and benchmarks compare across peers: state hashes and event counts."""
        node = self.app.node
        out: dict[str, Any] = {"me": self.app.me.hex(), "connection": self.app.connection}
        if node is not None:
            out["communities"] = {
                server.hex(): {
                    "hash": c.state_hash().hex() if c.ready else None,
                    "events": len(c.dag),
                    "unacked": len(self.app.ui.unacked.get(server, ())),
                }
                for server, c in node.communities.items()
            }
        return out


def start(env: Any) -> Any:
    """Entry point called by the worker; returns the page-message handler."""
    from pyodide.ffi import create_proxy

    gc.set_threshold(*GC_THRESHOLDS)
    crypto.set_backend(SodiumBackend(env.sodium))
    config = env.config.to_py() if hasattr(env.config, "to_py") else {}
    shell = BrowserShell(env, dict(config or {}))
    shell.start()
    return create_proxy(shell.on_page_message)
