"""Hostile and broken clients: each gets a clear ERROR or a disconnect, and nobody else notices."""

from __future__ import annotations

import asyncio
import tracemalloc
from functools import partial
from pathlib import Path

import pytest
from relay_testkit import (
    TOPIC,
    TRANSPORTS,
    Closed,
    Peer,
    Transport,
    fast_limits,
    peer,
    relay_at,
    run,
    synced,
)

import relay.session
from relay.codes import ErrorCode, ws_close_code
from relay.limits import MAX_FRAME_BYTES
from willow_core.encoding import encode
from willow_core.testing import identity
from willow_core.wire import (
    MAX_TOPICS_PER_FRAME,
    FrameType,
    auth_frame,
    community_topic,
    inbox_topic,
    parse_frame,
    publish_frame,
    subscribe_frame,
)


def caught_up(progress: list[int], target: int) -> bool:
    return min(progress) >= target


def frozen() -> float:
    """A clock that never advances: token buckets never refill during the test."""
    return 0.0


def topics(n: int, salt: int = 0) -> list[bytes]:
    return [community_topic(salt.to_bytes(4, "big") + i.to_bytes(28, "big")) for i in range(n)]


# --- size caps and garbage --------------------------------------------------------------------


class DecodeCounter:
    """Counts frames the relay tries to decode (to prove a refusal happened before decoding)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0

        def counting(data: bytes) -> tuple[FrameType, list[object]]:
            self.calls += 1
            return parse_frame(data)

        monkeypatch.setattr(relay.session, "parse_frame", counting)


def test_tcp_frame_over_the_cap_is_refused_from_its_length_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = DecodeCounter(monkeypatch)

    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            client = await peer("tcp", relay, "alice")
            before = decoded.calls
            # Only the 4-byte prefix: the relay refuses without waiting for (or reading) a body.
            await client.send_raw((MAX_FRAME_BYTES + 1).to_bytes(4, "big"))
            await client.expect_error(ErrorCode.TOO_LARGE)
            await client.expect_closed()
            assert decoded.calls == before

    run(body)


def test_websocket_message_over_the_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = DecodeCounter(monkeypatch)

    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            client = await peer("ws", relay, "alice")
            before = decoded.calls
            await client.send_raw(publish_frame(b"\x00" * MAX_FRAME_BYTES))
            closed = await client.expect_closed()
            assert closed.code == 1009  # "message too big", from the WebSocket layer
            assert decoded.calls == before

    run(body)


def test_frame_at_exactly_the_cap_is_read(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            client = await peer("tcp", relay, "alice")
            # MAX_FRAME_BYTES of valid CBOR: [5, bstr] with the bstr filling the rest.
            head = 1 + 1 + 5  # array(2), uint 5, bstr head with a 4-byte length
            frame = publish_frame(b"\x00" * (MAX_FRAME_BYTES - head))
            assert len(frame) == MAX_FRAME_BYTES
            await client.send(frame)
            await client.expect_error(ErrorCode.BAD_ENVELOPE)  # decoded: not an envelope
            await synced(client)

    run(body)


@pytest.mark.parametrize(
    ("kind", "data", "code"),
    [
        ("tcp", b"\x00\x00\x00\x05hello", ErrorCode.MALFORMED),
        ("tcp", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ErrorCode.TOO_LARGE),  # "GET " as a length
        ("tcp", b"\x00\x00\x00\x00", ErrorCode.MALFORMED),  # an empty frame
        ("ws", b"hello", ErrorCode.MALFORMED),
        ("ws", encode([99]), ErrorCode.MALFORMED),  # unknown frame type
        ("ws", encode([5, b"x", b"y"]), ErrorCode.MALFORMED),  # PUBLISH of the wrong shape
        ("ws", b"\x82\x05\x41", ErrorCode.MALFORMED),  # truncated CBOR
        ("ws", b"\x82\x18\x05\x40", ErrorCode.MALFORMED),  # non-canonical CBOR
    ],
    ids=["tcp-junk", "tcp-http", "tcp-empty", "ws-junk", "type", "shape", "truncated", "noncanon"],
)
@pytest.mark.parametrize("authenticated", [False, True], ids=["before-auth", "after-auth"])
def test_garbage_is_refused_and_closed_without_affecting_others(
    tmp_path: Path, kind: Transport, data: bytes, code: ErrorCode, authenticated: bool
) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            alice = await peer("tcp", relay, "alice")
            bob = await peer("ws", relay, "bob")
            await bob.subscribe(TOPIC)
            await synced(bob)
            junk = await peer(kind, relay, "mallory", auth=authenticated)
            if not authenticated:
                await junk.hello()
            await junk.send_raw(data)
            await junk.expect_error(code)
            closed = await junk.expect_closed()
            if kind == "ws":
                assert closed.code == ws_close_code(code)
            for i in range(5):
                frame = await alice.publish(alice.seal(b"still here %d" % i))
                assert await bob.recv() == frame

    run(body)


def test_text_websocket_messages_are_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            client = await peer("ws", relay, "alice")
            assert client._ws is not None
            await client._ws.send("a text message")
            await client.expect_error(ErrorCode.MALFORMED)
            closed = await client.expect_closed()
            assert closed.code == ws_close_code(ErrorCode.MALFORMED)

    run(body)


# --- rates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_connection_flooding_frames_is_disconnected(tmp_path: Path, kind: Transport) -> None:
    limits = fast_limits(conn_frames_per_s=1, conn_frame_burst=20)

    async def body() -> None:
        async with relay_at(tmp_path, limits=limits, clock=frozen) as relay:
            client = await peer(kind, relay, "alice")  # AUTH was frame 1
            for _ in range(19):
                await client.send(subscribe_frame([TOPIC]))
            await client.expect_silence()  # frames 2-20 are within the burst
            await client.send(subscribe_frame([TOPIC]))  # frame 21
            await client.expect_error(ErrorCode.FLOODING)
            await client.expect_closed()

    run(body)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_per_key_publish_rate_limit(tmp_path: Path, kind: Transport) -> None:
    limits = fast_limits(key_publishes_per_s=1, key_publish_burst=5)

    async def body() -> None:
        async with relay_at(tmp_path, limits=limits, clock=frozen) as relay:
            alice = await peer(kind, relay, "alice")
            bob = await peer("tcp", relay, "bob")
            await bob.subscribe(TOPIC)
            await synced(bob)
            sent = [await alice.publish(alice.seal(b"%d" % i)) for i in range(5)]
            for frame in sent:
                assert await bob.recv() == frame
            for _ in range(3):
                await alice.publish(alice.seal(b"over"))
                await alice.expect_error(ErrorCode.RATE_LIMITED)
            await bob.expect_silence()
            assert relay.hub.errors[ErrorCode.RATE_LIMITED] == 3

    run(body)


def test_the_publish_budget_is_per_key_not_per_connection(tmp_path: Path) -> None:
    limits = fast_limits(key_publishes_per_s=1, key_publish_burst=4)

    async def body() -> None:
        async with relay_at(tmp_path, limits=limits, clock=frozen) as relay:
            first = await peer("tcp", relay, "alice")
            second = await peer("ws", relay, "alice")
            other = await peer("ws", relay, "carol")  # another key has its own budget
            bob = await peer("tcp", relay, "bob")
            await bob.subscribe(TOPIC)
            await synced(bob)
            for client in (first, second, first, second):
                frame = await client.publish(client.seal(b"ok"))
                assert await bob.recv() == frame  # handled before the next is sent
            await second.publish(second.seal(b"fifth"))
            await second.expect_error(ErrorCode.RATE_LIMITED)
            await first.publish(first.seal(b"sixth"))
            await first.expect_error(ErrorCode.RATE_LIMITED)
            await other.publish(other.seal(b"fine"))
            await other.expect_silence()
            # Reconnecting does not reset a spent budget.
            await first.close()
            await second.close()
            third = await peer("tcp", relay, "alice")
            await third.publish(third.seal(b"after reconnect"))
            await third.expect_error(ErrorCode.RATE_LIMITED)

    run(body)


def test_per_key_byte_budget(tmp_path: Path) -> None:
    limits = fast_limits(key_byte_burst=MAX_FRAME_BYTES, key_bytes_per_s=1)

    async def body() -> None:
        async with relay_at(tmp_path, limits=limits, clock=frozen) as relay:
            alice = await peer("ws", relay, "alice")
            bob = await peer("tcp", relay, "bob")
            await bob.subscribe(TOPIC)
            await synced(bob)
            big = await alice.publish(alice.seal(b"\x00" * (MAX_FRAME_BYTES * 3 // 4)))
            assert await bob.recv() == big
            await alice.publish(alice.seal(b"\x00" * (MAX_FRAME_BYTES // 2)))
            await alice.expect_error(ErrorCode.RATE_LIMITED)
            small = await alice.publish(alice.seal(b"small still fits"))
            assert await bob.recv() == small

    run(body)


# --- topics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_topics_per_connection_are_bounded(tmp_path: Path, kind: Transport) -> None:
    limits = fast_limits(max_topics_per_connection=100)

    async def body() -> None:
        async with relay_at(tmp_path, limits=limits) as relay:
            alice = await peer("tcp", relay, "alice")
            flood = await peer(kind, relay, "mallory")
            mine = topics(100)
            await flood.subscribe(*mine[:MAX_TOPICS_PER_FRAME])
            await flood.subscribe(*mine[MAX_TOPICS_PER_FRAME:])
            await flood.subscribe(*topics(1, salt=1))
            await flood.expect_error(ErrorCode.TOO_MANY_TOPICS)
            (session,) = [s for s in relay.hub.sessions if s.key == flood.key]
            assert len(relay.hub.bus.topics_of(session)) == 100
            # The connection stays, with its 100 subscriptions intact.
            frame = await alice.publish(alice.seal(b"to the last one", topic=mine[-1]))
            assert await flood.recv() == frame
            # A frame naming more than MAX_TOPICS_PER_FRAME topics is malformed outright.
            await flood.send(encode([int(FrameType.SUBSCRIBE), topics(65, salt=2)]))
            await flood.expect_error(ErrorCode.MALFORMED)
            await flood.expect_closed()
            assert relay.hub.bus.topic_count == 0

    run(body)


def test_total_topics_are_bounded(tmp_path: Path) -> None:
    limits = fast_limits(max_topics=100)

    async def body() -> None:
        async with relay_at(tmp_path, limits=limits) as relay:
            first = await peer("ws", relay, "alice")
            second = await peer("tcp", relay, "bob")
            await first.subscribe(*topics(60, salt=1))
            await synced(first)
            await second.subscribe(*topics(50, salt=2))
            await second.expect_error(ErrorCode.TOO_MANY_TOPICS)
            await second.subscribe(*topics(40, salt=2))  # exactly fills the table
            await second.subscribe(*topics(60, salt=1))  # existing topics cost nothing
            await synced(second)
            assert relay.hub.bus.topic_count == 100

    run(body)


# --- the inbox rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_subscribing_to_another_connected_keys_inbox_is_forbidden(
    tmp_path: Path, kind: Transport
) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            bob = await peer("ws", relay, "bob")
            mallory = await peer(kind, relay, "mallory")
            await mallory.subscribe(inbox_topic(bob.key), TOPIC)
            await mallory.expect_error(ErrorCode.FORBIDDEN_TOPIC)
            # The whole frame was refused (TOPIC too); her own inbox is fine.
            await mallory.subscribe(inbox_topic(mallory.key))
            await bob.subscribe(inbox_topic(bob.key))
            await synced(mallory, bob)
            alice = await peer("tcp", relay, "alice")
            dm = await alice.publish(alice.seal(b"for bob", topic=inbox_topic(bob.key)))
            assert await bob.recv() == dm
            await mallory.expect_silence()
            # The relay's own inbox is nobody's to read.
            await mallory.subscribe(inbox_topic(relay.key))
            await mallory.expect_error(ErrorCode.FORBIDDEN_TOPIC)

    run(body)


def test_keys_inbox_is_closed_to_others_even_after_it_disconnects(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            bob = await peer("ws", relay, "bob")
            await bob.close()
            mallory = await peer("tcp", relay, "mallory")
            await mallory.subscribe(inbox_topic(bob.key))
            await mallory.expect_error(ErrorCode.FORBIDDEN_TOPIC)

    run(body)


def test_an_inbox_of_a_key_that_never_connected_is_still_not_yours(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            carol_inbox = inbox_topic(identity("carol").public_key)
            mallory = await peer("tcp", relay, "mallory")
            await mallory.subscribe(carol_inbox)  # the topic's type byte says "an inbox"
            await mallory.expect_error(ErrorCode.FORBIDDEN_TOPIC)
            carol = await peer("ws", relay, "carol")
            await carol.subscribe(carol_inbox)
            await synced(carol)
            alice = await peer("tcp", relay, "alice")
            dm = await alice.publish(alice.seal(b"for carol", topic=carol_inbox))
            assert await carol.recv() == dm
            await mallory.expect_silence()

    run(body)


def test_publishing_to_any_inbox_is_allowed(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            bob = await peer("tcp", relay, "bob")
            await bob.subscribe(inbox_topic(bob.key))
            await synced(bob)
            for sender in ("alice", "carol", "dave"):
                client = await peer("ws", relay, sender)
                frame = await client.publish(client.seal(b"hi", topic=inbox_topic(bob.key)))
                assert await bob.recv() == frame

    run(body)


# --- connection limits ------------------------------------------------------------------------


def test_relay_full(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits(max_connections=2)) as relay:
            await peer("ws", relay, "alice")
            await peer("tcp", relay, "bob")
            third = await peer("ws", relay, "carol", auth=False)
            await third.expect_error(ErrorCode.RELAY_FULL)
            closed = await third.expect_closed()
            assert closed.code == ws_close_code(ErrorCode.RELAY_FULL)

    run(body)


def test_connections_per_key(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits(max_connections_per_key=2)) as relay:
            await peer("ws", relay, "alice")
            await peer("tcp", relay, "alice")
            third = await peer("tcp", relay, "alice", auth=False)
            await third.hello()
            await third.send(auth_frame(third.identity, third.relay_key, third.challenge))
            await third.expect_error(ErrorCode.TOO_MANY_CONNECTIONS)
            await third.expect_closed()
            assert relay.hub.access.connections(third.key) == 2
            await peer("ws", relay, "bob")  # other keys are unaffected

    run(body)


def test_stop_closes_everyone_with_shutting_down(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            clients = [await peer(k, relay, f"p{i}") for i, k in enumerate(TRANSPORTS * 2)]
            stopping = asyncio.ensure_future(relay.stop())
            for client in clients:
                await client.expect_error(ErrorCode.SHUTTING_DOWN)
                await client.expect_closed()
            await stopping

    run(body)


# --- slow consumers ---------------------------------------------------------------------------

FLOOD_FRAMES = 400
FLOOD_BODY = 64 * 1024
SEND_BOUND = 256 * 1024
WINDOW = 2


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_client_that_never_reads_is_dropped_and_memory_stays_bounded(
    tmp_path: Path, kind: Transport
) -> None:
    """400 x 64 KiB (25 MiB) published to a topic one subscriber never reads.

    An unbounded queue would hold most of it; the relay's per-connection buffer stays within
    its bound plus one frame, the sleeper is disconnected with SLOW_CONSUMER, and the two
    subscribers that do read get every frame in order.
    """
    limits = fast_limits(send_buffer_bytes=SEND_BOUND, close_grace_s=10)

    async def body() -> None:
        async with relay_at(tmp_path, limits=limits) as relay:
            alice = await peer("tcp", relay, "alice")
            readers = [await peer("ws", relay, "bob"), await peer("tcp", relay, "carol")]
            sleeper = await peer(kind, relay, "zed", rcvbuf=4096, max_queue=1)
            for client in (*readers, sleeper):
                await client.subscribe(TOPIC)
            await synced(*readers, sleeper)
            bodies = [i.to_bytes(4, "big") * (FLOOD_BODY // 4) for i in range(8)]
            frames = [publish_frame(alice.seal(b)) for b in bodies]
            frame_bytes = len(frames[0])

            largest = 0
            tracemalloc.start()
            try:
                baseline = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()

                # Readers report progress; the publisher keeps at most WINDOW frames ahead of
                # the slowest *reader*, as a well-behaved client would. The sleeper is not
                # waited for: that is the point.
                progress = [0] * len(readers)
                moved = asyncio.Condition()

                async def publish() -> int:
                    nonlocal largest
                    for i in range(FLOOD_FRAMES):
                        async with moved:
                            await moved.wait_for(partial(caught_up, progress, i - WINDOW))
                        await alice.send(frames[i % len(frames)])
                        largest = max(largest, relay.hub.largest_buffer())
                    return FLOOD_FRAMES

                async def read(index: int) -> int:
                    """How many frames arrived intact and in order (compared on the fly)."""
                    client = readers[index]
                    for i in range(FLOOD_FRAMES):
                        if await client.recv(within=20) != frames[i % len(frames)]:
                            return i
                        async with moved:
                            progress[index] = i + 1
                            moved.notify_all()
                    return FLOOD_FRAMES

                counts = await asyncio.gather(publish(), *map(read, range(len(readers))))
                peak = tracemalloc.get_traced_memory()[1] - baseline
            finally:
                tracemalloc.stop()

            assert counts == [FLOOD_FRAMES] * 3  # every frame, in order, for the readers
            assert relay.hub.errors[ErrorCode.SLOW_CONSUMER] == 1
            assert largest <= SEND_BOUND + frame_bytes + 1024
            flood = FLOOD_FRAMES * frame_bytes
            assert peak < 8 * 1024 * 1024 < flood / 3, (peak, flood)
            assert sleeper.key not in {s.key for s in relay.hub.sessions}
            # The sleeper, reading at last, finds what was already queued, then the ERROR.
            last, closed = await read_to_the_end(sleeper)
            frame_type, fields = parse_frame(last)
            assert (frame_type, fields[0]) == (FrameType.ERROR, ErrorCode.SLOW_CONSUMER)
            if kind == "ws":
                assert closed.code == ws_close_code(ErrorCode.SLOW_CONSUMER)

    run(body, timeout=60)


async def read_to_the_end(client: Peer) -> tuple[bytes, Closed]:
    """Read until the relay closes; return the last frame and how it closed."""
    last = b""
    while True:
        try:
            last = await client.recv(within=10)
        except Closed as closed:
            return last, closed
