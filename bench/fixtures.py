"""Deterministic signed histories for benchmarks: many authors, concurrent branches.

Each author acts on a *lagging* view of the others' heads (refreshed every few of its own
events), so histories have real concurrency: many events are causally unordered, exactly what
replay order and late-event insertion must handle. Generation signs with the core's own
``sign_event``; results are cached under ``.bench-cache/`` because signing 100k events takes a
few seconds.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from willow_core.encoding import decode, encode
from willow_core.event import ZERO_ID, Event, decode_event, sign_event
from willow_core.invite import invite_key, sign_join
from willow_core.kinds import (
    CreateChannel,
    CreateInvite,
    CreateServer,
    EditMessage,
    Join,
    Message,
    Payload,
    Reaction,
)
from willow_core.testing import identity, seed_bytes

__all__ = ["history", "history_label", "invite_seed", "late_events", "CACHE_DIR"]

CACHE_DIR = Path(
    os.environ.get("WILLOW_BENCH_CACHE", Path(__file__).parent.parent / ".bench-cache")
)
_EMOJI = ["👍", "🎉", "😂", "❤️", "🔥"]


class _Writer:
    def __init__(self, label: str, authors: int) -> None:
        self.people = [identity(f"{label}/author/{i}") for i in range(authors)]
        self.head: dict[bytes, Event] = {}
        self.events: list[Event] = []
        self.view: dict[bytes, dict[bytes, Event]] = {p.public_key: {} for p in self.people}
        self.covered: dict[bytes, dict[bytes, bytes]] = {p.public_key: {} for p in self.people}
        self.clock = 1_760_000_000_000
        self.server: bytes | None = None
        self.by_id: dict[bytes, Event] = {}

    def refresh(self, who: bytes) -> None:
        self.view[who] = dict(self.head)

    def emit(self, who_index: int, payload: Payload, extra_deps: tuple[bytes, ...] = ()) -> Event:
        person = self.people[who_index]
        me = person.public_key
        head = self.head.get(me)
        covered = self.covered[me]
        deps = [e.id for a, e in self.view[me].items() if a != me and covered.get(a) != e.id][:60]
        deps = sorted(set(deps) | set(extra_deps))
        parents = [self.by_id[d] for d in deps] + ([head] if head else [])
        self.clock += 7
        ts = max([self.clock, *(p.ts for p in parents)])
        ev = sign_event(
            secret_key=person.secret_key,
            author=me,
            server=self.server,
            seq=1 if head is None else head.seq + 1,
            prev=ZERO_ID if head is None else head.id,
            deps=deps,
            ts=ts,
            payload=payload,
        )
        for d in deps:
            covered[self.by_id[d].author] = d
        self.head[me] = ev
        self.events.append(ev)
        self.by_id[ev.id] = ev
        return ev


def _generate(label: str, n_events: int, authors: int) -> list[Event]:
    w = _Writer(label, authors)
    genesis = w.emit(0, CreateServer("bench"))
    w.server = genesis.id
    channels = [w.emit(0, CreateChannel(f"chan-{i}")).id for i in range(3)]
    seed = invite_seed(label)
    invite = w.emit(0, CreateInvite(invite_key(seed)[0], 0, 0))
    for i in range(1, authors):
        w.refresh(w.people[i].public_key)
        me = w.people[i].public_key
        w.emit(i, Join(invite.id, sign_join(seed, genesis.id, invite.id, me)), (invite.id,))
    messages: list[bytes] = []
    rng = int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big")
    while len(w.events) < n_events:
        rng = (rng * 6364136223846793005 + 1442695040888963407) % 2**64
        who = rng % authors
        if (rng >> 8) % 5 == 0:
            w.refresh(w.people[who].public_key)
        roll = (rng >> 16) % 100
        me = w.people[who].public_key
        mine = [m for m in messages[-20:] if w.by_id[m].author == me]
        visible = [m for m in messages[-20:] if m in _ancestors_hint(w, me)]
        if roll < 8 and visible:
            w.emit(who, Reaction(visible[-1], _EMOJI[(rng >> 24) % len(_EMOJI)]))
        elif roll < 11 and mine:
            w.emit(who, EditMessage(mine[-1], f"edited {rng % 997}"))
        else:
            body = f"message {len(w.events)} from {who}: " + "lorem ipsum " * ((rng >> 32) % 6)
            ev = w.emit(who, Message(channels[(rng >> 40) % 3], body))
            messages.append(ev.id)
    return w.events


def _ancestors_hint(w: _Writer, me: bytes) -> set[bytes]:
    """Messages the author has certainly seen: those in its view's heads or its own."""
    seen = {e.id for e in w.view[me].values()}
    head = w.head.get(me)
    if head is not None:
        seen.add(head.id)
    return seen


def history(n_events: int, authors: int = 12, label: str = "bench") -> list[bytes]:
    """Wire bytes of a causally ordered history of ``n_events`` events (cached on disk)."""
    name = history_label(n_events, authors, label)
    path = CACHE_DIR / f"{name}.cbor"
    if path.exists():
        data = decode(path.read_bytes(), max_bytes=2**31)
        return list(data)
    events = _generate(name, n_events, authors)
    wires = [e.wire for e in events]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(encode(wires))
    tmp.replace(path)
    return wires


def invite_seed(label: str) -> bytes:
    """The seed of the open invite in the history generated under ``label``."""
    return seed_bytes(f"{label}/invite")


def history_label(n_events: int, authors: int = 12, label: str = "bench") -> str:
    return f"{label}-{n_events}-{authors}"


def late_events(wires: list[bytes], seed: bytes, count: int, behind: int) -> list[Event]:
    """``count`` chained events by a newcomer, concurrent with the last ``behind`` events.

    They depend only on what existed ``behind`` events before the end, so each lands about that
    far back in the order and forces a rewind of the suffix after it. ``seed`` is the history's
    open invite (``invite_seed``).
    """
    events = [decode_event(w) for w in wires]
    cut = events[: len(events) - behind]
    genesis = events[0]
    invite = next(e for e in events if isinstance(e.payload, CreateInvite))
    channel = next(e for e in events if isinstance(e.payload, CreateChannel))
    latecomer = identity("bench/latecomer")
    heads: dict[bytes, Event] = {}
    for e in cut:
        heads[e.author] = e
    deps = [*sorted({e.id for e in heads.values()} - {invite.id})[:63], invite.id]
    proof = sign_join(seed, genesis.id, invite.id, latecomer.public_key)
    prev = sign_event(
        secret_key=latecomer.secret_key,
        author=latecomer.public_key,
        server=genesis.id,
        seq=1,
        prev=ZERO_ID,
        deps=deps,
        ts=max(e.ts for e in cut) + 1,
        payload=Join(invite.id, proof),
    )
    out = [prev]
    for i in range(1, count):
        prev = sign_event(
            secret_key=latecomer.secret_key,
            author=latecomer.public_key,
            server=genesis.id,
            seq=prev.seq + 1,
            prev=prev.id,
            deps=(),
            ts=prev.ts + 1,
            payload=Message(channel.id, f"late message {i}"),
        )
        out.append(prev)
    return out
