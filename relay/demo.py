"""In-process demo: three replicas of one community converge over an in-memory relay.

Alice founds a community, opens #general and creates a two-use invite; Bob and Carol join through
the invite link, then all three chat, react, reply and edit, often concurrently (before seeing
each other's events). A ``Hub`` stands in for the relay: it keeps every published event's wire
bytes, and each replica fetches what it has not seen in a *different* arrival order (publication
order, reversed, pseudo-shuffled). Every replica verifies and replays the same signed DAG, so all
three print the same state hash and the same transcript.

This module is a shell: it owns the clock and the randomness (``os.urandom``) and passes them
into willow_core, which has neither. Run it with ``python -m relay.demo``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from willow_core import Community, Event, Identity, InviteLink, ServerState
from willow_core.invite import invite_key
from willow_core.kinds import (
    CreateChannel,
    CreateInvite,
    EditMessage,
    Message,
    Payload,
    Reaction,
    SetProfile,
)

__all__ = ["Hub", "Replica", "DemoResult", "run", "transcript", "main"]

Clock = Callable[[], int]
Entropy = Callable[[int], bytes]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _shuffled(wires: list[bytes]) -> list[bytes]:
    """A fixed arrival order unrelated to causality: by hash of the bytes."""
    return sorted(wires, key=lambda w: hashlib.sha256(w).digest())


#: How each replica's fetches are ordered, so convergence cannot lean on arrival order.
ARRIVAL_ORDERS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "publication": list,
    "reversed": lambda wires: wires[::-1],
    "shuffled": _shuffled,
}


@dataclass
class Hub:
    """The in-memory relay: an append-only list of published events in wire form."""

    log: list[bytes] = field(default_factory=list)

    def publish(self, event: Event) -> None:
        self.log.append(event.wire)


@dataclass
class Replica:
    """One person's device: a name, a community replica and how far it has read the hub."""

    name: str
    community: Community
    arrival: str
    cursor: int = 0

    def author(self, hub: Hub, payload: Payload, now: int) -> Event:
        event = self.community.author(payload, now)
        hub.publish(event)
        return event

    def fetch(self, hub: Hub, now: int) -> None:
        """Take everything published since the last fetch, in this replica's arrival order."""
        batch = ARRIVAL_ORDERS[self.arrival](hub.log[self.cursor :])
        self.cursor = len(hub.log)
        receipt, errors = self.community.receive_wire(batch, now)
        if errors or receipt.refused:
            raise RuntimeError(f"{self.name} refused events: {errors or receipt.refused}")


@dataclass
class DemoResult:
    replicas: list[Replica]
    hub: Hub
    #: the message ids the script authored, by label (for tests)
    messages: dict[str, bytes]

    @property
    def converged(self) -> bool:
        first = self.replicas[0].community
        return all(
            r.community.state_hash() == first.state_hash()
            and len(r.community.dag.events) == len(first.dag.events)
            and transcript(r.community.state) == transcript(first.state)
            for r in self.replicas
        )


def run(clock: Clock = wall_ms, entropy: Entropy = os.urandom) -> DemoResult:
    """Play the scripted conversation; ``clock`` and ``entropy`` are the shell's to supply."""
    hub = Hub()
    alice_id, bob_id, carol_id = (Identity.from_seed(entropy(32)) for _ in range(3))

    founder, genesis = Community.create(alice_id, "Willow demo", clock())
    hub.publish(genesis)
    alice = Replica("alice", founder, "publication", cursor=1)
    alice.author(hub, SetProfile("Alice"), clock())
    general = alice.author(hub, CreateChannel("general", topic="say hi"), clock()).id
    invite_seed = entropy(32)
    invite = alice.author(hub, CreateInvite(invite_key(invite_seed)[0], max_uses=2), clock())
    link_text = InviteLink(founder.server_id, invite.id, invite_seed).encode()

    # Bob and Carol get the link out of band and join concurrently: neither sees the other yet.
    link = InviteLink.parse(link_text)
    bob = Replica("bob", Community(bob_id, link.server), "reversed")
    carol = Replica("carol", Community(carol_id, link.server), "shuffled")
    for replica, name in ((bob, "Bob"), (carol, "Carol")):
        replica.fetch(hub, clock())
        hub.publish(replica.community.join(link, clock()))
        replica.author(hub, SetProfile(name), clock())
    replicas = [alice, bob, carol]

    def sync() -> None:
        for replica in replicas:
            replica.fetch(hub, clock())

    sync()
    # Three messages written concurrently.
    welcome = alice.author(hub, Message(general, "Welcome to Willow!"), clock()).id
    bob_hi = bob.author(hub, Message(general, "hi all, bob here"), clock()).id
    carol_hi = carol.author(hub, Message(general, "helo from carol"), clock()).id
    sync()
    # Reactions, a reply and an edit, again concurrent with each other.
    bob.author(hub, Reaction(welcome, "👋"), clock())
    carol.author(hub, Reaction(welcome, "👋"), clock())
    carol.author(hub, EditMessage(carol_hi, "hello from carol"), clock())
    alice.author(hub, Reaction(bob_hi, "🎉"), clock())
    reply = bob.author(hub, Message(general, "nice to meet you", reply_to=carol_hi), clock()).id
    sync()
    alice.author(hub, Message(general, "everyone sees the same history"), clock())
    sync()
    messages = {"welcome": welcome, "bob_hi": bob_hi, "carol_hi": carol_hi, "reply": reply}
    return DemoResult(replicas, hub, messages)


def transcript(state: ServerState) -> list[str]:
    """The community's channels rendered as text, in replay order (identical on every peer)."""

    def who(peer: bytes) -> str:
        profile = state.profiles.get(peer)
        if profile is not None and profile.display_name:
            return profile.display_name
        return peer.hex()[:8]

    lines: list[str] = []
    for channel in sorted(state.channels.values(), key=lambda c: (c.name, c.id)):
        lines.append(f"#{channel.name} ({channel.topic})")
        for message_id in channel.messages:
            m = state.messages[message_id]
            line = f"  <{who(m.author)}> {m.body}"
            if m.reply_to is not None and m.reply_to in state.messages:
                line += f"  [reply to {who(state.messages[m.reply_to].author)}]"
            if m.edited:
                line += "  (edited)"
            for emoji, reactors in sorted(m.reactions.items()):
                line += f"  {emoji}x{len(reactors)}"
            lines.append(line)
    return lines


def main() -> int:
    """Run the demo and print each replica's view; 0 when all replicas converged."""
    result = run()
    first = result.replicas[0].community.state
    print(f"community {first.name!r}: {len(first.members)} members, {len(result.hub.log)} events")
    for replica in result.replicas:
        c = replica.community
        print(
            f"{replica.name:>6}: arrival={replica.arrival:<11} events={len(c.dag.events)}"
            f" state={c.state_hash().hex()[:16]}"
        )
    for line in transcript(first):
        print(line)
    if result.converged:
        print("converged: all replicas hold the same state")
        return 0
    print("DIVERGED: replicas disagree", file=sys.stderr)
    for replica in result.replicas:
        print(
            f"--- {replica.name}", *transcript(replica.community.state), sep="\n", file=sys.stderr
        )
    return 1


if __name__ == "__main__":
    sys.exit(main())
