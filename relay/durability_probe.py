"""Kill -9 durability probe: a storage worker under a write burst, printing what it acknowledged.

``python -m relay.durability_probe --data DIR --burst FILE [--seed N]`` restores the worker from
``DIR`` (printing ``ready <events restored>``), then feeds it, as EVENTS envelopes of one to a
few events with short random pauses, every event of the burst it does not hold yet, and prints
``ack <event id hex>`` for each id in the STORED acknowledgements the worker's Node sends, which
it sends only after ``EventStore.append`` returned, i.e. after COMMIT. Now and then it re-sends
a chunk it already sent (duplicates must be harmless). When the burst is used up it prints
``done`` and exits. ``tests/workers/test_durability.py`` kills it with SIGKILL at random moments
and checks that every acknowledged id survived and the database is intact. With
``--fork-server`` the process loads once and forks a fresh probe per ``run <seed>`` line on
stdin (see ``fork_server``), so a kill/restart cycle costs milliseconds, not an interpreter start.

The burst (``make_burst``/``write_burst``) is one community built deterministically from
``willow_core.testing`` identities: the owner grants the probe's worker SyncProvider, admits
two members with a direct grant, opens a channel, and the three of them post and react.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from willow_core.client import Community
from willow_core.encoding import decode, encode
from willow_core.event import Event
from willow_core.identity import Identity
from willow_core.kinds import CreateChannel, GrantPermission, Message, Payload, Reaction
from willow_core.permissions import Permission
from willow_core.testing import identity
from willow_core.wire import MessageKind, community_topic, open_envelope, seal

from .storage_worker import StorageWorker

__all__ = [
    "WORKER",
    "OWNER",
    "make_burst",
    "write_burst",
    "read_burst",
    "run",
    "main",
]

#: Identities of the probe's worker and the burst's owner (deterministic).
WORKER = "durability/storage"
OWNER = "durability/owner"
_MEMBERS = ("durability/ann", "durability/bob")
_T0 = 1_700_000_000_000
#: Events per envelope (the worker commits one transaction per envelope).
_CHUNK = (1, 3)
#: Pause between envelopes, seconds (so a run lasts a while and kills land anywhere).
_PAUSE = (0.001, 0.005)


def make_burst(n_events: int) -> list[Event]:
    """``n_events`` signed events of one community, parents first (genesis is the first)."""
    owner = identity(OWNER)
    worker = identity(WORKER)
    members = [identity(label) for label in _MEMBERS]
    now = _T0
    owner_view, genesis = Community.create(owner, "durability", now)
    events: list[Event] = [genesis]
    views: list[Community] = [owner_view]
    seen = [1]

    def emit(view: Community, payload: Payload) -> Event:
        nonlocal now
        now += 7
        index = views.index(view)
        fresh = events[seen[index] :]
        if fresh:
            view.receive(fresh, now, verified=True)
            seen[index] = len(events)
        ev = view.author(payload, now)
        events.append(ev)
        seen[index] = len(events)
        return ev

    emit(owner_view, GrantPermission(worker.public_key, Permission.SYNC_PROVIDER))
    for member in members:
        emit(owner_view, GrantPermission(member.public_key, Permission.SEND_MESSAGES))
    channel = emit(owner_view, CreateChannel("general")).id
    for member in members:
        views.append(Community(member, genesis.id))
        seen.append(0)
    i = 0
    while len(events) < n_events:
        view = views[i % len(views)]
        if i % 5 == 4:
            emit(view, Reaction(events[-1].id, "+1"))
        else:
            emit(view, Message(channel, f"burst message {i}"))
        i += 1
    return events[:n_events]


def write_burst(path: Path, events: Sequence[Event]) -> None:
    """Save a burst as ``[[id, wire]...]`` (written to a temporary name, then renamed)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(encode([[ev.id, ev.wire] for ev in events]))
    tmp.replace(path)


def read_burst(path: Path) -> list[tuple[bytes, bytes]]:
    value = decode(path.read_bytes(), max_bytes=1 << 31)
    return [(pair[0], pair[1]) for pair in value]


def _acks(envelopes: list[bytes]) -> list[bytes]:
    ids: list[bytes] = []
    for raw in envelopes:
        env = open_envelope(raw)
        if env.kind is MessageKind.STORED:
            _, stored = decode(env.body, max_bytes=len(env.body))
            ids.extend(stored)
    return ids


def run(
    data_dir: Path, burst: list[tuple[bytes, bytes]], seed: int, out: TextIO | None = None
) -> int:
    """Restore, then store the rest of ``burst``; returns how many events were acknowledged."""
    stream = sys.stdout if out is None else out
    rng = random.Random(seed)
    owner: Identity = identity(OWNER)
    worker = StorageWorker(identity(WORKER), data_dir)
    now = time.time_ns() // 1_000_000
    worker.start(now)
    server = burst[0][0]
    community = worker.carry(server, now)
    worker.drain()  # catch-up sync requests: nobody to send them to here
    held = community.dag.events
    todo = [wire for event_id, wire in burst if event_id not in held]
    print(f"ready {len(held)}", file=stream, flush=True)
    topic = community_topic(server)
    sent: list[bytes] = []
    acked = 0
    i = 0
    while i < len(todo):
        if sent and rng.random() < 0.1:
            chunk = sent[rng.randrange(len(sent))]
        else:
            size = rng.randint(*_CHUNK)
            chunk = encode(todo[i : i + size])
            i += size
            sent.append(chunk)
        worker.receive(seal(owner, topic, MessageKind.EVENTS, chunk), now)
        ids = _acks(worker.drain())
        if ids:
            lines = "".join(f"ack {event_id.hex()}\n" for event_id in ids)
            stream.write(lines)
            stream.flush()
            acked += len(ids)
        time.sleep(rng.uniform(*_PAUSE))
    print("done", file=stream, flush=True)
    worker.close()
    return acked


def fork_server(data_dir: Path, burst: list[tuple[bytes, bytes]]) -> None:
    """Fork one probe per ``run <seed>`` line on stdin; report ``child <pid>``/``exited <n>``.

    Starting an interpreter and importing willow_core costs a few hundred milliseconds; forking
    this already-loaded process costs a few. The parent holds no database handle (each child
    opens its own after the fork), so a child killed with SIGKILL is exactly a crashed worker
    process, and the next child is exactly a restarted one.
    """
    for line in sys.stdin:
        command = line.split()
        if command[:1] != ["run"] or len(command) != 2:
            continue
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the child: one probe run, then exit without the parent's cleanup
            code = 0
            try:
                print(f"child {os.getpid()}", flush=True)
                run(data_dir, burst, int(command[1]))
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(f"exited {os.waitstatus_to_exitcode(status)}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the worker's data directory")
    parser.add_argument("--burst", type=Path, help="a burst file (write_burst); else generated")
    parser.add_argument("--events", type=int, default=2_000, help="events when generating")
    parser.add_argument("--seed", type=int, default=0, help="seeds chunk sizes and pauses")
    parser.add_argument(
        "--fork-server", action="store_true", help="fork one run per 'run <seed>' stdin line"
    )
    args = parser.parse_args(argv)
    if args.burst is not None:
        burst = read_burst(args.burst)
    else:
        burst = [(ev.id, ev.wire) for ev in make_burst(args.events)]
    if args.fork_server:
        fork_server(args.data, burst)
    else:
        run(args.data, burst, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
