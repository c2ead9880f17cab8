"""What every connection shares: the relay's key, limits, bus, per-key access, counters.

Transports call ``Hub.open(link)`` for each new connection and feed the returned ``Session``.
The hub holds no community keys and decides nothing about communities: it only knows keys that
proved themselves to it, topics, and sizes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from willow_core.identity import Identity

from .access import Access
from .bus import Bus
from .codes import ErrorCode
from .limits import Limits
from .session import Link, Session

__all__ = ["Hub"]


class Hub:
    """Shared relay state for one event loop."""

    def __init__(
        self,
        identity: Identity,
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.identity = identity
        self.key = identity.public_key
        self.limits = limits
        self.loop = loop
        #: monotonic seconds for rate limits (tests may pass a manual clock)
        self.clock: Callable[[], float] = clock or loop.time
        self.bus: Bus[Session] = Bus()
        self.access = Access(limits, self.key)
        self.sessions: set[Session] = set()
        self.accepting = True
        #: counters (exposed on /healthz and to tests)
        self.accepted = 0
        self.publishes = 0
        self.errors: Counter[ErrorCode] = Counter()

    def open(self, link: Link) -> Session:
        """A new connection: greet it (or turn it away) and return its session."""
        session = Session(self, link)
        self.sessions.add(session)
        self.accepted += 1
        session.start()
        return session

    def count_error(self, code: ErrorCode) -> None:
        self.errors[code] += 1

    def buffered_bytes(self) -> int:
        """Bytes waiting in every connection's outgoing buffer (the slow-consumer meter)."""
        return sum(s.link.buffered() for s in self.sessions)

    def largest_buffer(self) -> int:
        return max((s.link.buffered() for s in self.sessions), default=0)

    def shutdown(self) -> None:
        """Stop accepting and close every connection with ERROR ``SHUTTING_DOWN``."""
        self.accepting = False
        for session in list(self.sessions):
            session.fail(ErrorCode.SHUTTING_DOWN, "relay is shutting down")

    def stats(self) -> dict[str, int]:
        return {
            "connections": len(self.sessions),
            "accepted": self.accepted,
            "topics": self.bus.topic_count,
            "publishes": self.publishes,
            "deliveries": self.bus.deliveries,
            "slow_consumers": self.errors[ErrorCode.SLOW_CONSUMER],
            "rejected": sum(self.errors.values()),
        }
