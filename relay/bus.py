"""The embedded, in-process topic bus: who is subscribed to what, and fan-out.

A topic maps to its members (connections). Publishing hands the *same* frame bytes to every
member except the publishing connection; nothing is re-encoded per subscriber. Members are
grouped by transport: each member names a ``fan_out`` function and a ``sink`` (the object that
function writes to), so one publish makes one call per transport, e.g. ``websockets``'
``broadcast()`` over every WebSocket subscriber at once, and one loop of ``transport.write``
over the TCP ones with the length prefix computed once.

The grouping is cached per topic and rebuilt only when membership changes, so a publish costs
the fan-out and nothing proportional to the number of topics. Fan-out iterates over an immutable
snapshot: a member dropped during a publish (a slow consumer detected mid-broadcast) is removed
from the topic at once and the rest of the broadcast is unaffected.

This is the embedded default (D10). Scale-out across relays would put a broker (Redis pub/sub)
behind ``publish``; the bus's interface is the seam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["FanOut", "Member", "Bus"]

FanOut = Callable[[Sequence[Any], bytes], None]
"""Deliver one frame to many sinks of one transport (never raises for one bad sink)."""


class Member(Protocol):
    """A subscriber as the bus sees it (a ``relay.session.Session``)."""

    @property
    def fan_out(self) -> FanOut: ...

    @property
    def sink(self) -> Any: ...


Plan = tuple[tuple[FanOut, tuple[Any, ...]], ...]
M = TypeVar("M", bound=Member)


class _Topic(Generic[M]):
    __slots__ = ("members", "plan", "echo_free")

    def __init__(self) -> None:
        self.members: dict[M, None] = {}
        self.plan: Plan | None = None
        #: the plan without one member (the last publisher that is also a subscriber)
        self.echo_free: tuple[M, Plan] | None = None

    def changed(self) -> None:
        self.plan = None
        self.echo_free = None

    def build(self, without: M | None = None) -> Plan:
        groups: dict[FanOut, list[Any]] = {}
        for member in self.members:
            if member is not without:
                groups.setdefault(member.fan_out, []).append(member.sink)
        return tuple((fan_out, tuple(sinks)) for fan_out, sinks in groups.items())


class Bus(Generic[M]):
    """Topic registry and fan-out. Limits are the caller's business (``relay.session``)."""

    def __init__(self) -> None:
        self._topics: dict[bytes, _Topic[M]] = {}
        self._subscriptions: dict[M, set[bytes]] = {}
        #: frames handed to subscribers since start
        self.deliveries = 0

    @property
    def topic_count(self) -> int:
        return len(self._topics)

    def has_topic(self, topic: bytes) -> bool:
        return topic in self._topics

    def topics_of(self, member: M) -> frozenset[bytes]:
        return frozenset(self._subscriptions.get(member, ()))

    def members_of(self, topic: bytes) -> list[M]:
        entry = self._topics.get(topic)
        return list(entry.members) if entry is not None else []

    def subscribe(self, member: M, topics: Iterable[bytes]) -> None:
        mine = self._subscriptions.setdefault(member, set())
        for topic in topics:
            if topic in mine:
                continue
            entry = self._topics.get(topic)
            if entry is None:
                entry = self._topics[topic] = _Topic[M]()
            entry.members[member] = None
            entry.changed()
            mine.add(topic)

    def unsubscribe(self, member: M, topics: Iterable[bytes]) -> None:
        mine = self._subscriptions.get(member)
        if mine is None:
            return
        for topic in topics:
            if topic not in mine:
                continue
            mine.discard(topic)
            entry = self._topics[topic]
            del entry.members[member]
            entry.changed()
            if not entry.members:
                del self._topics[topic]
        if not mine:
            del self._subscriptions[member]

    def drop(self, member: M) -> None:
        """Remove ``member`` from every topic (it disconnected or was disconnected)."""
        self.unsubscribe(member, list(self._subscriptions.get(member, ())))

    def publish(self, topic: bytes, frame: bytes, origin: M | None = None) -> int:
        """Hand ``frame`` to every member of ``topic`` but ``origin``; returns how many."""
        entry = self._topics.get(topic)
        if entry is None:
            return 0
        plan: Plan
        if origin is not None and origin in entry.members:
            cached = entry.echo_free
            if cached is not None and cached[0] is origin:
                plan = cached[1]
            else:
                plan = entry.build(without=origin)
                entry.echo_free = (origin, plan)
        elif entry.plan is not None:
            plan = entry.plan
        else:
            plan = entry.plan = entry.build()
        count = 0
        for fan_out, sinks in plan:
            fan_out(sinks, frame)
            count += len(sinks)
        self.deliveries += count
        return count
