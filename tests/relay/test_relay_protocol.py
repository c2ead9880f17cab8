"""The relay protocol over real loopback sockets: handshake, subscriptions, checked fan-out."""

from __future__ import annotations

from pathlib import Path

import pytest
from relay_testkit import (
    TOPIC,
    TRANSPORTS,
    Transport,
    fast_limits,
    peer,
    relay_at,
    run,
    synced,
)

from relay.codes import ErrorCode, ws_close_code
from willow_core.encoding import encode
from willow_core.testing import identity
from willow_core.wire import (
    MAX_BODY_BYTES,
    FrameType,
    MessageKind,
    auth_frame,
    community_topic,
    hello_frame,
    inbox_topic,
    parse_frame,
    publish_frame,
    ready_frame,
    seal,
    subscribe_frame,
    unsubscribe_frame,
)

# --- handshake --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_handshake_hello_auth_ready(tmp_path: Path, kind: Transport) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            client = await peer(kind, relay, "alice", auth=False)
            await client.hello()
            assert client.relay_key == relay.key
            assert len(client.challenge) == 32
            await client.send(auth_frame(client.identity, client.relay_key, client.challenge))
            assert (await client.frame())[0] is FrameType.READY
            assert relay.hub.access.connections(client.key) == 1
            await client.close()

    run(body)


def test_every_connection_gets_a_fresh_challenge(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            one = await peer("tcp", relay, "alice", auth=False)
            two = await peer("ws", relay, "alice", auth=False)
            await one.hello()
            await two.hello()
            assert one.challenge != two.challenge
            # A signature over one connection's challenge does not open another connection.
            await two.send(auth_frame(two.identity, two.relay_key, one.challenge))
            await two.expect_error(ErrorCode.AUTH_FAILED)
            await two.expect_closed()
            await one.close()

    run(body)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_auth_with_a_bad_signature_is_refused_and_closed(tmp_path: Path, kind: Transport) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            client = await peer(kind, relay, "alice", auth=False)
            await client.hello()
            # Mallory claims Alice's key but can only sign with her own.
            forged = auth_frame(identity("mallory"), client.relay_key, client.challenge)
            fields = parse_frame(forged)[1]
            claimed = encode([int(FrameType.AUTH), client.key, fields[1]])
            await client.send(claimed)
            await client.expect_error(ErrorCode.AUTH_FAILED)
            closed = await client.expect_closed()
            if kind == "ws":
                assert closed.code == ws_close_code(ErrorCode.AUTH_FAILED)
            assert relay.hub.access.connections(client.key) == 0

    run(body)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_auth_for_another_relay_key_is_refused(tmp_path: Path, kind: Transport) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            client = await peer(kind, relay, "alice", auth=False)
            await client.hello()
            other_relay = identity("another relay").public_key
            await client.send(auth_frame(client.identity, other_relay, client.challenge))
            await client.expect_error(ErrorCode.AUTH_FAILED)
            await client.expect_closed()

    run(body)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_no_auth_in_time_closes(tmp_path: Path, kind: Transport) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits(auth_timeout_s=0.2)) as relay:
            client = await peer(kind, relay, "alice", auth=False)
            await client.hello()
            await client.expect_error(ErrorCode.AUTH_TIMEOUT, within=3)
            await client.expect_closed()
            assert relay.hub.stats()["connections"] == 0

    run(body)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_frames_before_auth_are_refused(tmp_path: Path, kind: Transport) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            listener = await peer("ws", relay, "bob")
            await listener.subscribe(TOPIC)
            await synced(listener)
            client = await peer(kind, relay, "alice", auth=False)
            await client.hello()
            await client.publish(client.seal(b"unauthenticated"))
            await client.expect_error(ErrorCode.NOT_AUTHENTICATED)
            await client.expect_closed()
            await listener.expect_silence()
            await listener.close()

    run(body)


@pytest.mark.parametrize(
    "frame",
    [
        hello_frame(b"\x00" * 32, b"\x01" * 32),
        ready_frame(),
        encode([int(FrameType.ERROR), 1, "a client never sends this"]),
    ],
    ids=["hello", "ready", "error"],
)
def test_relay_only_frames_from_a_client_close_it(tmp_path: Path, frame: bytes) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            client = await peer("tcp", relay, "alice")
            await client.send(frame)
            await client.expect_error(ErrorCode.PROTOCOL)
            await client.expect_closed()

    run(body)


def test_a_second_auth_is_a_protocol_error(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path, limits=fast_limits()) as relay:
            client = await peer("ws", relay, "alice")
            await client.send(auth_frame(client.identity, client.relay_key, client.challenge))
            await client.expect_error(ErrorCode.PROTOCOL)
            await client.expect_closed()

    run(body)


# --- fan-out ----------------------------------------------------------------------------------


@pytest.mark.parametrize("publisher_kind", TRANSPORTS)
def test_publish_reaches_subscribers_on_both_transports(
    tmp_path: Path, publisher_kind: Transport
) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            publisher = await peer(publisher_kind, relay, "alice")
            subscribers = [
                await peer("ws", relay, "bob"),
                await peer("tcp", relay, "carol"),
                await peer("ws", relay, "dave"),
                await peer("tcp", relay, "erin"),
            ]
            for s in subscribers:
                await s.subscribe(TOPIC)
            await synced(*subscribers)
            sent = [await publisher.publish(publisher.seal(b"m%d" % i)) for i in range(20)]
            for s in subscribers:
                got = [await s.recv() for _ in sent]
                assert got == sent  # the exact frame bytes, in publication order
            await publisher.expect_silence()  # no echo to the publishing connection
            assert relay.hub.bus.deliveries == 20 * len(subscribers)
            for p in (publisher, *subscribers):
                await p.close()

    run(body)


def test_only_subscribers_of_the_topic_receive(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            other = community_topic(b"\x02" * 32)
            alice = await peer("tcp", relay, "alice")
            bob = await peer("ws", relay, "bob")
            carol = await peer("tcp", relay, "carol")
            await bob.subscribe(TOPIC)
            await carol.subscribe(other)
            await synced(bob, carol)
            frame = await alice.publish(alice.seal(b"for TOPIC"))
            assert await bob.recv() == frame
            await carol.expect_silence()
            frame = await alice.publish(alice.seal(b"for other", topic=other))
            assert await carol.recv() == frame
            await bob.expect_silence()
            for p in (alice, bob, carol):
                await p.close()

    run(body)


def test_publisher_subscribed_to_the_topic_gets_no_echo_but_its_other_connection_does(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            laptop = await peer("tcp", relay, "alice")
            phone = await peer("ws", relay, "alice")  # same key, second device
            bob = await peer("ws", relay, "bob")
            for p in (laptop, phone, bob):
                await p.subscribe(TOPIC)
            await synced(laptop, phone, bob)
            for i in range(3):
                frame = await laptop.publish(laptop.seal(b"x%d" % i))
                assert await phone.recv() == frame
                assert await bob.recv() == frame
            await laptop.expect_silence()
            for p in (laptop, phone, bob):
                await p.close()

    run(body)


def test_unsubscribe_stops_delivery(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            alice = await peer("ws", relay, "alice")
            bob = await peer("tcp", relay, "bob")
            await bob.subscribe(TOPIC)
            await synced(bob)
            frame = await alice.publish(alice.seal(b"one"))
            assert await bob.recv() == frame
            await bob.send(unsubscribe_frame([TOPIC]))
            await synced(bob)
            await alice.publish(alice.seal(b"two"))
            await bob.expect_silence()
            assert relay.hub.bus.topic_count == 0
            await alice.close()
            await bob.close()

    run(body)


def test_a_disconnected_subscriber_is_forgotten(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            bob = await peer("tcp", relay, "bob")
            await bob.subscribe(TOPIC, community_topic(b"\x03" * 32))
            await synced(bob)
            assert relay.hub.bus.topic_count == 2
            await bob.close()
            alice = await peer("ws", relay, "alice")
            await synced(alice)  # bob's close has been seen by now (loopback, same loop)
            assert relay.hub.bus.topic_count == 0
            assert relay.hub.access.connections(bob.key) == 0
            await alice.close()

    run(body)


# --- envelope checks before fan-out -----------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_envelope_from_another_key_is_refused_and_not_delivered(
    tmp_path: Path, kind: Transport
) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            mallory = await peer(kind, relay, "mallory")
            bob = await peer("ws", relay, "bob")
            await bob.subscribe(TOPIC)
            await synced(bob)
            # A validly signed envelope, but by Alice: Mallory replays it as her own publish.
            alices = seal(identity("alice"), TOPIC, MessageKind.EVENTS, b"alice said this")
            await mallory.publish(alices)
            await mallory.expect_error(ErrorCode.WRONG_SENDER)
            own = await mallory.publish(mallory.seal(b"mine"))
            assert await bob.recv() == own  # the first thing bob sees is the valid one
            await mallory.close()
            await bob.close()

    run(body)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_bad_envelope_signature_is_refused_and_not_delivered(
    tmp_path: Path, kind: Transport
) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            alice = await peer(kind, relay, "alice")
            bob = await peer("tcp", relay, "bob")
            await bob.subscribe(TOPIC)
            await synced(bob)
            good = alice.seal(b"hello")
            tampered = bytearray(good)
            tampered[-1] ^= 0x01  # last byte of the signature
            await alice.publish(bytes(tampered))
            await alice.expect_error(ErrorCode.BAD_SIGNATURE)
            # A body changed after signing fails the same way.
            swapped = good.replace(b"hello", b"HELLO")
            await alice.publish(swapped)
            await alice.expect_error(ErrorCode.BAD_SIGNATURE)
            frame = await alice.publish(good)
            assert await bob.recv() == frame
            await bob.expect_silence()
            assert relay.hub.errors[ErrorCode.BAD_SIGNATURE] == 2
            await alice.close()
            await bob.close()

    run(body)


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff\xff", encode([1, 2, 3]), encode([TOPIC, 99, b"", b"\x00" * 32, b"\x00" * 64])],
    ids=["empty", "not-cbor", "wrong-shape", "unknown-kind"],
)
def test_publish_of_a_non_envelope_is_refused_and_the_connection_stays(
    tmp_path: Path, payload: bytes
) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            alice = await peer("ws", relay, "alice")
            await alice.send(publish_frame(payload))
            await alice.expect_error(ErrorCode.BAD_ENVELOPE)
            await synced(alice)  # still connected and served
            await alice.close()

    run(body)


@pytest.mark.parametrize("kind", list(MessageKind))
def test_bodies_are_opaque_every_kind_is_forwarded_byte_for_byte(
    tmp_path: Path, kind: MessageKind
) -> None:
    """Heads summaries, sync requests, snapshots, ciphertext: not the relay's business."""

    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            alice = await peer("tcp", relay, "alice")
            bob = await peer("ws", relay, "bob")
            inbox = inbox_topic(bob.key)
            await bob.subscribe(inbox)
            await synced(bob)
            bodies = [
                b"",  # empty
                b"\xff" * 100,  # not CBOR at all
                encode({"heads": [[b"\x00" * 32, 2**40, b"\x01" * 32]] * 300}),  # a huge summary
                bytes(range(256)) * 64,  # 16 KiB of binary noise
            ]
            for content in bodies:
                frame = await alice.publish(seal(alice.identity, inbox, kind, content))
                assert await bob.recv() == frame
            await alice.close()
            await bob.close()

    run(body)


def test_largest_envelope_passes_both_transports(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            alice = await peer("tcp", relay, "alice")
            bob = await peer("ws", relay, "bob")
            carol = await peer("tcp", relay, "carol")
            for p in (bob, carol):
                await p.subscribe(TOPIC)
            await synced(bob, carol)
            frame = await alice.publish(alice.seal(b"\x07" * MAX_BODY_BYTES))
            assert await bob.recv() == frame
            assert await carol.recv() == frame
            for p in (alice, bob, carol):
                await p.close()

    run(body)


def test_subscribing_twice_and_unsubscribing_unknown_topics_are_harmless(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            alice = await peer("tcp", relay, "alice")
            bob = await peer("ws", relay, "bob")
            await bob.subscribe(TOPIC)
            await bob.subscribe(TOPIC)
            await bob.send(unsubscribe_frame([community_topic(b"\x09" * 32)]))
            await bob.send(subscribe_frame([]))
            await synced(bob)
            frame = await alice.publish(alice.seal(b"once"))
            assert await bob.recv() == frame
            await bob.expect_silence()  # delivered once, not twice
            await alice.close()
            await bob.close()

    run(body)
