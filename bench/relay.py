"""Relay benchmarks: fan-out throughput and latency against a bare ``websockets`` broadcast server.

Two server processes run side by side, each on its own port, started by ``multiprocessing``
(spawn): our ``relay.server.Relay`` (WebSocket endpoint only) and a bare server that hands every
message from ``/pub`` to all ``/sub`` connections with ``websockets.broadcast`` (no handshake,
no checks, no limits). Compression is off on both, and both have keepalive pings off (a ping
would land in the byte counts below; a bench run is far shorter than a keepalive period anyway).

This process is the client side for both, with one harness: N subscriber connections and one
publisher. Subscribers are thin on purpose, so the servers are the bottleneck: each does the
WebSocket handshake with the sans-I/O ``websockets.client.ClientProtocol`` (and, for the relay,
HELLO/AUTH/READY and SUBSCRIBE), then only counts bytes. Every published frame has the same size,
so frames are counted from bytes. The publisher sends the same PUBLISH frames to both servers:
a real signed envelope with a 200-byte body (the bare server just forwards it).

* ``relay-fanout``: deliveries per second at N=100 and N=1,000. The publisher keeps at most
  ``WINDOW`` messages in flight (counted over all subscribers), so no queue grows without bound
  and the relay's slow-consumer policy never triggers. Rounds alternate between the servers; the
  best round of each counts. The contract line is the worse ratio of the two N (goal >= 0.6).
  A note also gives each server's CPU time per delivery (from ``/proc``), which is far less
  sensitive than wall-clock rates to other load on a shared machine.
* ``relay-latency``: 100 publishes per second to 100 subscribers for a few seconds; for each
  message the time from just before the publisher's send to its arrival at the *last*
  subscriber; p99 over messages, best round of each server; ratio relay/bare (goal <= 2).

The relay runs with its rate limits raised (one publisher sends hundreds of envelopes per
second here, above a person's default budget): the limits are still checked on every publish,
they just never refuse one. Everything else is the default configuration.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from willow_core.identity import Identity
from willow_core.testing import identity
from willow_core.wire import (
    MAX_FRAME_BYTES,
    FrameType,
    MessageKind,
    auth_frame,
    community_topic,
    parse_frame,
    publish_frame,
    seal,
    subscribe_frame,
)

from .harness import Result, report, runtime_gc

__all__ = ["relay_fanout", "relay_latency"]

Kind = Literal["bare", "relay"]
KINDS: tuple[Kind, ...] = ("bare", "relay")
BODY_BYTES = 200
#: Messages in flight (each to every subscriber) while measuring throughput.
WINDOW = 32
#: Deliveries per throughput round (messages = this / N).
ROUND_DELIVERIES = 60_000
FANOUT_ROUNDS = 5
LATENCY_RATE = 100
LATENCY_SECONDS = 6
LATENCY_ROUNDS = 2
#: Connections opened at once (stays under the listen backlog).
CONNECT_CONCURRENCY = 50
WAIT_S = 60.0
TOPIC = community_topic(b"bench-relay".ljust(32, b"\x00"))
#: Raised far above one publisher's needs; every check still runs on every publish.
BENCH_LIMITS: dict[str, float] = {
    "key_publishes_per_s": 10_000_000,
    "key_publish_burst": 10_000_000,
    "key_bytes_per_s": 10**12,
    "key_byte_burst": 10**12,
    "conn_frames_per_s": 10_000_000,
    "conn_frame_burst": 10_000_000,
    "keepalive_s": 3600,
}


# --- server processes ---------------------------------------------------------------------------


def _serve(kind: Kind, pipe: Connection) -> None:
    """Child process: run one server on 127.0.0.1, report its port, serve until terminated."""
    runtime_gc()
    asyncio.run(_serve_bare(pipe) if kind == "bare" else _serve_relay(pipe))


async def _serve_bare(pipe: Connection) -> None:
    subscribers: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/sub":
            subscribers.add(ws)
            try:
                await ws.wait_closed()
            finally:
                subscribers.discard(ws)
        else:
            async for message in ws:
                broadcast(subscribers, message)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        max_size=MAX_FRAME_BYTES,
        ping_interval=None,
        server_header=None,
    ) as server:
        pipe.send(server.sockets[0].getsockname()[1])
        await asyncio.Future()  # until the parent terminates us


async def _serve_relay(pipe: Connection) -> None:
    from relay.limits import Limits
    from relay.server import run_relay

    with tempfile.TemporaryDirectory() as data_dir:

        def ready(relay: Any) -> None:
            pipe.send(relay.ws_port)

        await run_relay(
            "127.0.0.1",
            None,
            0,
            None,
            data_dir,
            limits=Limits(**BENCH_LIMITS),  # type: ignore[arg-type]
            on_ready=ready,
        )


class ServerProcess:
    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(kind, child), daemon=True)
        self.process.start()
        deadline = time.monotonic() + WAIT_S
        while not parent.poll(0.1):
            if not self.process.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{kind} server did not start")
        self.port = int(parent.recv())

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux ``/proc``; else None)."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# --- the client side ----------------------------------------------------------------------------


class Tally:
    """Delivered-frame counter over all subscribers, with a threshold waiter and timings."""

    def __init__(self, frame_bytes: int) -> None:
        self.frame_bytes = frame_bytes
        self.frames = 0
        self._threshold = 0
        self._waiter: asyncio.Future[None] | None = None
        #: latency rounds: frame index -> send time / time the latest subscriber got it
        self.base: dict[Subscriber, int] = {}
        self.sent: list[float] = []
        self.last: list[float] = []
        self.timing = False

    def delivered(self, subscriber: Subscriber, before: int, after: int) -> None:
        self.frames += after - before
        if self.timing:
            now = time.perf_counter()
            base = self.base[subscriber]
            for index in range(before - base, after - base):
                if index < len(self.last):
                    self.last[index] = now
        waiter = self._waiter
        if waiter is not None and self.frames >= self._threshold and not waiter.done():
            waiter.set_result(None)

    async def reach(self, frames: int) -> None:
        if self.frames >= frames:
            return
        self._threshold = frames
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._waiter, WAIT_S)
        finally:
            self._waiter = None


class Subscriber(asyncio.Protocol):
    """A thin WebSocket subscriber: sans-I/O handshake, then it only counts bytes."""

    def __init__(self, tally: Tally, uri: str, me: Identity | None) -> None:
        self.tally = tally
        self.protocol = ClientProtocol(parse_uri(uri), max_size=None)
        self.me = me
        self.received = 0
        self.counting = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)

    def _counting(self) -> None:
        self.counting = True
        if not self.ready.done():
            self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.counting:
            size = self.tally.frame_bytes
            before = self.received // size
            self.received += len(data)
            after = self.received // size
            if after != before:
                self.tally.delivered(self, before, after)
            return
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if event.status_code != 101:
                    self._fail(f"handshake refused: {event.status_code}")
                elif self.me is None:
                    self._counting()  # bare server: subscribed by connecting to /sub
            elif isinstance(event, Frame) and event.opcode is Opcode.BINARY:
                self._relay_frame(bytes(event.data))
        self._flush()

    def _relay_frame(self, data: bytes) -> None:
        assert self.me is not None
        frame_type, fields = parse_frame(data)
        if frame_type is FrameType.HELLO:
            relay_key, challenge = fields
            assert isinstance(relay_key, bytes)
            assert isinstance(challenge, bytes)
            self.protocol.send_binary(auth_frame(self.me, relay_key, challenge))
        elif frame_type is FrameType.READY:
            self.protocol.send_binary(subscribe_frame([TOPIC]))
            self._counting()
        else:
            self._fail(f"unexpected {frame_type.name}: {fields}")

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc}")

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


@dataclass
class Side:
    """One server and this process's connections to it."""

    kind: Kind
    server: ServerProcess
    tally: Tally
    subscribers: list[Subscriber]
    publisher: ClientConnection
    frame: bytes

    async def publish(self) -> None:
        await self.publisher.send(self.frame)

    async def barrier(self) -> None:
        """Publish probes until every subscriber got one, then let the pipes drain."""
        size = self.tally.frame_bytes
        while any(s.received < size for s in self.subscribers):
            await self.publish()
            await asyncio.sleep(0.02)
        previous = -1
        while True:
            total = sum(s.received for s in self.subscribers)
            aligned = all(s.received % size == 0 for s in self.subscribers)
            if total == previous and aligned:
                return
            previous = total
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        for subscriber in self.subscribers:
            subscriber.abort()
        self.publisher.transport.abort()
        self.server.stop()


def _frame() -> bytes:
    publisher = identity("bench-publisher")
    body = bytes(range(200))[:BODY_BYTES]
    return publish_frame(seal(publisher, TOPIC, MessageKind.EVENTS, body))


def _ws_wire_bytes(payload: int) -> int:
    """An unmasked server-to-client binary frame's size on the wire."""
    if payload < 126:
        return 2 + payload
    return (4 if payload < 65536 else 10) + payload


async def _open_side(kind: Kind, n: int, frame: bytes) -> Side:
    server = await asyncio.to_thread(ServerProcess, kind)
    tally = Tally(_ws_wire_bytes(len(frame)))
    loop = asyncio.get_running_loop()
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
    path = "/sub" if kind == "bare" else "/"
    uri = f"ws://127.0.0.1:{server.port}{path}"

    async def subscriber(i: int) -> Subscriber:
        me = identity(f"bench-subscriber-{i}") if kind == "relay" else None
        async with limit:
            _, protocol = await loop.create_connection(
                lambda: Subscriber(tally, uri, me), "127.0.0.1", server.port
            )
            await asyncio.wait_for(protocol.ready, WAIT_S)
        return protocol

    subscribers = list(await asyncio.gather(*(subscriber(i) for i in range(n))))
    publisher = await connect(
        f"ws://127.0.0.1:{server.port}/{'pub' if kind == 'bare' else ''}",
        compression=None,
        max_size=None,
    )
    if kind == "relay":
        frame_type, fields = parse_frame(await publisher.recv(decode=False))
        assert frame_type is FrameType.HELLO
        relay_key, challenge = fields
        assert isinstance(relay_key, bytes)
        assert isinstance(challenge, bytes)
        await publisher.send(auth_frame(identity("bench-publisher"), relay_key, challenge))
        ready, _ = parse_frame(await publisher.recv(decode=False))
        assert ready is FrameType.READY
    side = Side(kind, server, tally, subscribers, publisher, frame)
    await side.barrier()
    return side


async def _with_sides(
    n: int, body: Callable[[dict[Kind, Side]], Coroutine[Any, Any, None]]
) -> None:
    frame = _frame()
    sides: dict[Kind, Side] = {}
    try:
        for kind in KINDS:
            sides[kind] = await _open_side(kind, n, frame)
        await body(sides)
    finally:
        for side in sides.values():
            await side.close()


# --- throughput ---------------------------------------------------------------------------------


async def _throughput(side: Side, messages: int) -> tuple[float, float | None]:
    """Deliveries per second for ``messages`` publishes with at most WINDOW in flight, and the
    server's CPU seconds per delivery over the same round (None where not measurable)."""
    n = len(side.subscribers)
    tally = side.tally
    start_frames = tally.frames
    cpu_before = side.server.cpu_seconds()
    started = time.perf_counter()
    for i in range(messages):
        if i >= WINDOW:
            await tally.reach(start_frames + (i - WINDOW) * n)
        await side.publish()
    await tally.reach(start_frames + messages * n)
    elapsed = time.perf_counter() - started
    cpu_after = side.server.cpu_seconds()
    await asyncio.sleep(0.2)  # let the other server's process settle before its round
    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = (cpu_after - cpu_before) / (messages * n)
    return messages * n / elapsed, cpu


def relay_fanout(sizes: tuple[int, ...] = (100, 1000), rounds: int = FANOUT_ROUNDS) -> Result:
    """Deliveries/s through the relay vs a bare broadcast server, N=100 and N=1,000."""
    lines: list[str] = []
    results: list[Result] = []

    async def measure(n: int) -> None:
        messages = max(50, ROUND_DELIVERIES // n)
        best: dict[Kind, float] = dict.fromkeys(KINDS, 0.0)
        cpu: dict[Kind, float] = dict.fromkeys(KINDS, float("inf"))

        async def body(sides: dict[Kind, Side]) -> None:
            for _ in range(rounds):
                for kind in KINDS:
                    rate, cost = await _throughput(sides[kind], messages)
                    best[kind] = max(best[kind], rate)
                    if cost is not None:
                        cpu[kind] = min(cpu[kind], cost)

        await _with_sides(n, body)
        result = Result(
            "relay-fanout",
            best["relay"],
            best["bare"],
            "/s",
            best["relay"] / best["bare"],
            ">=",
            0.6,
        )
        results.append(result)
        lines.append(f"N={n}: {result.line()}")
        if all(c != float("inf") for c in cpu.values()):
            lines.append(
                f"N={n}: server CPU per delivery: relay {cpu['relay'] * 1e6:.1f} us, "
                f"bare {cpu['bare'] * 1e6:.1f} us (relay/bare {cpu['relay'] / cpu['bare']:.3f})"
            )

    for n in sizes:
        asyncio.run(measure(n))
    worst = min(results, key=lambda r: r.ratio)
    notes = [
        *lines,
        f"{BODY_BYTES}-byte bodies, {len(_frame())}-byte frames, window {WINDOW} messages, "
        f"best of {rounds} rounds; subject/baseline in deliveries per second",
    ]
    return report(worst, notes)


# --- latency ------------------------------------------------------------------------------------


async def _latency(side: Side, rate: int, seconds: float) -> list[float]:
    """Publish at ``rate``/s; per message, seconds until the last subscriber had it."""
    tally = side.tally
    count = int(rate * seconds)
    tally.base = {s: s.received // tally.frame_bytes for s in side.subscribers}
    tally.sent = [0.0] * count
    tally.last = [0.0] * count
    tally.timing = True
    start_frames = tally.frames
    n = len(side.subscribers)
    started = time.perf_counter()
    try:
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tally.sent[i] = time.perf_counter()
            await side.publish()
        await tally.reach(start_frames + count * n)
    finally:
        tally.timing = False
    return [last - sent for sent, last in zip(tally.sent, tally.last, strict=True)]


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def relay_latency(n: int = 100, rounds: int = LATENCY_ROUNDS) -> Result:
    """p99 publish-to-last-subscriber latency at 100 msg/s, N=100: relay vs bare (goal <= 2)."""
    best: dict[Kind, list[float]] = {}

    async def body(sides: dict[Kind, Side]) -> None:
        for _ in range(rounds):
            for kind in KINDS:
                samples = await _latency(sides[kind], LATENCY_RATE, LATENCY_SECONDS)
                if kind not in best or _p99(samples) < _p99(best[kind]):
                    best[kind] = samples
                await asyncio.sleep(0.2)

    asyncio.run(_with_sides(n, body))
    p99 = {kind: _p99(samples) * 1000 for kind, samples in best.items()}
    p50 = {kind: statistics.median(samples) * 1000 for kind, samples in best.items()}
    notes = [
        f"N={n}, {LATENCY_RATE} msg/s for {LATENCY_SECONDS} s, best of {rounds} rounds",
        f"p50 ms: relay {p50['relay']:.2f}, bare {p50['bare']:.2f}",
    ]
    return report(
        Result(
            "relay-latency",
            p99["relay"],
            p99["bare"],
            "ms",
            p99["relay"] / p99["bare"],
            "<=",
            2.0,
        ),
        notes,
    )
