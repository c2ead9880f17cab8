"""The relay: one asyncio process forwarding signed envelopes between peers (D10).

Three endpoints share one ``Hub`` (and so one topic bus): WebSocket for browsers (``relay.ws``),
length-prefixed TCP for native peers (``relay.tcp``), both carrying the same frames
(``willow_core.wire``); and HTTP (``relay.http``) for the signed capability document, a health
check and, in dev mode, the static web app. The bus is in-process (the embedded default).

The relay has a key of its own (``relay.keyfile``) and nothing else: no community keys, no
authority. It checks each envelope's size, sender and signature before fan-out and forwards the
exact bytes it received; bodies are opaque to it. Limits: ``relay.limits``; error codes:
``relay.codes``; behaviour in prose: docs/relay.md.

**Slow-consumer policy.** Fan-out never waits for a subscriber. Each connection's outgoing
buffer (bytes the kernel has not yet accepted) is bounded by ``Limits.send_buffer_bytes``
(1 MiB by default): it is the transport's high-water mark, and crossing it is the signal. The
relay then, at once and synchronously (in the middle of a broadcast if need be):

1. removes the connection from every topic, so nothing more is queued for it;
2. queues ERROR ``SLOW_CONSUMER`` (code 8) and a close (WebSocket close code 4008);
3. aborts the socket if the peer has not finished closing within ``Limits.close_grace_s``.

So one connection never holds more than the bound plus one frame (at most 256 KiB) and a small
ERROR/close, however fast others publish, and the other subscribers of the same topics are not
slowed or affected. A disconnected peer reconnects and catches up through sync (D9); the relay
keeps no backlog. Inbound, a connection holds at most one partial frame (TCP) or
``Limits.inbound_queue_frames`` messages (WebSocket) before the relay stops reading from it.

Usage::

    relay = Relay("127.0.0.1", ws_port=0, tcp_port=0, http_port=0, data_dir="relay-data")
    await relay.start()          # ports are readable now: relay.ws_port, ...
    ...
    await relay.stop()

or ``await run_relay(host, tcp_port, ws_port, http_port, data_dir)`` to serve until cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

from aiohttp import web
from websockets.asyncio.server import Server as WsServer

from willow_core.identity import Identity

from .http import capability_document, make_app, sign_capabilities
from .hub import Hub
from .keyfile import load_or_create_identity
from .limits import Limits
from .tcp import TcpEndpoint, serve_tcp
from .ws import bound_port, serve_ws

__all__ = ["Relay", "run_relay"]

log = logging.getLogger("willow.relay")


class Relay:
    """A relay bound to ``host``; a port of ``None`` disables that endpoint, 0 picks a free one."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        ws_port: int | None = 0,
        tcp_port: int | None = 0,
        http_port: int | None = 0,
        data_dir: str | os.PathLike[str],
        static_dir: str | os.PathLike[str] | None = None,
        limits: Limits | None = None,
        identity: Identity | None = None,
        clock: Callable[[], float] | None = None,
        services: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self.host = host
        #: (role, key) of workers this relay's operator runs, advertised to clients
        self.services = tuple(services)
        self._want = {"ws": ws_port, "tcp": tcp_port, "http": http_port}
        self.data_dir = Path(data_dir)
        self.static_dir = Path(static_dir) if static_dir is not None else None
        self.limits = limits or Limits()
        self._identity = identity
        self._clock = clock
        self._hub: Hub | None = None
        self._ws: WsServer | None = None
        self._tcp: TcpEndpoint | None = None
        self._http: web.AppRunner | None = None
        self.ws_port: int | None = None
        self.tcp_port: int | None = None
        self.http_port: int | None = None

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            raise RuntimeError("the relay is not started")
        return self._hub

    @property
    def key(self) -> bytes:
        return self.hub.key

    async def start(self) -> None:
        if self._hub is not None:
            raise RuntimeError("the relay is already started")
        identity = self._identity or load_or_create_identity(self.data_dir)
        hub = Hub(identity, self.limits, asyncio.get_running_loop(), self._clock)
        self._hub = hub
        try:
            if self._want["ws"] is not None:
                self._ws = await serve_ws(hub, self.host, self._want["ws"])
                self.ws_port = bound_port(self._ws)
            if self._want["tcp"] is not None:
                self._tcp = await serve_tcp(hub, self.host, self._want["tcp"])
                self.tcp_port = self._tcp.port
            if self._want["http"] is not None:
                await self._start_http(hub, identity, self._want["http"])
        except BaseException:
            await self.stop()
            raise
        log.info(
            "relay %s: ws=%s tcp=%s http=%s",
            hub.key.hex()[:16],
            self.ws_port,
            self.tcp_port,
            self.http_port,
        )

    async def _start_http(self, hub: Hub, identity: Identity, port: int) -> None:
        document = capability_document(
            hub.key,
            self.limits,
            ws_port=self.ws_port,
            tcp_port=self.tcp_port,
            services=self.services,
        )
        app = make_app(sign_capabilities(identity, document), hub.stats, self.static_dir)
        self._http = web.AppRunner(app, access_log=None)
        await self._http.setup()
        site = web.TCPSite(self._http, self.host, port)
        await site.start()
        address = self._http.addresses[0]
        self.http_port = int(address[1])

    async def stop(self) -> None:
        """Stop listening, close every connection (ERROR ``SHUTTING_DOWN``), release ports."""
        hub = self._hub
        if hub is None:
            return
        hub.shutdown()
        if self._ws is not None:
            self._ws.close()
        if self._tcp is not None:
            await self._tcp.close(self.limits.close_grace_s)
        if self._ws is not None:
            await self._ws.wait_closed()
        if self._http is not None:
            await self._http.cleanup()
        self._ws = self._tcp = None
        self._http = None
        self._hub = None

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run_relay(
    host: str,
    tcp_port: int | None,
    ws_port: int | None,
    http_port: int | None,
    data_dir: str | os.PathLike[str],
    static_dir: str | os.PathLike[str] | None = None,
    *,
    limits: Limits | None = None,
    on_ready: Callable[[Relay], None] | None = None,
) -> None:
    """Serve until cancelled or SIGINT/SIGTERM; ``on_ready`` sees the started relay."""
    relay = Relay(
        host,
        ws_port=ws_port,
        tcp_port=tcp_port,
        http_port=http_port,
        data_dir=data_dir,
        static_dir=static_dir,
        limits=limits,
    )
    await relay.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            pass
    try:
        if on_ready is not None:
            on_ready(relay)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await relay.stop()
