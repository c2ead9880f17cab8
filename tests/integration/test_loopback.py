"""Tier 3: real sockets on 127.0.0.1: one relay, both workers, native peers.

Three peers and the two workers create a community, join through an invite, and exchange
1,000 messages while one peer is offline; it reconnects and catches up, and everyone ends with
the same state hash. Then a brand-new peer, with every other peer and the replay worker gone,
syncs the whole history from the storage worker alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from relay.peer import Carrier, PeerConnection
from relay.replay_worker import ReplayWorker
from relay.server import Relay
from relay.storage_worker import StorageWorker
from willow_core.invite import InviteLink, invite_key
from willow_core.kinds import CreateChannel, CreateInvite, GrantPermission, Message
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.testing import identity, seed_bytes

MESSAGES = 1_000
TIMEOUT_S = 90.0


class Running:
    """A carrier connected to the relay in a background task."""

    def __init__(self, carrier: Carrier, port: int) -> None:
        self.carrier = carrier
        self.connection = PeerConnection(carrier, "127.0.0.1", port, backoff=(0.05, 0.5))
        self.task = asyncio.create_task(self.connection.run())

    async def ready(self) -> None:
        await asyncio.wait_for(self.connection.connected.wait(), 10)

    def wake(self) -> None:
        self.connection.wake()

    async def stop(self) -> None:
        await self.connection.stop()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def until(condition: Callable[[], bool], what: str, limit_s: float = TIMEOUT_S) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def state_of(carrier: Carrier, server: bytes) -> bytes | None:
    community = carrier.node.communities.get(server)
    if community is None or not community.ready:
        return None
    return community.state_hash()


async def scenario(tmp: Path) -> None:
    relay = Relay("127.0.0.1", ws_port=None, tcp_port=0, http_port=None, data_dir=tmp / "relay")
    await relay.start()
    assert relay.tcp_port is not None
    port = relay.tcp_port
    storage = StorageWorker(identity("it/storage"), tmp / "storage")
    storage.start(0)
    replay = ReplayWorker(identity("it/replay"))
    workers = [Running(storage, port), Running(replay, port)]
    alice, bob, carol = (Node(identity(f"it/{n}")) for n in ("alice", "bob", "carol"))
    peers = {
        name: Running(node, port)
        for name, node in zip(("a", "b", "c"), (alice, bob, carol), strict=True)
    }
    try:
        for running in [*workers, *peers.values()]:
            await running.ready()
        clock = 1_770_000_000_000

        def now() -> int:
            nonlocal clock
            clock += 1
            return clock

        # Alice founds the community and hands it to both workers.
        community = alice.create("Loopback", now())
        server = community.server_id
        channel = alice.author(server, CreateChannel("general"), now()).id
        for worker in (storage, replay):
            key = worker.identity.public_key
            alice.author(server, GrantPermission(key, Permission.SYNC_PROVIDER), now())
            alice.ask_to_serve(server, key)
        seed = seed_bytes("it/invite")
        invite = alice.author(server, CreateInvite(invite_key(seed)[0]), now())
        link = InviteLink(server, invite.id, seed)
        peers["a"].wake()
        await until(lambda: state_of(storage, server) == state_of(alice, server), "storage")
        await until(lambda: state_of(replay, server) == state_of(alice, server), "replay")

        # Bob and Carol fetch the history from the workers and join.
        for name, node in (("b", bob), ("c", carol)):
            node.open(server)
            node.request_sync(server)
            peers[name].wake()
            dag = node.communities[server].dag
            await until(lambda dag=dag: invite.id in dag, f"{name} sync")  # type: ignore[misc]
            node.join(link, now())
            peers[name].wake()
        await until(
            lambda: len({state_of(n, server) for n in (alice, bob, carol, storage, replay)}) == 1,
            "everyone agrees after the joins",
        )

        # Carol goes offline; Alice and Bob talk.
        await peers["c"].stop()
        for i in range(MESSAGES):
            speaker, running = (alice, peers["a"]) if i % 2 == 0 else (bob, peers["b"])
            speaker.author(server, Message(channel, f"message {i}"), now())
            if i % 50 == 49:
                running.wake()
                await asyncio.sleep(0)
        peers["a"].wake()
        peers["b"].wake()
        await until(
            lambda: (
                len({state_of(n, server) for n in (alice, bob, storage, replay)}) == 1
                and len(alice.communities[server].state.messages) == MESSAGES
            ),
            "the online peers and workers agree",
        )
        assert carol.communities[server].state.messages == {}

        # Carol comes back and catches up.
        peers["c"] = Running(carol, port)
        await until(lambda: state_of(carol, server) == state_of(alice, server), "carol catches up")
        hashes = {state_of(n, server) for n in (alice, bob, carol, storage, replay)}
        assert len(hashes) == 1
        assert None not in hashes

        # Everyone but the storage worker leaves; a newcomer syncs from storage alone.
        expected = state_of(alice, server)
        for running in (*peers.values(), workers[1]):
            await running.stop()
        dave = Node(identity("it/dave"))
        newcomer = Running(dave, port)
        await newcomer.ready()
        dave.open(server)
        dave.request_sync(server)
        newcomer.wake()
        await until(lambda: state_of(dave, server) == expected, "dave syncs from storage alone")
        assert len(dave.communities[server].state.messages) == MESSAGES
        assert storage.identity.public_key in dave.progress[server].complete_from
        await newcomer.stop()
    finally:
        for running in [*workers, *peers.values()]:
            await running.stop()
        storage.close()
        await relay.stop()


def test_three_peers_two_workers_one_relay(tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(scenario(tmp_path), 240))
