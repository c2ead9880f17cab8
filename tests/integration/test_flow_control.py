"""Tier 3: a reader slow to verify catches up on megabytes without being dropped.

A relay on 127.0.0.1 with its default limits (1 MiB send buffer per connection), the storage
worker in a child process (as ``willow up`` runs it), a writer that stores about 3.5 MiB of
messages, and a reader on a WebSocket with a tiny socket receive buffer that stops reading for
a while after every sync batch (as a browser busy verifying does). Sync answers come one window
at a time (docs/protocol.md section 13.4), so the relay never holds more than a window or so for
the reader: it is never disconnected as a slow consumer, and it receives every event once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from relay.codes import ErrorCode
from relay.keyfile import load_or_create_identity
from relay.limits import SEND_BUFFER_BYTES
from relay.peer import PeerConnection
from relay.server import Relay
from relay.supervise import WorkerProcess
from willow_core.kinds import CreateChannel, GrantPermission, Message
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.sync import WINDOW_BYTES
from willow_core.testing import identity
from willow_core.wire import (
    FrameType,
    MessageKind,
    auth_frame,
    community_topic,
    inbox_topic,
    open_envelope,
    parse_frame,
    publish_frame,
    subscribe_frame,
)

MESSAGES = 7_000
BODY = "x" * 400
#: The reader's pause after each batch: a browser verifying ~500 events.
PAUSE_S = 0.25
T0 = 1_770_000_000_000


def test_a_slow_reader_catches_up_on_megabytes_without_being_dropped(tmp_path: Path) -> None:
    storage_key = load_or_create_identity(tmp_path / "storage").public_key

    async def body() -> None:
        relay = Relay("127.0.0.1", ws_port=0, tcp_port=0, http_port=None, data_dir=tmp_path / "r")
        await relay.start()
        try:
            assert relay.tcp_port is not None
            worker = WorkerProcess("storage", "127.0.0.1", relay.tcp_port, tmp_path / "storage")
            await worker.start()
            # Connected once its inbox is subscribed (a SERVE sent earlier would be lost).
            deadline = asyncio.get_running_loop().time() + 30
            while not relay.hub.bus.has_topic(inbox_topic(storage_key)):
                assert asyncio.get_running_loop().time() < deadline, "the worker did not connect"
                await asyncio.sleep(0.02)
            writer = Node(identity("flow/writer"))
            link = PeerConnection(writer, "127.0.0.1", relay.tcp_port, backoff=(0.05, 0.5))
            task = asyncio.create_task(link.run())
            try:
                await asyncio.wait_for(link.connected.wait(), 10)
                server = await _write_history(relay, writer, link, storage_key)
                total = len(writer.communities[server].dag)
                size = sum(len(e.wire) for e in writer.communities[server].dag.events.values())
                assert size > 8 * WINDOW_BYTES
                await _slow_reader(relay, server, total)
            finally:
                await link.stop()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await worker.stop()
        finally:
            await relay.stop()

    asyncio.run(asyncio.wait_for(body(), 240))


async def _browser_like(relay: Relay, name: str) -> ClientConnection:
    """A WebSocket client with an 8 KiB socket receive buffer, authenticated as ``name``: what
    it does not read piles up in the relay's send buffer for it, not in the kernel."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", relay.ws_port))
    ws = await connect(f"ws://127.0.0.1:{relay.ws_port}/", sock=sock, compression=None, max_queue=1)
    frame_type, (relay_key, challenge) = parse_frame(await _recv(ws))
    assert frame_type is FrameType.HELLO
    assert isinstance(relay_key, bytes)
    assert isinstance(challenge, bytes)
    await ws.send(auth_frame(identity(name), relay_key, challenge))
    assert parse_frame(await _recv(ws))[0] is FrameType.READY
    return ws


async def _recv(ws: ClientConnection, within: float = 5) -> bytes:
    message = await asyncio.wait_for(ws.recv(), within)
    assert isinstance(message, bytes)
    return message


async def _write_history(relay: Relay, writer: Node, link: PeerConnection, storage: bytes) -> bytes:
    now = T0
    community = writer.create("Flow", now)
    server = community.server_id
    writer.author(server, GrantPermission(storage, Permission.SYNC_PROVIDER), now + 1)
    channel = writer.author(server, CreateChannel("general"), now + 2).id
    writer.ask_to_serve(server, storage)
    link.wake()
    room = writer.communities[server]
    events = [room.author(Message(channel, f"{i} {BODY}"), now + 3 + i) for i in range(MESSAGES)]
    writer.publish(server, events)  # 256 events an envelope: well within the publish budget
    link.wake()
    ids = [e.id for e in events]
    deadline = asyncio.get_running_loop().time() + 120
    while not all(i in writer.stored for i in ids):
        assert asyncio.get_running_loop().time() < deadline, (
            f"the history was not stored: {sum(i in writer.stored for i in ids)} of {len(ids)}; "
            f"relay errors {dict(relay.hub.errors)}"
        )
        await asyncio.sleep(0.1)
    return server


async def _slow_reader(relay: Relay, server: bytes, total: int) -> None:
    reader = Node(identity("flow/reader"))
    client = await _browser_like(relay, "flow/reader")
    await client.send(subscribe_frame([inbox_topic(reader.identity.public_key)]))
    await client.send(subscribe_frame([community_topic(server)]))
    reader.open(server)
    reader.request_sync(server)
    peak = 0
    now = T0 + 10**7
    deadline = asyncio.get_running_loop().time() + 120
    while len(reader.communities[server].dag) < total or reader.syncing(server):
        assert asyncio.get_running_loop().time() < deadline, "the reader did not catch up"
        for envelope in reader.drain():
            await client.send(publish_frame(envelope))
        try:
            frame = await _recv(client, within=2)
        except TimeoutError:
            reader.tick(now)
            now += 1_000
            continue
        except ConnectionClosed:
            raise AssertionError("the relay closed the reader") from None
        frame_type, fields = parse_frame(frame)
        assert frame_type is FrameType.PUBLISH, fields
        raw = fields[0]
        assert isinstance(raw, bytes)
        reader.receive(raw, now)
        peak = max(peak, relay.hub.largest_buffer())
        if open_envelope(raw).kind is MessageKind.SYNC_BATCH:
            await asyncio.sleep(PAUSE_S)  # busy verifying: not reading the socket
            peak = max(peak, relay.hub.largest_buffer())
    assert relay.hub.errors[ErrorCode.SLOW_CONSUMER] == 0
    assert peak < SEND_BUFFER_BYTES
    progress = reader.progress[server]
    assert progress.events == total  # one provider, each event once
    assert progress.requested > 8  # window after window
    assert progress.complete_from  # the storage worker vouched for the end
    await client.close()
