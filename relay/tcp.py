"""The TCP endpoint (native peers): each frame is a 4-byte big-endian length, then the frame.

The same frames as the WebSocket endpoint, so a TCP publisher reaches WebSocket subscribers and
the other way round. A length over ``MAX_FRAME_BYTES`` is refused from the prefix alone (ERROR
``TOO_LARGE``, disconnect) before the body is read. A plain ``asyncio.Protocol`` rather than
streams: frames are cut out of the receive buffer and handled synchronously in
``data_received``, so the relay holds at most one partial frame plus one read per connection.

Outgoing data goes straight to ``transport.write``; the transport's high-water mark is the
slow-consumer bound (``Limits.send_buffer_bytes``) and crossing it calls ``pause_writing``, which
closes the connection with ERROR ``SLOW_CONSUMER``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any

from .codes import ErrorCode
from .hub import Hub
from .limits import MAX_FRAME_BYTES
from .session import Session

__all__ = ["PREFIX_BYTES", "tcp_fan_out", "TcpLink", "TcpEndpoint", "serve_tcp", "prefixed"]

PREFIX_BYTES = 4


def prefixed(frame: bytes) -> bytes:
    return len(frame).to_bytes(PREFIX_BYTES, "big") + frame


def tcp_fan_out(sinks: Sequence[Any], frame: bytes) -> None:
    data = prefixed(frame)
    for transport in sinks:
        if not transport.is_closing():
            transport.write(data)


def _keepalive(sock: socket.socket | None, seconds: float) -> None:
    """Kernel keepalive probes, the TCP counterpart of WebSocket pings: a vanished peer's
    connection is dropped after about ``seconds`` idle plus a few probes."""
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle = max(1, int(seconds))
    settings = (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", max(1, idle // 4)), ("TCP_KEEPCNT", 4))
    for name, value in settings:
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


class TcpLink(asyncio.Protocol):
    """One TCP connection: framing, and ``relay.session.Link`` for its session."""

    def __init__(self, hub: Hub, endpoint: TcpEndpoint) -> None:
        self.hub = hub
        self._endpoint = endpoint
        self.fan_out = tcp_fan_out
        self.sink: asyncio.Transport | None = None
        self.session: Session | None = None
        self._buffer = bytearray()
        self._lost = False
        self._abort_timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.set_write_buffer_limits(high=self.hub.limits.send_buffer_bytes)
        _keepalive(transport.get_extra_info("socket"), self.hub.limits.keepalive_s)
        self.sink = transport
        self._endpoint.opened(self)
        self.session = self.hub.open(self)

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or session.is_closed():
            return
        buffer = self._buffer
        buffer += data
        size = len(buffer)
        pos = 0
        with memoryview(buffer) as view:
            while size - pos >= PREFIX_BYTES:
                length = int.from_bytes(view[pos : pos + PREFIX_BYTES], "big")
                if length > MAX_FRAME_BYTES:
                    session.fail(ErrorCode.TOO_LARGE, f"frame over {MAX_FRAME_BYTES} bytes")
                    break
                end = pos + PREFIX_BYTES + length
                if end > size:
                    break
                frame = view[pos + PREFIX_BYTES : end].tobytes()
                pos = end
                session.on_frame(frame)
                if session.is_closed():
                    break
        if session.is_closed():
            buffer.clear()
        elif pos:
            del buffer[:pos]

    def pause_writing(self) -> None:
        if self.session is not None:
            self.session.overflow()

    def resume_writing(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        self._endpoint.lost(self)
        if self.session is not None:
            self.session.lost()
        self._buffer.clear()

    # --- Link -----------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        transport = self.sink
        if transport is not None and not transport.is_closing():
            transport.write(prefixed(frame))

    def close(self, code: ErrorCode, text: str) -> None:
        transport = self.sink
        if transport is None:
            return
        transport.close()  # after the buffered bytes (the ERROR frame last) are written
        if self._abort_timer is None and not self._lost:
            self._abort_timer = self.hub.loop.call_later(self.hub.limits.close_grace_s, self._abort)

    def _abort(self) -> None:
        """The peer did not take its last bytes within the grace time: drop them."""
        self._abort_timer = None
        if not self._lost and self.sink is not None:
            self.sink.abort()

    def buffered(self) -> int:
        return self.sink.get_write_buffer_size() if self.sink is not None else 0


class TcpEndpoint:
    """The listening socket and its open connections."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.server: asyncio.Server | None = None
        self.links: set[TcpLink] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def listen(self, host: str, port: int) -> None:
        self.server = await self.hub.loop.create_server(lambda: TcpLink(self.hub, self), host, port)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def opened(self, link: TcpLink) -> None:
        self.links.add(link)
        self._idle.clear()

    def lost(self, link: TcpLink) -> None:
        self.links.discard(link)
        if not self.links:
            self._idle.set()

    async def close(self, grace: float) -> None:
        """Stop listening; wait up to ``grace`` for open connections to end, then abort them."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            for link in list(self.links):
                if link.sink is not None:
                    link.sink.abort()
            await self._idle.wait()  # connection_lost follows each abort promptly


async def serve_tcp(hub: Hub, host: str, port: int) -> TcpEndpoint:
    """Start the TCP endpoint; the caller closes it."""
    endpoint = TcpEndpoint(hub)
    await endpoint.listen(host, port)
    return endpoint
