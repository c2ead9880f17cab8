"""``willow up`` as a newcomer runs it: it starts, prints where to connect, answers, and stops.

The workers run in processes of their own (``relay.supervise``): the tests check that they are
children of ``willow up``, that they serve peers through the relay, that one that dies is
started again, and that none outlives ``willow up``, whether it is stopped or killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.peer import PeerConnection
from willow_core.kinds import CreateChannel, GrantPermission, Message
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.testing import identity

#: How long a child may take to notice its parent is gone (it reads EOF at once; this is slack).
EXIT_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Up:
    proc: subprocess.Popen[str]
    lines: list[str]
    tcp: int
    http: int
    ws: int

    def key(self, kind: str) -> bytes:
        line = next(x for x in reversed(self.lines) if x.startswith(f"{kind} worker "))
        return bytes.fromhex(line.split()[-1])

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def read_until(self, predicate: str, limit_s: float = 30) -> None:
        deadline = time.monotonic() + limit_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if predicate in line:
                return
        raise AssertionError(f"no {predicate!r} line in {self.lines}")


@contextlib.contextmanager
def willow_up(data: Path) -> Iterator[Up]:
    tcp, ws, http = free_port(), free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "relay.cli",
        "up",
        "--data",
        str(data),
        "--tcp-port",
        str(tcp),
        "--ws-port",
        str(ws),
        "--http-port",
        str(http),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    up = Up(proc, [], tcp, http, ws)
    try:
        up.read_until("replay worker")
        yield up
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


def gone(pids: list[int], limit_s: float = EXIT_S) -> bool:
    deadline = time.monotonic() + limit_s
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_willow_up_starts_relay_and_workers_and_stops_on_sigterm(tmp_path: Path) -> None:
    with willow_up(tmp_path / "willow") as up:
        printed = "\n".join(up.lines)
        assert f"http://127.0.0.1:{up.http}/" in printed, printed
        assert f"ws://127.0.0.1:{up.ws}" in printed
        assert f"tcp            127.0.0.1:{up.tcp}" in printed
        assert "relay key      " in printed
        assert "storage worker " in printed
        with urllib.request.urlopen(
            f"http://127.0.0.1:{up.http}/.well-known/willow", timeout=5
        ) as r:
            assert r.status == 200
        # Identities persist: the data directory now holds each party's key.
        assert (tmp_path / "willow" / "storage").is_dir()
        assert (tmp_path / "willow" / "replay").is_dir()
        # Each worker is a process of its own, a child of `willow up`.
        children = up.children()
        assert len(children) == 2
        commands = [Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0") for p in children]
        assert sorted(c[3].decode() for c in commands) == ["replay", "storage"]
        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(timeout=30) == 0
        assert gone(children), "a worker outlived `willow up`"


def test_workers_exit_when_willow_up_is_killed(tmp_path: Path) -> None:
    with willow_up(tmp_path / "willow") as up:
        children = up.children()
        assert len(children) == 2
        up.proc.kill()  # no chance to clean up: the children must notice by themselves
        up.proc.wait()
        assert gone(children), "a worker outlived a killed `willow up`"


def test_a_worker_that_dies_is_started_again(tmp_path: Path) -> None:
    with willow_up(tmp_path / "willow") as up:
        before = set(up.children())
        storage = next(p for p in before if b"storage" in Path(f"/proc/{p}/cmdline").read_bytes())
        key = up.key("storage")
        os.kill(storage, signal.SIGKILL)
        up.read_until("storage worker", limit_s=30)  # the new process prints its key
        assert up.key("storage") == key  # same identity, same data directory
        after = set(up.children())
        assert storage not in after
        assert len(after) == 2


def test_peers_are_served_by_the_worker_processes(tmp_path: Path) -> None:
    """A community through `willow up`: the storage worker (a child process) acknowledges every
    event, and a newcomer catches up from the workers with an end-of-history it trusts."""
    with willow_up(tmp_path / "willow") as up:
        storage, replay = up.key("storage"), up.key("replay")
        asyncio.run(_served(up.tcp, storage, replay))


async def _served(port: int, storage: bytes, replay: bytes) -> None:
    owner, newcomer = Node(identity("cli/owner")), Node(identity("cli/newcomer"))
    links = [PeerConnection(n, "127.0.0.1", port, backoff=(0.05, 0.5)) for n in (owner, newcomer)]
    tasks = [asyncio.create_task(link.run()) for link in links]
    try:
        for link in links:
            await asyncio.wait_for(link.connected.wait(), 10)
        now = 1_770_000_000_000
        server = owner.create("Up", now).server_id
        channel = owner.author(server, CreateChannel("general"), now + 1).id
        for worker in (storage, replay):
            owner.author(server, GrantPermission(worker, Permission.SYNC_PROVIDER), now + 2)
            owner.ask_to_serve(server, worker)
        room = owner.communities[server]
        events = [room.author(Message(channel, f"hello {i}"), now + 3 + i) for i in range(300)]
        owner.publish(server, events)
        links[0].wake()
        ids = set(room.dag.events)

        def stored() -> bool:
            # SERVE is idempotent: asked again in case a worker was not connected yet.
            for worker in (storage, replay):
                owner.ask_to_serve(server, worker)
            links[0].wake()
            return all(storage in owner.stored.get(i, ()) for i in ids)

        await _until(stored, "acks", poll_s=1.0)
        newcomer.open(server)
        newcomer.request_sync(server)
        links[1].wake()
        await _until(
            lambda: newcomer.progress[server].complete_from & {storage, replay} != set(),
            "the newcomer's catch-up",
        )
        assert newcomer.communities[server].state_hash() == room.state_hash()
    finally:
        for link in links:
            await link.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _until(
    condition: Callable[[], bool], what: str, limit_s: float = 60, poll_s: float = 0.05
) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(poll_s)
