"""Hybrid logical clock: wall-clock-like timestamps that never run backwards across causality.

The shell passes the wall clock in (``wall_ms``); the core owns no clock. ``now`` never returns
less than anything observed, so an event's time is at least its parents' (a DAG rule) and a
reply never sorts before what it answers. Remote times more than ``MAX_DRIFT_MS`` ahead of the
local wall clock are clamped when observed, so one peer with a broken clock cannot drag
everyone's timestamps into the future.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Hlc", "HybridClock", "MAX_DRIFT_MS"]

#: How far ahead of our wall clock a remote time may pull us (the original's 24 h).
MAX_DRIFT_MS = 86_400_000


class Hlc(NamedTuple):
    """A timestamp: milliseconds, then a counter for events within one millisecond."""

    ms: int
    counter: int


_EPOCH = Hlc(0, 0)


class HybridClock:
    """One per identity; ``ms`` is what goes into an event's ``ts``."""

    __slots__ = ("_last",)

    def __init__(self, last: Hlc | None = None) -> None:
        self._last = last or _EPOCH

    @property
    def last(self) -> Hlc:
        return self._last

    def now(self, wall_ms: int) -> Hlc:
        """A timestamp later than every one issued or observed before."""
        ms, counter = self._last
        if wall_ms > ms:
            self._last = Hlc(wall_ms, 0)
        else:
            self._last = Hlc(ms, counter + 1)
        return self._last

    def observe(self, remote_ms: int, wall_ms: int) -> None:
        """Account for a time seen on a received event (clamped to wall + ``MAX_DRIFT_MS``)."""
        remote_ms = min(remote_ms, wall_ms + MAX_DRIFT_MS)
        if remote_ms > self._last.ms:
            self._last = Hlc(remote_ms, 0)
