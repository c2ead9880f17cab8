"""The WebSocket endpoint (browsers): one binary message is one frame.

Served by ``websockets`` (asyncio implementation) with:

* ``max_size = MAX_FRAME_BYTES``: a larger message is refused from its header, before it is read
  or decoded (close code 1009);
* ``compression=None``: bodies are signatures, hashes and (with E2EE) ciphertext, which barely
  compress; deflate costs ~50 KiB and CPU
  per connection, and compressing attacker-influenced data next to secrets invites oracles;
* ``max_queue = Limits.inbound_queue_frames``: the relay stops reading a socket whose messages it
  has not handled yet;
* ``write_limit = Limits.send_buffer_bytes``: the transport's high-water mark. Crossing it calls
  ``pause_writing``, which here is the slow-consumer trigger (``Session.overflow``).

Fan-out uses ``websockets.asyncio.server.broadcast`` over every WebSocket subscriber of a topic
with the same bytes (no backpressure there by design: the high-water mark above is the bound).
Control frames (HELLO, READY, ERROR) are written the same synchronous way, never awaited.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from .codes import ErrorCode, ws_close_code
from .hub import Hub
from .limits import MAX_FRAME_BYTES

__all__ = ["RelayConnection", "WsLink", "ws_fan_out", "serve_ws", "bound_port"]

#: Time allowed for the opening handshake (HTTP upgrade) of a new connection.
OPEN_TIMEOUT_S = 10


class RelayConnection(ServerConnection):
    """``websockets``' server connection with a hook on the write buffer's high-water mark."""

    overflow: Callable[[], None] | None = None

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.overflow is not None:
            self.overflow()


def ws_fan_out(sinks: Sequence[Any], frame: bytes) -> None:
    broadcast(sinks, frame)


class WsLink:
    """``relay.session.Link`` over one WebSocket connection."""

    __slots__ = ("conn", "grace", "fan_out", "sink")

    def __init__(self, conn: RelayConnection, grace: float) -> None:
        self.conn = conn
        self.grace = grace
        self.fan_out = ws_fan_out
        self.sink = conn

    def send(self, frame: bytes) -> None:
        conn = self.conn
        if conn.protocol.state is State.OPEN:
            conn.protocol.send_binary(frame)
            conn.send_data()

    def close(self, code: ErrorCode, text: str) -> None:
        conn = self.conn
        if conn.protocol.state is State.OPEN:
            conn.protocol.send_close(ws_close_code(code), text)
            conn.send_data()
        # A peer that never reads never answers the close: abort after the grace time.
        conn.loop.call_later(self.grace, self._abort)

    def _abort(self) -> None:
        conn = self.conn
        if not conn.connection_lost_waiter.done():
            conn.transport.abort()

    def buffered(self) -> int:
        transport = getattr(self.conn, "transport", None)
        return transport.get_write_buffer_size() if transport is not None else 0


async def _handle(hub: Hub, conn: ServerConnection) -> None:
    assert isinstance(conn, RelayConnection)
    session = hub.open(WsLink(conn, hub.limits.close_grace_s))
    conn.overflow = session.overflow
    try:
        while not session.is_closed():
            message = await conn.recv()
            if isinstance(message, str):
                session.fail(ErrorCode.MALFORMED, "text messages are not frames")
                break
            session.on_frame(message)
    except ConnectionClosed:
        pass
    finally:
        conn.overflow = None
        session.lost()


async def serve_ws(hub: Hub, host: str, port: int) -> Server:
    """Start the WebSocket endpoint; the caller closes the returned server."""
    limits = hub.limits

    async def handler(conn: ServerConnection) -> None:
        await _handle(hub, conn)

    return await serve(
        handler,
        host,
        port,
        compression=None,
        max_size=MAX_FRAME_BYTES,
        max_queue=limits.inbound_queue_frames,
        write_limit=limits.send_buffer_bytes,
        ping_interval=limits.keepalive_s,
        ping_timeout=limits.keepalive_s,
        open_timeout=OPEN_TIMEOUT_S,
        close_timeout=limits.close_grace_s,
        server_header=None,
        create_connection=RelayConnection,
    )


def bound_port(server: Server) -> int:
    """The port a server listens on (after binding port 0)."""
    sockets = server.sockets
    return int(sockets[0].getsockname()[1])
