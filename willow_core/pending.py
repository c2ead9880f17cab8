"""Bounded buffer for verified events whose parents have not arrived yet.

Bounded in count, per author, in bytes and in age (``now_ms`` is passed in), so a peer that
sends events with made-up parents costs at most these caps and an hour. Dropping a pending event
loses nothing acknowledged: it was never in the DAG, and sync will offer it again once its
parents exist.
"""

from __future__ import annotations

from .event import Event

__all__ = [
    "PendingBuffer",
    "MAX_PENDING_EVENTS",
    "MAX_PENDING_PER_AUTHOR",
    "MAX_PENDING_BYTES",
    "MAX_PENDING_AGE_MS",
]

#: Out-of-order events held per community (the original's 10k).
MAX_PENDING_EVENTS = 10_000
#: One author cannot fill the buffer alone (SEC #451).
MAX_PENDING_PER_AUTHOR = 1_000
#: Events are up to 240 KiB each; the count cap alone would allow gigabytes.
MAX_PENDING_BYTES = 32 * 1024 * 1024
#: A parent that has not come within an hour is not coming from this sync round.
MAX_PENDING_AGE_MS = 3_600_000


class PendingBuffer:
    """Events keyed by one missing parent; insertion-ordered so the oldest go first."""

    __slots__ = ("_entries", "held", "_waiting", "awaited", "_per_author", "_bytes", "dropped")

    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[Event, bytes, int]] = {}
        #: the held events by id (read-only view for hot paths: ``in`` and truth are C-level)
        self.held = self._entries
        self._waiting: dict[bytes, list[bytes]] = {}
        #: missing parent id -> ids of the events held for it (read-only view for hot paths)
        self.awaited = self._waiting
        self._per_author: dict[bytes, int] = {}
        self._bytes = 0
        #: events refused or evicted so far (a health counter for the shell).
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._entries

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def add(self, ev: Event, missing: bytes, now_ms: int) -> bool:
        """Hold ``ev`` until ``missing`` arrives; returns False if a cap refused it."""
        if ev.id in self._entries:
            return True
        if self._per_author.get(ev.author, 0) >= MAX_PENDING_PER_AUTHOR:
            self.dropped += 1
            return False
        size = len(ev.signable)
        while self._entries and (
            len(self._entries) >= MAX_PENDING_EVENTS or self._bytes + size > MAX_PENDING_BYTES
        ):
            self._evict(next(iter(self._entries)))
        self._entries[ev.id] = (ev, missing, now_ms)
        self._waiting.setdefault(missing, []).append(ev.id)
        self._per_author[ev.author] = self._per_author.get(ev.author, 0) + 1
        self._bytes += size
        return True

    def take(self, parent: bytes) -> list[Event]:
        """Remove and return the events that were waiting for ``parent``."""
        ids = self._waiting.pop(parent, None)
        if not ids:
            return []
        out = []
        for event_id in ids:
            entry = self._entries.get(event_id)
            if entry is not None:
                self._remove(event_id, entry[0])
                out.append(entry[0])
        return out

    def expire(self, now_ms: int) -> int:
        """Drop entries older than ``MAX_PENDING_AGE_MS``; returns how many."""
        old = [i for i, (_, _, t) in self._entries.items() if now_ms - t > MAX_PENDING_AGE_MS]
        for event_id in old:
            self._evict(event_id)
        return len(old)

    def missing_parents(self) -> set[bytes]:
        """Ids the buffer is waiting for (what sync should ask for)."""
        return set(self._waiting)

    def _evict(self, event_id: bytes) -> None:
        ev, missing, _ = self._entries[event_id]
        self._remove(event_id, ev)
        ids = self._waiting.get(missing)
        if ids is not None:
            ids.remove(event_id)
            if not ids:
                del self._waiting[missing]
        self.dropped += 1

    def _remove(self, event_id: bytes, ev: Event) -> None:
        del self._entries[event_id]
        count = self._per_author[ev.author] - 1
        if count:
            self._per_author[ev.author] = count
        else:
            del self._per_author[ev.author]
        self._bytes -= len(ev.signable)
