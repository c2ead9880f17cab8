"""Native peer transport: keeps one ``Node`` (or a worker wrapping one) connected to a relay.

Frames are length-prefixed (4-byte big-endian length, then the frame; ``wire`` has the layout).
A session: read HELLO, answer AUTH with the node's key, wait for READY, subscribe to the node's
topics, ask for sync on every community (so a reconnect resumes where it left off), republish
our own events that no trusted storage worker has acknowledged yet, then pump: received
envelopes go to the node, the node's outbox goes out. Any error ends the session; ``run``
reconnects with exponential backoff and jitter until ``stop``.

Envelopes produced while disconnected wait in a bounded queue; if it overflows, the oldest are
dropped, which loses nothing: the events are in the node's DAG and the next session republishes
whatever storage has not acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from willow_core.errors import DecodeError
from willow_core.node import Node
from willow_core.wire import (
    MAX_FRAME_BYTES,
    FrameType,
    auth_frame,
    parse_frame,
    publish_frame,
    subscribe_frame,
    unsubscribe_frame,
)

__all__ = [
    "Carrier",
    "PeerConnection",
    "read_frame",
    "write_frame",
    "wall_ms",
    "MAX_QUEUED_ENVELOPES",
    "SYNC_INTERVAL_S",
]

log = logging.getLogger("willow.peer")

#: Envelopes held while disconnected (the DAG keeps the events themselves).
MAX_QUEUED_ENVELOPES = 10_000
#: Anti-entropy: ask for sync this often even when nothing seems missing.
SYNC_INTERVAL_S = 30.0
#: A relay that does not complete the handshake in this long is not answering.
HANDSHAKE_TIMEOUT_S = 10.0
_LENGTH = struct.Struct(">I")


class Carrier(Protocol):
    """What a connection drives: a ``Node``, or a worker that wraps one (same surface)."""

    @property
    def node(self) -> Node: ...

    def topics(self) -> list[bytes]: ...

    def drain(self) -> list[bytes]: ...

    def receive(self, envelope_bytes: bytes, now_ms: int) -> None: ...

    def tick(self, now_ms: int) -> None: ...


def wall_ms() -> int:
    return int(time.time() * 1000)


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """Read one length-prefixed frame; the length is checked before the body is read."""
    header = await reader.readexactly(4)
    (size,) = _LENGTH.unpack(header)
    if size > MAX_FRAME_BYTES:
        raise DecodeError(f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
    return await reader.readexactly(size)


def write_frame(writer: asyncio.StreamWriter, frame: bytes) -> None:
    writer.write(_LENGTH.pack(len(frame)) + frame)


class PeerConnection:
    """One node, one relay, reconnecting forever until stopped."""

    def __init__(
        self,
        carrier: Carrier,
        host: str,
        port: int,
        *,
        clock_ms: Callable[[], int] = wall_ms,
        backoff: tuple[float, float] = (0.1, 10.0),
        sync_interval_s: float = SYNC_INTERVAL_S,
    ) -> None:
        self.carrier = carrier
        self.node = carrier.node
        self.host = host
        self.port = port
        self.clock_ms = clock_ms
        self.backoff = backoff
        self.sync_interval_s = sync_interval_s
        self.connected = asyncio.Event()
        self.sessions = 0
        self._queue: deque[bytes] = deque(maxlen=MAX_QUEUED_ENVELOPES)
        self._wake = asyncio.Event()
        self._stopping = False
        self._writer: asyncio.StreamWriter | None = None
        self._subscribed: set[bytes] = set()

    def wake(self) -> None:
        """Tell the connection the node has something to send."""
        self._queue.extend(self.carrier.drain())
        self._wake.set()

    async def run(self) -> None:
        delay = self.backoff[0]
        while not self.stopping:
            try:
                await self._session()
                delay = self.backoff[0]
            except (OSError, asyncio.IncompleteReadError, DecodeError, TimeoutError) as exc:
                log.info("relay session ended: %s", exc)
            finally:
                self.connected.clear()
                self._writer = None
            if self.is_stopping():
                break
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.backoff[1])

    @property
    def stopping(self) -> bool:
        return self._stopping

    def is_stopping(self) -> bool:
        """Like ``stopping``, as a call (read again after awaits, never narrowed away)."""
        return self._stopping

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frame_type, fields = parse_frame(await read_frame(reader))
        if frame_type is not FrameType.HELLO:
            raise DecodeError("relay did not say HELLO")
        relay_key, challenge = fields
        assert isinstance(relay_key, bytes)
        assert isinstance(challenge, bytes)
        write_frame(writer, auth_frame(self.node.identity, relay_key, challenge))
        await writer.drain()
        frame_type, fields = parse_frame(await read_frame(reader))
        if frame_type is FrameType.ERROR:
            raise DecodeError(f"relay refused us: {fields}")
        if frame_type is not FrameType.READY:
            raise DecodeError("relay did not say READY")

    async def _session(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        try:
            await asyncio.wait_for(self._handshake(reader, writer), HANDSHAKE_TIMEOUT_S)
            self._subscribed = set()
            self._resubscribe(writer)
            self._resume()
            self.sessions += 1
            self.connected.set()
            pump = asyncio.create_task(self._pump_out(writer))
            try:
                await self._pump_in(reader, writer)
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    def _resubscribe(self, writer: asyncio.StreamWriter) -> None:
        wanted = set(self.carrier.topics())
        new = sorted(wanted - self._subscribed)
        old = sorted(self._subscribed - wanted)
        for i in range(0, len(new), 64):
            write_frame(writer, subscribe_frame(new[i : i + 64]))
        for i in range(0, len(old), 64):
            write_frame(writer, unsubscribe_frame(old[i : i + 64]))
        self._subscribed = wanted

    def _resume(self) -> None:
        """After (re)connecting: catch up, and re-send what storage has not acknowledged."""
        node = self.node
        me = node.identity.public_key
        for server, community in list(node.communities.items()):
            node.request_sync(server)
            if not community.ready:
                continue
            mine = [
                ev
                for ev in community.managed.order
                if ev.author == me and not node.stored.get(ev.id)
            ]
            if mine:
                node.publish(server, mine)
        self.wake()

    async def _pump_in(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not self.stopping:
            frame = await read_frame(reader)
            frame_type, fields = parse_frame(frame)
            if frame_type is FrameType.PUBLISH:
                envelope = fields[0]
                assert isinstance(envelope, bytes)
                self.carrier.receive(envelope, self.clock_ms())
                self.wake()
            elif frame_type is FrameType.ERROR:
                log.warning("relay error: %s", fields)

    async def _pump_out(self, writer: asyncio.StreamWriter) -> None:
        last_sync = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            self._wake.clear()
            self.carrier.tick(self.clock_ms())
            if time.monotonic() - last_sync > self.sync_interval_s:
                last_sync = time.monotonic()
                for server in list(self.node.communities):
                    if not self.node.syncing(server):  # a catch-up under way is not restarted
                        self.node.request_sync(server)
            self._queue.extend(self.carrier.drain())
            if set(self.carrier.topics()) != self._subscribed:
                self._resubscribe(writer)
            while self._queue:
                write_frame(writer, publish_frame(self._queue.popleft()))
            await writer.drain()
