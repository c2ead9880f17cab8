"""Sync bodies (docs/protocol.md section 13.1): round trips, strict decoding, the worked example
bytes in the document, and what a node does with a marker whose signature does not verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from willow_core.client import Community
from willow_core.encoding import encode
from willow_core.errors import DecodeError
from willow_core.kinds import CreateChannel, GrantPermission, Message
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.sync import (
    MAX_HEADS,
    Head,
    SyncBatch,
    SyncDone,
    SyncRequest,
    answer,
)
from willow_core.testing import identity
from willow_core.wire import MessageKind, inbox_topic, open_envelope, seal

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
VECTORS = json.loads((ROOT / "tests" / "vectors" / "events.json").read_text())["vectors"]
GENESIS = next(v for v in VECTORS if v["kind_name"] == "CREATE_SERVER")
SERVER = bytes.fromhex(GENESIS["id_hex"])
OWNER = bytes.fromhex(GENESIS["author_hex"])
ID = bytes(range(32))


def test_the_worked_examples_in_the_document_are_these_bytes() -> None:
    first = SyncRequest(1, SERVER, (), None, None)
    marker = SyncDone(1, SERVER, 1, (0, SERVER))
    follow = SyncRequest(2, SERVER, (Head(OWNER, 1, SERVER),), None, None, (0, SERVER))
    for body, size in ((first, 40), (marker, 73), (follow, 145)):
        raw = body.encode()
        assert len(raw) == size
        assert f"\n{raw.hex()}\n" in DOC
        assert type(body).decode(raw) == body


@pytest.mark.parametrize(
    "body",
    [
        SyncRequest(7, SERVER, (Head(OWNER, 3, ID),), None, OWNER, (12, ID)),
        SyncRequest(2**63 - 1, SERVER, (), bytes(32), None, None),
        SyncDone(7, SERVER, 0, None),
        SyncDone(7, SERVER, 5, (2**63 - 1, ID)),
    ],
)
def test_bodies_round_trip(body: SyncRequest | SyncDone) -> None:
    assert type(body).decode(body.encode()) == body


@pytest.mark.parametrize(
    "value",
    [
        [1, SERVER, [], None, None],  # the old five-field request
        [1, SERVER, [], None, None, None, None],
        [1, SERVER, [], None, None, [1]],
        [1, SERVER, [], None, None, [-1, ID]],
        [1, SERVER, [], None, None, [1, ID[:31]]],
        [1, SERVER, [], None, None, ID],
        [1, SERVER, [], OWNER, OWNER, None],  # an empty range
        [1, SERVER, [], b"\xff" * 32, b"\x00" * 32, None],
        [1, SERVER, [[OWNER, 1, ID]], OWNER, None, None],  # head outside (lo, hi]
        [1, SERVER, [[OWNER, 1, ID]] * (MAX_HEADS + 1), None, None, None],
    ],
)
def test_malformed_requests_are_refused(value: list[object]) -> None:
    with pytest.raises(DecodeError):
        SyncRequest.decode(encode(value))


@pytest.mark.parametrize(
    "value",
    [
        [1, SERVER, 3],  # the old three-field marker
        [1, SERVER, 3, None, None],
        [1, SERVER, 0, [4, ID]],  # a cursor needs events sent
        [1, SERVER, 3, [4]],
        [1, SERVER, 3, [4, ID, 5]],
        [1, SERVER, -3, None],
    ],
)
def test_malformed_markers_are_refused(value: list[object]) -> None:
    with pytest.raises(DecodeError):
        SyncDone.decode(encode(value))


def test_a_marker_with_a_bad_signature_does_not_move_the_exchange() -> None:
    """Only the envelope signature binds a cursor to the responder (relays are untrusted): a
    forged cursor could make the reader skip events and still believe it reached the end."""
    provider = identity("bodies/provider")
    owner = identity("bodies/owner")
    room, genesis = Community.create(owner, "room", 1)
    events = [
        genesis,
        room.author(GrantPermission(provider.public_key, Permission.SYNC_PROVIDER), 2),
    ]
    channel = room.author(CreateChannel("general"), 3)
    events.append(channel)
    events += [room.author(Message(channel.id, f"{i} " + "x" * 300), 4 + i) for i in range(50)]
    serving = Node(provider, serves=True)
    serving.open(room.server_id).managed.receive(events, 10, verified=True)
    reader = Node(identity("bodies/reader"))
    reader.open(room.server_id).managed.receive(events[:3], 10, verified=True)
    reader.request_sync(room.server_id)
    (request_raw,) = reader.drain()
    request = SyncRequest.decode(open_envelope(request_raw).body)
    batches, done = answer(serving.communities[room.server_id].dag, request, window=2_000)
    assert done.cursor is not None
    topic = inbox_topic(reader.identity.public_key)
    for batch in batches:
        reader.receive(seal(provider, topic, MessageKind.SYNC_BATCH, batch.encode()), 10)
    forged = bytearray(seal(provider, topic, MessageKind.SYNC_DONE, done.encode()))
    forged[-1] ^= 1  # the signature is the envelope's last field
    errors = reader.errors
    reader.receive(bytes(forged), 10)
    assert reader.errors == errors + 1
    assert reader.drain() == []  # no continuation on a forged cursor
    reader.receive(seal(provider, topic, MessageKind.SYNC_DONE, done.encode()), 10)
    (follow,) = reader.drain()
    assert SyncRequest.decode(open_envelope(follow).body).after == done.cursor


def test_batches_within_a_window_keep_the_batch_bound() -> None:
    """``more`` is true on every batch of an answer but its last (informational)."""
    owner = identity("bodies/batches")
    room, genesis = Community.create(owner, "room", 1)
    channel = room.author(CreateChannel("general"), 2)
    for i in range(400):
        room.author(Message(channel.id, f"{i} " + "y" * 900), 3 + i)
    batches, done = answer(room.dag, SyncRequest(1, room.server_id, (), None, None))
    assert len(batches) >= 2
    assert [b.more for b in batches] == [True] * (len(batches) - 1) + [False]
    assert all(isinstance(b, SyncBatch) for b in batches)
    assert done.cursor is not None
    assert batches[0].events[0] == genesis.wire
