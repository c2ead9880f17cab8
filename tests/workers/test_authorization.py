"""Workers get authority only from a SyncProvider grant (D6, D11), and keep only granted work.

A worker that is not granted SyncProvider still answers (events are self-authenticating), but
clients ignore what is *not* self-verifying from it: end-of-history markers and storage
acknowledgements. Once an admin grants it, both count. The worker itself drops any community
where it is still not granted once the grace period has passed (clock injected: ``now_ms``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from relay.replay_worker import ReplayWorker
from relay.storage_worker import StorageWorker
from relay.tenancy import UNGRANTED_GRACE_MS
from willow_core.kinds import CreateChannel, GrantPermission, Message, RevokePermission
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.wire import community_topic

from .helpers import T0, Hub, ident, pk, serve_envelope

WORKER = "worker"
Worker = StorageWorker | ReplayWorker
MakeWorker = Callable[[Path], Worker]

KINDS: dict[str, MakeWorker] = {
    "storage": lambda tmp: StorageWorker(ident(WORKER), tmp / "data"),
    "replay": lambda tmp: ReplayWorker(ident(WORKER), 10_000, 16),
}


@pytest.fixture(params=sorted(KINDS))
def worker(request: pytest.FixtureRequest, tmp_path: Path) -> Worker:
    return KINDS[request.param](tmp_path)


def start(worker: Worker, now: int = T0) -> tuple[Node, bytes, bytes, Hub]:
    """An owner with a community and a channel, and the worker asked to serve it (ungranted)."""
    owner = Node(ident("owner"))
    server = owner.create("Room", now).server_id
    channel = owner.author(server, CreateChannel("general"), now + 1).id
    hub = Hub(owner, worker)
    owner.ask_to_serve(server, pk(WORKER))
    hub.run(now + 2)
    return owner, server, channel, hub


def test_ungranted_markers_and_acks_are_ignored_then_count_after_the_grant(
    worker: Worker,
) -> None:
    owner, server, channel, hub = start(worker)
    held = worker.node.communities[server]
    assert held.ready  # it synced the history
    assert not worker.tenancy.granted(server)
    assert server in worker.tenancy.probation

    # Not granted: its end-of-history marker and (storage) acknowledgements do not count.
    posted = owner.author(server, Message(channel, "before the grant"), T0 + 10)
    hub.run(T0 + 10)
    assert posted.id in held.dag.events
    assert pk(WORKER) not in owner.stored.get(posted.id, set())
    owner.request_sync(server, pk(WORKER))
    hub.run(T0 + 11)
    assert pk(WORKER) not in owner.progress[server].complete_from

    # The owner (an admin) grants SyncProvider; the worker learns it by replay.
    owner.author(server, GrantPermission(pk(WORKER), Permission.SYNC_PROVIDER), T0 + 20)
    hub.run(T0 + 20)
    assert worker.tenancy.granted(server)
    assert server not in worker.tenancy.probation
    assert owner.trusted(server, pk(WORKER))

    posted = owner.author(server, Message(channel, "after the grant"), T0 + 30)
    hub.run(T0 + 30)
    if isinstance(worker, StorageWorker):
        assert owner.stored[posted.id] == {pk(WORKER)}
    owner.request_sync(server, pk(WORKER))
    hub.run(T0 + 31)
    assert pk(WORKER) in owner.progress[server].complete_from

    # A granted community outlives the grace period.
    worker.tick(T0 + 31 + 10 * UNGRANTED_GRACE_MS)
    assert server in worker.node.communities


def test_an_ungranted_community_is_dropped_after_the_grace_period(
    worker: Worker, tmp_path: Path
) -> None:
    owner, server, channel, hub = start(worker)
    owner.author(server, Message(channel, "stored for now"), T0 + 3)
    hub.run(T0 + 3)
    if isinstance(worker, StorageWorker):
        assert worker.store.communities() == [server]
    worker.tick(T0 + UNGRANTED_GRACE_MS - 1)
    assert server in worker.node.communities
    worker.tick(T0 + 2 + UNGRANTED_GRACE_MS)
    assert server not in worker.node.communities
    assert community_topic(server) not in worker.topics()
    assert not worker.tenancy.probation
    if isinstance(worker, StorageWorker):
        assert worker.store.communities() == []  # its archive is deleted too
        assert list((tmp_path / "data").iterdir()) == []
        assert worker.dropped == 1
        assert worker.stats().dropped_ungranted == 1
        assert worker.stats().communities == 0
    else:
        assert worker.stats().dropped_ungranted == 1
    # late answers about it are ignored, not crashed on
    owner.request_sync(server)
    owner.author(server, Message(channel, "after the drop"), T0 + 2 + UNGRANTED_GRACE_MS)
    hub.run(T0 + 3 + UNGRANTED_GRACE_MS)
    assert server not in worker.node.communities


def test_the_grace_period_is_enforced_on_receive_too(worker: Worker) -> None:
    """Without ticks, the next envelope (any envelope) after the grace drops the community."""
    owner, server, _, hub = start(worker)
    other, other_server, _, _ = start_second(worker, hub)
    owner.author(server, GrantPermission(pk(WORKER), Permission.SYNC_PROVIDER), T0 + 5)
    hub.run(T0 + 5)
    assert set(worker.tenancy.probation) == {other_server}
    hub.run(T0 + UNGRANTED_GRACE_MS)  # nothing to deliver: nothing happens
    assert other_server in worker.node.communities
    other.author(other_server, Message(_channel(other, other_server), "hi"), T0 + 6)
    hub.run(T0 + 10 + UNGRANTED_GRACE_MS)
    assert other_server not in worker.node.communities
    assert server in worker.node.communities


def start_second(worker: Worker, hub: Hub) -> tuple[Node, bytes, bytes, Hub]:
    other = Node(ident("other-owner"))
    server = other.create("Other", T0).server_id
    channel = other.author(server, CreateChannel("general"), T0 + 1).id
    hub.add(other)
    other.ask_to_serve(server, pk(WORKER))
    hub.run(T0 + 2)
    assert server in worker.node.communities
    return other, server, channel, hub


def _channel(node: Node, server: bytes) -> bytes:
    state = node.communities[server].state
    return next(iter(state.channels))


def test_a_revoked_grant_starts_a_new_probation(worker: Worker) -> None:
    owner, server, _, hub = start(worker)
    owner.author(server, GrantPermission(pk(WORKER), Permission.SYNC_PROVIDER), T0 + 5)
    hub.run(T0 + 5)
    worker.tick(T0 + 6)
    assert not worker.tenancy.probation
    later = T0 + 100_000
    owner.author(server, RevokePermission(pk(WORKER), Permission.SYNC_PROVIDER), later)
    hub.run(later)
    assert not owner.trusted(server, pk(WORKER))
    assert worker.tenancy.probation == {server: later}
    worker.tick(later + UNGRANTED_GRACE_MS - 1)
    assert server in worker.node.communities
    worker.tick(later + UNGRANTED_GRACE_MS)
    assert server not in worker.node.communities


def test_a_community_whose_history_never_arrives_is_dropped(worker: Worker) -> None:
    stranger = ident("stranger")
    made_up = bytes(range(32))  # nobody has this community's genesis
    worker.receive(serve_envelope(stranger, made_up, pk(WORKER)), T0)
    assert made_up in worker.node.communities
    assert not worker.node.communities[made_up].ready
    worker.tick(T0 + UNGRANTED_GRACE_MS)
    assert made_up not in worker.node.communities


def test_probation_is_bounded_so_strangers_cannot_fill_a_worker(tmp_path: Path) -> None:
    for worker in (
        StorageWorker(ident(WORKER), tmp_path / "data", max_probation=3),
        ReplayWorker(ident(WORKER), 100, 100, max_probation=3),
    ):
        stranger = ident("stranger")
        for i in range(10):
            worker.receive(serve_envelope(stranger, bytes([i]) * 32, pk(WORKER)), T0)
        assert len(worker.node.communities) == 3
        assert len(worker.tenancy.probation) == 3
        worker.tick(T0 + UNGRANTED_GRACE_MS)
        assert not worker.node.communities
        worker.receive(serve_envelope(stranger, bytes([99]) * 32, pk(WORKER)), T0 + 1)
        assert len(worker.node.communities) == 1  # room again once probation cleared
