"""Tier 3, issue 5: sealed channels over real sockets. Only ciphertext leaves the members.

One relay on 127.0.0.1 behind a byte-for-byte TCP tap (every connection, the workers' too,
goes through it, so it holds every byte the relay receives and sends), the storage worker in
this process (SQLite files in a temporary directory), the replay worker in a separate process
(``python -m relay.cli replay``), and native peers. Alice founds a community with a plain
channel, a full-history sealed channel and a since-joining sealed channel; members exchange
sealed messages, an edit, a sealed thread title and a sealed file message whose metadata names
a file. Then:

* none of those plaintexts (nor the file name) appears in the relay's traffic, in the storage
  worker's database and WAL files, or in the replay worker's memory (read from
  ``/proc/<pid>/mem``), while a plaintext put in the plain channel on purpose is found in all
  three: the searches are known to work;
* Carol is kicked but keeps her keys and her connection: she receives every later event and
  reads none of the later messages (``NOT_A_READER`` each; no plaintext in the events);
* Dave joins later and reads exactly what each channel's history visibility allows.

Key work (``Community.key_work``) runs in rounds on a test clock advanced by ``STAGGER_MS``
each round, so staggered work happens; every wait is on a condition, with generous limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from relay.keyfile import load_or_create_identity
from relay.peer import Carrier, PeerConnection
from relay.server import Relay
from relay.storage_worker import StorageWorker
from willow_core.client import Community
from willow_core.event import Event
from willow_core.invite import InviteLink, invite_key
from willow_core.keyring import STAGGER_MS, Unreadable
from willow_core.kinds import (
    CreateChannel,
    CreateInvite,
    CreateSealedChannel,
    CreateSealedThread,
    GrantPermission,
    HistoryVisibility,
    KickMember,
    Message,
    Payload,
    Propose,
    Sealed,
    SealedEdit,
    SealedFileMessage,
    SealedMessage,
)
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.testing import identity, seed_bytes

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0
#: Different on every run, so nothing but this run can put these strings anywhere.
TOKEN = os.urandom(8).hex()


class Clock:
    """The members' wall clock: a millisecond per reading; key rounds jump a stagger step."""

    def __init__(self) -> None:
        self.ms = 1_770_000_000_000

    def __call__(self) -> int:
        self.ms += 1
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


class Tap:
    """A transparent TCP pass-through in front of the relay that keeps every byte, each way."""

    def __init__(self, relay_port: int) -> None:
        self.relay_port = relay_port
        #: one buffer per connection and direction (to the relay, from the relay)
        self.streams: list[bytearray] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.relay_port)
        except OSError:
            writer.close()
            return
        to_relay, from_relay = bytearray(), bytearray()
        self.streams += [to_relay, from_relay]
        await asyncio.gather(
            self._pipe(reader, up_writer, to_relay), self._pipe(up_reader, writer, from_relay)
        )

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, keep: bytearray
    ) -> None:
        try:
            while data := await source.read(65_536):
                keep += data
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    def frames(self) -> int:
        """Length-prefixed frames seen (each stream is a whole sequence of them)."""
        count = 0
        for stream in self.streams:
            at = 0
            while at + 4 <= len(stream):
                at += 4 + int.from_bytes(stream[at : at + 4], "big")
                count += 1
        return count

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Running:
    """A carrier connected (through the tap) in a background task."""

    def __init__(self, carrier: Carrier, port: int) -> None:
        self.carrier = carrier
        self.connection = PeerConnection(carrier, "127.0.0.1", port, backoff=(0.05, 0.5))
        self.task = asyncio.create_task(self.connection.run())

    async def ready(self) -> None:
        await asyncio.wait_for(self.connection.connected.wait(), 30)

    def wake(self) -> None:
        self.connection.wake()

    async def stop(self) -> None:
        await self.connection.stop()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def until(condition: Callable[[], bool], what: str, limit_s: float = TIMEOUT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def state_of(carrier: Carrier, server: bytes) -> bytes | None:
    community = carrier.node.communities.get(server)
    if community is None or not community.ready:
        return None
    return community.state_hash()


def memory_of(pid: int) -> list[bytes]:
    """Every readable mapping of process ``pid`` (stopped meanwhile, so it is one moment)."""
    regions: list[bytes] = []
    os.kill(pid, signal.SIGSTOP)
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
            for line in maps:
                span, perms = line.split()[:2]
                if not perms.startswith("r"):
                    continue
                start, end = (int(x, 16) for x in span.split("-"))
                try:
                    mem.seek(start)
                    regions.append(mem.read(end - start))
                except (OSError, ValueError, OverflowError):
                    continue  # [vvar] and the like cannot be read
    finally:
        os.kill(pid, signal.SIGCONT)
    return regions


def encodings(text: str) -> list[bytes]:
    """How a string may sit in memory or on the wire: UTF-8 (CBOR, compact str), UTF-16/32."""
    return [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-32-le")]


def found_in(blobs: Iterable[bytes | bytearray], text: str) -> bool:
    needles = encodings(text)
    return any(needle in blob for blob in blobs for needle in needles)


class Member:
    """A native peer: its node, its connection, and the sealed-channel habits of a client."""

    def __init__(self, name: str, port: int, clock: Clock) -> None:
        self.name = name
        self.node = Node(identity(f"e2ee/{name}"))
        self.clock = clock
        self.running = Running(self.node, port)
        self.server = b""

    @property
    def community(self) -> Community:
        return self.node.communities[self.server]

    def author(self, payload: Payload) -> Event:
        ev = self.node.author(self.server, payload, self.clock())
        self.running.wake()
        return ev

    def key_work(self) -> int:
        community = self.node.communities.get(self.server)
        if community is None or not community.ready:
            return 0
        events = community.key_work(self.clock(), os.urandom)
        if events:
            self.node.publish(self.server, events)
            self.running.wake()
        return len(events)

    def seal(self, channel: bytes, text: str, purpose: str) -> Sealed:
        events, sealed = self.community.seal(channel, text, purpose, self.clock(), os.urandom)
        self.node.publish(self.server, events)
        return sealed

    def send(self, channel: bytes, text: str) -> bytes:
        return self.author(SealedMessage(channel, self.seal(channel, text, "message"))).id

    def read(self, message_id: bytes) -> str | Unreadable:
        state = self.community.state
        opened = self.community.keyring.open_message(state, state.messages[message_id])
        if opened.text is not None:
            return opened.text
        assert opened.reason is not None, "an unreadable message must carry a reason"
        return opened.reason


async def scenario(tmp: Path) -> None:
    relay = Relay("127.0.0.1", ws_port=None, tcp_port=0, http_port=None, data_dir=tmp / "relay")
    await relay.start()
    assert relay.tcp_port is not None
    tap = Tap(relay.tcp_port)
    await tap.start()
    port = tap.port
    clock = Clock()

    storage = StorageWorker(identity("e2ee/storage"), tmp / "storage")
    storage.start(0)
    replay_key = load_or_create_identity(tmp / "replay").public_key  # the process loads it
    replay_log = (tmp / "replay.log").open("w")
    command = ["-m", "relay.cli", "replay", "--relay", f"127.0.0.1:{port}"]
    replay = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        "--data",
        str(tmp / "replay"),
        cwd=ROOT,
        stdout=replay_log,
        stderr=subprocess.STDOUT,
    )
    alice, bob, carol = (Member(n, port, clock) for n in ("alice", "bob", "carol"))
    probe = Node(identity("e2ee/probe"))  # asks the replay worker for snapshots
    workers = [Running(storage, port), Running(probe, port)]
    members = [alice, bob, carol]
    dave: Member | None = None
    try:
        for running in [*workers, *(m.running for m in members)]:
            await running.ready()

        # --- a community with a plain channel and two sealed ones -------------------------
        community = alice.node.create("Sealed loopback", clock())
        server = community.server_id
        for m in members:
            m.server = server
        general = alice.author(CreateChannel("general")).id
        for key in (storage.identity.public_key, replay_key):
            alice.author(GrantPermission(key, Permission.SYNC_PROVIDER))
            alice.node.ask_to_serve(server, key)
        secret = alice.author(CreateSealedChannel("secret", "", HistoryVisibility.FULL)).id
        since = alice.author(CreateSealedChannel("since", "", HistoryVisibility.SINCE_JOINING)).id
        seed = seed_bytes(f"e2ee/invite/{TOKEN}")
        invite = alice.author(CreateInvite(invite_key(seed)[0]))
        link = InviteLink(server, invite.id, seed)
        await until(lambda: state_of(storage, server) == state_of(alice.node, server), "storage")
        for m in (bob, carol):
            m.node.open(server)
            m.node.request_sync(server)
            m.running.wake()
            await until(lambda m=m: invite.id in m.community.dag, f"{m.name} syncs")  # type: ignore[misc]
            m.node.join(link, clock())
            m.running.wake()

        def everyone() -> list[Carrier]:
            peers: list[Carrier] = [m.node for m in members]
            return [*peers, storage]

        async def converged(what: str) -> None:
            await until(
                lambda: (
                    len({state_of(c, server) for c in everyone()}) == 1
                    and state_of(alice.node, server) is not None
                ),
                what,
            )

        async def key_rounds() -> int:
            """Key work until a round of stagger steps passes with nothing authored."""
            quiet = rounds = 0
            while quiet < len(members):
                clock.advance(STAGGER_MS)
                authored = sum(m.key_work() for m in members)
                quiet = 0 if authored else quiet + 1
                rounds += 1
                assert rounds < 40, "key work does not settle"
                await converged("key events to spread")
            return rounds

        await converged("everyone agrees after the joins")
        await key_rounds()

        # --- sealed traffic, and one plain message as the control ---------------------------
        control = f"plain control canary {TOKEN}"
        alice.author(Message(general, control))
        texts = {
            "first": f"sealed body one {TOKEN}",
            "reply": f"sealed body two from bob {TOKEN}",
            "edit": f"sealed body one, edited {TOKEN}",
            "thread": f"sealed thread title {TOKEN}",
            "file": f"quarterly-plan-{TOKEN}.pdf",
            "since": f"since-joining body {TOKEN}",
        }
        first = alice.send(secret, texts["first"])
        reply = bob.send(secret, texts["reply"])
        alice.author(SealedEdit(first, alice.seal(secret, texts["edit"], "edit")))
        thread_sealed = bob.seal(secret, texts["thread"], "thread")
        thread = bob.author(CreateSealedThread(secret, reply, thread_sealed)).id
        metadata = json.dumps({"name": texts["file"], "mime": "application/pdf", "size": 48213})
        file_message = carol.author(
            SealedFileMessage(secret, os.urandom(32), carol.seal(secret, metadata, "file"))
        ).id
        since_first = carol.send(since, texts["since"])
        await converged("the sealed messages spread")
        for m in members:
            assert m.read(first) == texts["edit"]
            assert m.read(reply) == texts["reply"]
            assert m.read(file_message) == metadata
            assert m.read(since_first) == texts["since"]
            state = m.community.state
            assert (
                m.community.keyring.open_thread(state, state.threads[thread]).text
                == (texts["thread"])
            )

        # --- carol is kicked; she keeps her keys and her subscription -----------------------
        alice.author(Propose(KickMember(carol.node.identity.public_key, False)))
        await converged("the kick spreads")
        assert carol.node.identity.public_key not in alice.community.state.members
        await key_rounds()  # the remaining readers start epochs carol does not hold
        after_kick = {
            "after-a": f"after the kick, alice {TOKEN}",
            "after-b": f"after the kick, bob {TOKEN}",
            "after-since": f"after the kick, since-joining {TOKEN}",
        }
        sent_after = {
            alice.send(secret, after_kick["after-a"]): after_kick["after-a"],
            bob.send(secret, after_kick["after-b"]): after_kick["after-b"],
            bob.send(since, after_kick["after-since"]): after_kick["after-since"],
        }
        texts.update(after_kick)
        await until(
            lambda: all(i in carol.community.dag for i in sent_after), "carol receives it all"
        )
        await converged("everyone, carol too, holds the messages sent after the kick")
        for message_id, text in sent_after.items():
            assert alice.read(message_id) == text
            assert bob.read(message_id) == text
            assert carol.read(message_id) is Unreadable.NOT_A_READER
        assert carol.read(first) == texts["edit"]  # she still holds the old keys
        for ev in carol.community.dag.events.values():
            for text in after_kick.values():
                assert text.encode() not in ev.wire

        # --- dave joins: he reads what each channel's history visibility allows ------------
        dave = Member("dave", port, clock)
        dave.server = server
        members.append(dave)
        await dave.running.ready()
        dave.node.open(server)
        dave.node.request_sync(server)
        dave.running.wake()
        await until(lambda: invite.id in dave.community.dag, "dave syncs")
        dave.node.join(link, clock())
        dave.running.wake()
        await converged("dave's join spreads")
        await key_rounds()  # his key; older epochs shared (full), a fresh epoch (since-joining)
        news = {
            alice.send(secret, f"welcome dave {TOKEN}"): f"welcome dave {TOKEN}",
            bob.send(since, f"since dave joined {TOKEN}"): f"since dave joined {TOKEN}",
        }
        texts.update({f"news-{i}": t for i, t in enumerate(news.values())})
        await converged("the welcome spreads")
        await key_rounds()
        state = dave.community.state
        readable = {
            channel: {
                m: dave.read(m)
                for m in state.channels[channel].messages
                if state.messages[m].sealed is not None
            }
            for channel in (secret, since)
        }
        # Full history: everything ever sent in #secret, even before the kick.
        assert all(isinstance(v, str) for v in readable[secret].values()), readable[secret]
        assert set(readable[secret].values()) == {
            texts["edit"],
            texts["reply"],
            metadata,
            after_kick["after-a"],
            after_kick["after-b"],
            f"welcome dave {TOKEN}",
        }
        # Since joining: exactly what was sent after he joined; the rest says why not.
        assert {v for v in readable[since].values() if isinstance(v, str)} == {
            f"since dave joined {TOKEN}"
        }
        assert {v for v in readable[since].values() if not isinstance(v, str)} == {
            Unreadable.NOT_A_READER
        }
        assert len(readable[since]) == 3
        for message_id in news:
            assert carol.read(message_id) is Unreadable.NOT_A_READER

        # --- where the plaintexts must not be ----------------------------------------------
        secrets = list(texts.values())
        # The workers hold ciphertext they cannot open.
        storage_community = storage.node.communities[server]
        for message_id in (first, reply, file_message, *sent_after, *news):
            message = storage_community.state.messages[message_id]
            opened = storage_community.keyring.open_message(storage_community.state, message)
            assert opened.text is None
        # What each place must hold instead: the sealed box of a message, as it travels.
        reply_sealed = alice.community.state.messages[reply].sealed
        assert reply_sealed is not None
        box = reply_sealed.box

        def holds_box(blobs: Iterable[bytes | bytearray]) -> bool:
            return any(box in blob for blob in blobs)

        # (a) relay traffic: every byte through the tap, both ways
        assert tap.frames() > 100
        assert found_in(tap.streams, control), "the tap must see the plain control message"
        assert holds_box(tap.streams)
        leaks = [t for t in secrets if found_in(tap.streams, t)]
        assert not leaks, f"in relay traffic: {leaks}"
        # (b) the storage worker's SQLite files (database and WAL) as raw bytes
        files = [p.read_bytes() for p in sorted((tmp / "storage").rglob("*")) if p.is_file()]
        assert any(p.suffix == ".db" for p in (tmp / "storage").rglob("*"))
        assert found_in(files, control), "the control message must be in the database files"
        assert holds_box(files)
        leaks = [t for t in secrets if found_in(files, t)]
        assert not leaks, f"in the storage worker's files: {leaks}"
        # (c) the replay worker's memory, once it demonstrably holds the whole state
        expected = state_of(alice.node, server)

        def replay_has_it_all() -> bool:
            progress = probe.progress.get(server)
            return progress is not None and progress.snapshot_hash == expected

        for _ in range(int(TIMEOUT_S)):
            alice.node.ask_to_serve(server, replay_key)  # idempotent; it may have missed one
            alice.running.wake()
            probe.request_snapshot(server, replay_key)
            workers[1].wake()
            with contextlib.suppress(AssertionError):
                await until(replay_has_it_all, "a snapshot from the replay worker", 2.0)
                break
        assert replay_has_it_all(), "the replay worker never caught up"
        assert replay.returncode is None, "the replay worker exited"
        memory = memory_of(replay.pid)
        assert sum(len(r) for r in memory) > 1_000_000
        assert found_in(memory, control), "the control message must be in the replay's memory"
        assert holds_box(memory)
        leaks = [t for t in secrets if found_in(memory, t)]
        assert not leaks, f"in the replay worker's memory: {leaks}"
    finally:
        for running in [*workers, *(m.running for m in members)]:
            await running.stop()
        if replay.returncode is None:
            replay.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(replay.wait(), 30)
            except TimeoutError:
                replay.kill()
                await replay.wait()
        replay_log.close()
        storage.close()
        await tap.stop()
        await relay.stop()


def test_sealed_content_never_leaves_the_members_in_clear(tmp_path: Path) -> None:
    asyncio.run(asyncio.wait_for(scenario(tmp_path), 420))
