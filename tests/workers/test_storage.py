"""EventStore (relay/storage.py) and the storage worker around it (relay/storage_worker.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from relay.history import HistoryPage, HistoryRequest
from relay.storage import MAX_HISTORY_LIMIT, SCHEMA_VERSION, EventStore, StorageError
from relay.storage_worker import StorageWorker
from willow_core.client import Community
from willow_core.encoding import encode
from willow_core.errors import DecodeError, LocalError
from willow_core.event import Event, decode_event, sign_event, verify_event
from willow_core.kinds import CreateChannel, GrantPermission, Message
from willow_core.managed import ManagedDag
from willow_core.materialize import materialize
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.state import state_hash
from willow_core.wire import MessageKind, community_topic, inbox_topic, open_envelope, seal

from .helpers import T0, Hub, build_community, ident, pk

# --- EventStore -------------------------------------------------------------------------------


@pytest.fixture
def room() -> tuple[Community, list[Event]]:
    return build_community("owner", 60, members=("ann", "bob"))


def test_append_returns_ids_and_rows_are_what_restore_takes(
    tmp_path: Path, room: tuple[Community, list[Event]]
) -> None:
    view, events = room
    with EventStore(tmp_path) as store:
        ids = store.append(view.server_id, events, view.dag.depth)
        assert ids == [ev.id for ev in events]
        assert list(store.rows(view.server_id)) == view.managed.stored_rows()
        assert store.count(view.server_id) == len(events)


def test_wal_and_full_sync_and_schema_version(
    tmp_path: Path, room: tuple[Community, list[Event]]
) -> None:
    view, events = room
    with EventStore(tmp_path) as store:
        store.append(view.server_id, events[:3], view.dag.depth)
        settings = store.describe(view.server_id)
    assert settings == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "schema_version": SCHEMA_VERSION,
        "integrity": "ok",
    }
    # WAL mode is persistent: a separate connection to the file sees it too.
    conn = sqlite3.connect(tmp_path / f"{view.server_id.hex()}.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(events)")}
    assert "events_order" in indexes
    conn.close()


def test_duplicates_are_ignored_and_still_acknowledged(
    tmp_path: Path, room: tuple[Community, list[Event]]
) -> None:
    view, events = room
    with EventStore(tmp_path) as store:
        store.append(view.server_id, events[:10], view.dag.depth)
        again = store.append(view.server_id, events[5:15], view.dag.depth)
        assert again == [ev.id for ev in events[5:15]]
        assert store.count(view.server_id) == 15
        assert store.append(view.server_id, [], view.dag.depth) == []


def test_append_refuses_events_of_another_community_or_without_depth(
    tmp_path: Path, room: tuple[Community, list[Event]]
) -> None:
    view, events = room
    other, other_events = build_community("other", 1)
    with EventStore(tmp_path) as store:
        with pytest.raises(LocalError):
            store.append(view.server_id, other_events[1:], other.dag.depth)
        with pytest.raises(LocalError):
            store.append(view.server_id, events[:2], {})
        assert store.communities() == []  # nothing was even created


def test_history_pages_walk_back_through_everything_once(
    tmp_path: Path, room: tuple[Community, list[Event]]
) -> None:
    view, events = room
    server = view.server_id
    depth = view.dag.depth
    with EventStore(tmp_path) as store:
        store.append(server, events, depth)
        seen: list[bytes] = []
        cursor: tuple[int, bytes] | None = None
        while True:
            if cursor is None:
                page = store.history_page(server, None, 7)
            else:
                page = store.history_page(server, cursor[0], 7, before_id=cursor[1])
            assert len(page.rows) <= 7
            seen.extend(row[0] for row in page.rows)
            keys = [(row[1], row[0]) for row in page.rows]
            assert keys == sorted(keys, reverse=True)  # newest first
            if not page.more:
                break
            cursor = keys[-1]
        assert len(seen) == len(set(seen)) == len(events)
        assert seen == [ev.id for ev in reversed(view.managed.order)]
        # a depth-only cursor: everything strictly below that depth
        below = store.history_page(server, 3, 100).rows
        assert below
        assert all(row[1] < 3 for row in below)
        # caps: the count is capped, the byte budget stops early but sends at least one
        assert len(store.history_page(server, None, 10**9).rows) == len(events)
        assert MAX_HISTORY_LIMIT < 10**9
        tiny = store.history_page(server, None, 50, max_bytes=1)
        assert len(tiny.rows) == 1
        assert tiny.more
        # an unknown community has no history (and gets no file)
        assert store.history_page(bytes(32), None, 10).rows == []
        assert list(store.rows(bytes(32))) == []
        assert not store.path(bytes(32)).exists()


def test_communities_are_partitioned_one_file_each(tmp_path: Path) -> None:
    a, a_events = build_community("alice", 5)
    b, b_events = build_community("bob", 7)
    with EventStore(tmp_path) as store:
        store.append(a.server_id, a_events, a.dag.depth)
        store.append(b.server_id, b_events, b.dag.depth)
        assert store.communities() == sorted([a.server_id, b.server_id])
        assert {p.name for p in tmp_path.glob("*.db")} == {
            f"{a.server_id.hex()}.db",
            f"{b.server_id.hex()}.db",
        }
        assert {row[0] for row in store.rows(a.server_id)} == {ev.id for ev in a_events}
        assert {row[0] for row in store.rows(b.server_id)} == {ev.id for ev in b_events}
        assert store.delete(a.server_id)
        assert store.communities() == [b.server_id]
        assert not store.delete(a.server_id)


def test_connections_beyond_the_cap_are_closed_and_reopened(tmp_path: Path) -> None:
    built = [build_community(f"owner{i}", 1) for i in range(4)]
    with EventStore(tmp_path, max_open=2) as store:
        for view, events in built:
            store.append(view.server_id, events, view.dag.depth)
        assert len(store._open) == 2
        for view, events in built:
            assert store.count(view.server_id) == len(events)


def test_sqlite_errors_become_storage_errors(
    tmp_path: Path, room: tuple[Community, list[Event]]
) -> None:
    view, _ = room
    garbage = tmp_path / f"{view.server_id.hex()}.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with EventStore(tmp_path) as store:
        with pytest.raises(StorageError) as exc:
            store.count(view.server_id)
        assert exc.value.code == "SQLITE_NOTADB"
        assert exc.value.operation == "open"


def test_a_file_of_another_community_is_refused(
    tmp_path: Path, room: tuple[Community, list[Event]]
) -> None:
    view, events = room
    with EventStore(tmp_path) as store:
        store.append(view.server_id, events, view.dag.depth)
    other = tmp_path / f"{bytes(32).hex()}.db"
    (tmp_path / f"{view.server_id.hex()}.db").rename(other)
    with EventStore(tmp_path) as store, pytest.raises(StorageError) as exc:
        list(store.rows(bytes(32)))
    assert exc.value.code == "foreign"


def test_a_newer_schema_is_refused(tmp_path: Path, room: tuple[Community, list[Event]]) -> None:
    view, events = room
    with EventStore(tmp_path) as store:
        store.append(view.server_id, events[:1], view.dag.depth)
    conn = sqlite3.connect(tmp_path / f"{view.server_id.hex()}.db")
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with EventStore(tmp_path) as store, pytest.raises(StorageError) as exc:
        store.count(view.server_id)
    assert exc.value.code == "schema"


def test_a_failed_commit_acknowledges_nothing_and_stops_all_writes(
    tmp_path: Path, room: tuple[Community, list[Event]]
) -> None:
    view, events = room
    other, other_events = build_community("other", 1)
    with EventStore(tmp_path) as store:
        store.append(view.server_id, events[:2], view.dag.depth)
        conn = store._open[view.server_id]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now "full"
        with pytest.raises(StorageError) as exc:
            store.append(view.server_id, events[2:], view.dag.depth)
        assert exc.value.code == "SQLITE_FULL"
        assert store.failed is exc.value
        assert store.count(view.server_id) == 2  # the transaction rolled back whole
        with pytest.raises(StorageError):  # fsyncgate: no retry, not even elsewhere
            store.append(other.server_id, other_events, other.dag.depth)


# --- the storage worker ---------------------------------------------------------------------


def granted_setup(tmp_path: Path, messages: int = 20) -> tuple[Node, bytes, StorageWorker, Hub]:
    """An owner client, a storage worker granted SyncProvider and serving, on one hub."""
    owner = Node(ident("owner"))
    server = owner.create("Room", T0).server_id
    worker = StorageWorker(ident("storage"), tmp_path / "data")
    owner.author(server, GrantPermission(pk("storage"), Permission.SYNC_PROVIDER), T0 + 1)
    hub = Hub(owner, worker)
    owner.ask_to_serve(server, pk("storage"))
    hub.run(T0 + 2)
    channel = owner.author(server, CreateChannel("general"), T0 + 3).id
    for i in range(messages):
        owner.author(server, Message(channel, f"hello {i}"), T0 + 10 + i)
    hub.run(T0 + 100)
    return owner, server, worker, hub


def test_worker_acknowledges_exactly_what_it_committed(tmp_path: Path) -> None:
    owner, server, worker, _ = granted_setup(tmp_path)
    community = owner.communities[server]
    stored_ids = {row[0] for row in worker.store.rows(server)}
    assert stored_ids == set(community.dag.events)
    acked = {eid for eid, by in owner.stored.items() if pk("storage") in by}
    # Everything after the SERVE arrived on the topic and was acknowledged; all of it is stored.
    assert acked
    assert acked <= stored_ids
    assert worker.tenancy.granted(server)


def test_restore_gives_the_state_of_a_verified_ingest(tmp_path: Path) -> None:
    owner, server, worker, _ = granted_setup(tmp_path, messages=40)
    live = worker.node.communities[server]
    worker.close()
    again = StorageWorker(ident("storage"), tmp_path / "data")
    assert again.start(T0 + 200) == 1
    restored = again.node.communities[server]
    assert restored.state_hash() == live.state_hash() == owner.communities[server].state_hash()
    # and equal to a fresh, fully verified ingest of the same events (in reverse, even)
    fresh = Community(ident("someone"), server)
    wires = [decode_event(ev.wire) for ev in live.managed.order]
    receipt = fresh.receive(list(reversed(wires)), T0 + 300)
    assert not receipt.refused
    assert fresh.state_hash() == restored.state_hash() == state_hash(materialize(fresh.dag))
    assert again.tenancy.granted(server)
    assert not again.tenancy.probation
    # the restored worker keeps storing where it left off
    assert [open_envelope(e).kind for e in again.drain()] == [MessageKind.SYNC_REQUEST]


def test_restore_of_a_dag_with_a_fork(tmp_path: Path) -> None:
    view, events = build_community("owner", 5, members=("ann",))
    ann = ident("ann")
    head = view.dag.head(ann.public_key)
    assert head is not None
    twin = sign_event(
        secret_key=ann.secret_key,
        author=ann.public_key,
        server=view.server_id,
        seq=head.seq,
        prev=head.prev,
        deps=list(head.deps),
        ts=head.ts,
        payload=Message(events[-1].payload.channel, "the other branch"),
    )
    assert not view.receive([twin], T0 + 10**6).refused
    assert ann.public_key in view.dag.fork_seq
    with EventStore(tmp_path) as store:
        store.append(view.server_id, [*events, twin], view.dag.depth)
        managed = ManagedDag(view.server_id)
        managed.restore(store.rows(view.server_id))
    assert managed.state is not None
    assert state_hash(managed.state) == view.state_hash()
    assert managed.dag.fork_seq == view.dag.fork_seq


def test_forged_or_foreign_events_never_reach_the_store(tmp_path: Path) -> None:
    owner, server, worker, _ = granted_setup(tmp_path, messages=2)
    before = worker.store.count(server)
    errors = worker.node.errors
    community = owner.communities[server]
    channel = next(ev for ev in community.managed.order if ev.kind.name == "CREATE_CHANNEL")
    good = owner.author(server, Message(channel.id, "signed by the owner"), T0 + 500)
    owner.drain()
    forged_sig = bytes(64)
    tampered = encode([good.signable, forged_sig])
    _, other_events = build_community("stranger", 1)
    foreign = other_events[-1].wire  # validly signed, bound to another community
    topic = community_topic(server)
    for wire in (tampered, foreign):
        worker.receive(seal(ident("mallory"), topic, MessageKind.EVENTS, encode([wire])), T0 + 501)
    assert worker.node.errors == errors + 2
    assert worker.store.count(server) == before
    assert good.id not in {row[0] for row in worker.store.rows(server)}
    assert worker.store.communities() == [server]
    assert all(open_envelope(e).kind is not MessageKind.STORED for e in worker.drain())
    # the genuine event is stored and acknowledged
    worker.receive(seal(ident("owner"), topic, MessageKind.EVENTS, encode([good.wire])), T0 + 502)
    assert worker.store.count(server) == before + 1
    assert [open_envelope(e).kind for e in worker.drain()] == [MessageKind.STORED]


def test_history_pages_are_served_from_the_store(tmp_path: Path) -> None:
    _, server, worker, _ = granted_setup(tmp_path, messages=30)
    reader = ident("reader")
    total = worker.store.count(server)
    got: list[bytes] = []
    before: tuple[int, bytes] | None = None
    for request_id in range(1, 100):
        request = HistoryRequest(
            request_id,
            server,
            None if before is None else before[0],
            None if before is None else before[1],
            8,
        )
        worker.receive(
            seal(reader, inbox_topic(pk("storage")), MessageKind.HISTORY_REQUEST, request.encode()),
            T0 + 600,
        )
        (raw,) = worker.drain()
        env = open_envelope(raw)
        assert env.kind is MessageKind.HISTORY_PAGE
        assert env.topic == inbox_topic(reader.public_key)
        page = HistoryPage.decode(env.body)
        assert page.request_id == request_id
        assert page.server == server
        for wire in page.events:
            ev = decode_event(wire)
            assert verify_event(ev)  # self-authenticating: the reader checks each one
            got.append(ev.id)
        if not page.more:
            break
        before = page.next
    assert len(got) == len(set(got)) == total
    assert worker.history_pages == request_id
    # an unknown community or a malformed request gets no answer
    errors = worker.node.errors
    worker.receive(
        seal(
            reader,
            inbox_topic(pk("storage")),
            MessageKind.HISTORY_REQUEST,
            HistoryRequest(1, bytes(32), None, None, 5).encode(),
        ),
        T0 + 601,
    )
    worker.receive(
        seal(reader, inbox_topic(pk("storage")), MessageKind.HISTORY_REQUEST, encode([1])),
        T0 + 601,
    )
    assert worker.drain() == []
    assert worker.node.errors == errors + 1


def test_a_storage_failure_is_fatal_and_acknowledges_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, server, worker, hub = granted_setup(tmp_path, messages=1)
    channel = next(
        ev for ev in owner.communities[server].managed.order if ev.kind.name == "CREATE_CHANNEL"
    )

    def broken(*args: object) -> list[bytes]:
        raise StorageError("append", "disk", "SQLITE_IOERR")

    monkeypatch.setattr(worker.store, "append", broken)
    owner.author(server, Message(channel.id, "lost in flight"), T0 + 700)
    with pytest.raises(StorageError):
        hub.run(T0 + 700)
    assert worker.failed is not None
    assert all(open_envelope(e).kind is not MessageKind.STORED for e in worker.drain())
    with pytest.raises(StorageError):
        worker.receive(b"whatever comes next", T0 + 701)
    with pytest.raises(StorageError):
        worker.tick(T0 + 702)


def test_history_bodies_round_trip_and_refuse_malformed_input() -> None:
    request = HistoryRequest(7, bytes(range(32)), 12, bytes(32), 50)
    assert HistoryRequest.decode(request.encode()) == request
    page = HistoryPage(7, bytes(range(32)), (b"wire",), True, (3, bytes(32)))
    assert HistoryPage.decode(page.encode()) == page
    empty = HistoryPage(8, bytes(range(32)), (), False, None)
    assert HistoryPage.decode(empty.encode()) == empty
    bad_requests = [
        [7, bytes(31), None, None, 5],  # short server id
        [7, bytes(32), None, bytes(32), 5],  # a cursor id without its depth
        [7, bytes(32), -1, None, 5],
        [7, bytes(32), None, None],
    ]
    for body in bad_requests:
        with pytest.raises(DecodeError):
            HistoryRequest.decode(encode(body))
    bad_pages = [
        [7, bytes(32), ["text"], False, None],
        [7, bytes(32), [], 0, None],
        [7, bytes(32), [], False, [3]],
        [7, bytes(32), [], False, [3, bytes(5)]],
    ]
    for body in bad_pages:
        with pytest.raises(DecodeError):
            HistoryPage.decode(encode(body))


def test_a_late_removal_moves_stored_events_and_restore_follows(tmp_path: Path) -> None:
    """Events stored before a kick that had not seen them are moved behind it in the order;
    the store must follow, or a restart would replay them before the kick and accept them."""
    from relay.storage_worker import StorageWorker
    from willow_core.invite import InviteLink, invite_key
    from willow_core.kinds import CreateChannel, CreateInvite, KickMember, Message, Propose
    from willow_core.node import Node
    from willow_core.state import state_hash
    from willow_core.testing import identity, seed_bytes

    owner = Node(identity("mv/owner"))
    member = Node(identity("mv/member"))
    community = owner.create("moves", 1)
    server = community.server_id
    channel = owner.author(server, CreateChannel("general"), 2).id
    seed = seed_bytes("mv/invite")
    invite = owner.author(server, CreateInvite(invite_key(seed)[0]), 3)
    member.open(server).receive(community.managed.order, 4)
    member.join(InviteLink(server, invite.id, seed), 5)
    community.receive(member.communities[server].managed.order, 6)
    # The member posts; the owner kicks without having seen those posts.
    posts = [member.author(server, Message(channel, f"p{i}"), 10 + i) for i in range(3)]
    for i in range(5):  # the owner's history grows deeper than the posts
        owner.author(server, Message(channel, f"o{i}"), 15 + i)
    kick = owner.author(server, Propose(KickMember(member.identity.public_key, False)), 20)

    worker = StorageWorker(identity("mv/storage"), tmp_path / "store")
    carried = worker.carry(server, 0)
    before_kick = [ev for ev in community.managed.order if ev.id != kick.id]
    # The owner's history, then the posts (stored at their own depth), then the kick that did
    # not see them and so moves them behind itself.
    for batch in (before_kick, posts, [kick]):
        receipt = carried.managed.receive(batch, 40)
        assert worker.node.store is not None
        list(worker.node.store(server, receipt.inserted + receipt.moved))
    live = carried.state
    assert all(live.rejected.get(p.id) is not None for p in posts)  # after the kick: refused
    assert receipt.moved, "the kick moved stored posts"
    worker.close()

    again = StorageWorker(identity("mv/storage"), tmp_path / "store")
    assert again.start(50) == 1
    restored = again.node.communities[server]
    assert state_hash(restored.state) == state_hash(live)
    again.close()
