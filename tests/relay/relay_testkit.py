"""Test clients for the relay over real loopback sockets (WebSocket and TCP), and a runner.

Every test runs its coroutine with ``run`` (a fresh event loop, a hard timeout) and starts its
own relay on port 0 with ``relay_at``; nothing is shared between tests.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from relay.codes import ErrorCode
from relay.limits import Limits
from relay.server import Relay
from willow_core.identity import Identity
from willow_core.testing import identity
from willow_core.wire import (
    FrameType,
    MessageKind,
    auth_frame,
    community_topic,
    parse_frame,
    publish_frame,
    seal,
    subscribe_frame,
)

Transport = Literal["ws", "tcp"]
TRANSPORTS: tuple[Transport, ...] = ("ws", "tcp")

#: Upper bound for any single wait in a test (the loopback answers in milliseconds).
WAIT_S = 5.0
TOPIC = community_topic(b"\x01" * 32)


#: Peers opened by the running test; ``run`` closes whatever the test left open.
_OPEN: list[Peer] = []


def run(factory: Callable[[], Coroutine[Any, Any, None]], timeout: float = 30.0) -> None:
    """Run one test coroutine in a fresh loop, failing it after ``timeout`` seconds."""

    async def bounded() -> None:
        try:
            await asyncio.wait_for(factory(), timeout)
        finally:
            while _OPEN:
                await _OPEN.pop().close()

    asyncio.run(bounded())


@asynccontextmanager
async def relay_at(tmp_path: Path, **kwargs: Any) -> AsyncIterator[Relay]:
    relay = Relay("127.0.0.1", data_dir=tmp_path / "relay", **kwargs)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


def fast_limits(**overrides: Any) -> Limits:
    """Limits with short timers, so closing paths finish quickly in tests."""
    values: dict[str, Any] = {"close_grace_s": 0.5, "auth_timeout_s": 2.0}
    values.update(overrides)
    return Limits(**values)


class Closed(Exception):
    """The relay closed the connection (``code`` is the WebSocket close code, if any)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


class Peer:
    """One client connection over either transport, speaking raw frames."""

    def __init__(self, kind: Transport, me: Identity) -> None:
        self.kind = kind
        self.identity = me
        self.relay_key = b""
        self.challenge = b""
        self._ws: ClientConnection | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def key(self) -> bytes:
        return self.identity.public_key

    # --- transport --------------------------------------------------------------------------

    async def open(self, port: int, *, rcvbuf: int | None = None, max_queue: int = 16) -> None:
        _OPEN.append(self)
        if self.kind == "ws":
            self._ws = await connect(
                f"ws://127.0.0.1:{port}/",
                compression=None,
                max_size=None,
                max_queue=max_queue,
                open_timeout=WAIT_S,
                close_timeout=1,
            )
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        self._reader, self._writer = await asyncio.open_connection(sock=sock)

    async def send_raw(self, data: bytes) -> None:
        """Bytes exactly as given (TCP: no length prefix added)."""
        if self._ws is not None:
            await self._ws.send(data)
        else:
            assert self._writer is not None
            self._writer.write(data)
            await self._writer.drain()

    async def send(self, frame: bytes) -> None:
        if self._ws is not None:
            await self._ws.send(frame)
        else:
            await self.send_raw(len(frame).to_bytes(4, "big") + frame)

    async def recv(self, within: float = WAIT_S) -> bytes:
        if self._ws is not None:
            try:
                message = await asyncio.wait_for(self._ws.recv(), within)
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
            assert isinstance(message, bytes)
            return message
        assert self._reader is not None
        try:
            header = await asyncio.wait_for(self._reader.readexactly(4), within)
            return await asyncio.wait_for(
                self._reader.readexactly(int.from_bytes(header, "big")), within
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            raise Closed() from None

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        elif self._writer is not None:
            self._writer.close()
            with suppress(OSError):
                await self._writer.wait_closed()

    # --- frames -----------------------------------------------------------------------------

    async def frame(self, within: float = WAIT_S) -> tuple[FrameType, list[object]]:
        return parse_frame(await self.recv(within))

    async def handshake(self, *, sign_with: Identity | None = None) -> None:
        """Read HELLO, send AUTH (signed by ``sign_with``, default ourselves), expect READY."""
        await self.hello()
        await self.send(auth_frame(sign_with or self.identity, self.relay_key, self.challenge))
        frame_type, _ = await self.frame()
        assert frame_type is FrameType.READY, frame_type

    async def hello(self) -> None:
        frame_type, fields = await self.frame()
        assert frame_type is FrameType.HELLO
        relay_key, challenge = fields
        assert isinstance(relay_key, bytes)
        assert isinstance(challenge, bytes)
        self.relay_key, self.challenge = relay_key, challenge

    async def subscribe(self, *topics: bytes) -> None:
        await self.send(subscribe_frame(list(topics)))

    async def publish(self, envelope: bytes) -> bytes:
        frame = publish_frame(envelope)
        await self.send(frame)
        return frame

    def seal(
        self, body: bytes, topic: bytes = TOPIC, kind: MessageKind = MessageKind.EVENTS
    ) -> bytes:
        return seal(self.identity, topic, kind, body)

    async def expect_error(self, code: ErrorCode, within: float = WAIT_S) -> str:
        frame_type, fields = await self.frame(within)
        assert frame_type is FrameType.ERROR, (frame_type, fields)
        assert fields[0] == code, (ErrorCode(int(str(fields[0]))), fields[1])
        return str(fields[1])

    async def expect_closed(self, within: float = WAIT_S) -> Closed:
        """Read (discarding) until the relay closes the connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            try:
                await self.recv(max(0.01, deadline - loop.time()))
            except Closed as closed:
                return closed

    async def expect_silence(self, within: float = 0.3) -> None:
        """Nothing arrives ``within`` seconds (the connection stays open)."""
        try:
            data = await self.recv(within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {parse_frame(data)}")


async def peer(
    kind: Transport, relay: Relay, name: str, *, auth: bool = True, **open_args: Any
) -> Peer:
    """A connected (and by default authenticated) peer with the test identity ``name``."""
    client = Peer(kind, identity(name))
    port = relay.ws_port if kind == "ws" else relay.tcp_port
    assert port is not None
    await client.open(port, **open_args)
    if auth:
        await client.handshake()
    return client


async def synced(*peers: Peer) -> None:
    """Make sure the relay has handled everything each peer sent so far.

    Frames on one connection are handled in order, so a frame that provokes an answer (here a
    publish with a wrong sender, refused with ERROR) proves the earlier ones were handled.
    """
    stranger = identity("synced-probe")
    for p in peers:
        await p.publish(seal(stranger, TOPIC, MessageKind.EVENTS, b"probe"))
        await p.expect_error(ErrorCode.WRONG_SENDER)


async def gather(*aws: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*aws))
