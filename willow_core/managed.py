"""A community's DAG, pending buffer and state kept in lockstep: the only mutator shells call.

Theory of operation (see ``order`` for the order itself). ``receive`` checks each event,
buffers those with missing parents, adds the rest to the DAG (draining buffered children), and
then integrates the whole batch at once:

1. ``r`` = where the smallest new order key would go (bisection over the order); if an
   author was just found to equivocate, also the position of their earliest event from the
   fork seq on (those events must now be re-judged).
2. Undo the applied events after ``r``, newest first, with their journals.
3. Merge ``order[r:]`` with the new events by key, and apply that suffix, journalling it.

A causally-newest event has ``r == len(order)``: it is appended and applied in O(1). Journals are
kept for the last ``undo_window`` events; a change reaching further back rebuilds from genesis.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter

from . import crypto
from .apply import apply_event
from .dag import REMOVAL_KINDS, EventDag
from .errors import InsertError, LocalError
from .event import Event
from .journal import Entry, Journal, Unrecorded, undo
from .materialize import fold, new_state
from .order import OrderKey, topological_order
from .pending import PendingBuffer
from .results import RejectReason
from .state import ServerState

__all__ = ["ManagedDag", "Receipt", "UNDO_WINDOW", "RESTORE_JOURNAL", "VERIFY_CHUNK"]

#: ``(author, signable, sig)`` of an event: what its signature check takes.
_SIGNED = itemgetter(2, 9, 10)
#: Signatures per backend call. Bounded so that a whole history's temporary triples never
#: pile up at once (the garbage collector would walk every one); still one FFI crossing per
#: thousands of events in the browser.
VERIFY_CHUNK = 4096
#: Journals rebuilt by ``restore`` (the rest of the window refills as events arrive).
RESTORE_JOURNAL = 2_000
#: Events whose undo journals are kept. A late event landing further back than this rebuilds
#: the state from genesis (correct, just slower); the journals cost memory per event.
UNDO_WINDOW = 20_000


@dataclass(slots=True)
class Receipt:
    """What one ``receive`` call did."""

    inserted: list[Event] = field(default_factory=list)
    #: events held before this call whose place in the order moved (a removal arrived that had
    #: not seen them); a store keyed by order must update them
    moved: list[Event] = field(default_factory=list)
    duplicates: int = 0
    #: held in the pending buffer until their parents arrive
    buffered: int = 0
    #: refused by the pending buffer's caps (sync will offer them again)
    dropped: int = 0
    refused: list[tuple[bytes, InsertError]] = field(default_factory=list)


class ManagedDag:
    """DAG + pending buffer + incrementally maintained state for one community."""

    __slots__ = (
        "dag",
        "pending",
        "state",
        "order",
        "undo_window",
        "rebuilds",
        "rewinds",
        "_undo",
        "_undo_base",
    )

    def __init__(self, server_id: bytes, *, undo_window: int = UNDO_WINDOW) -> None:
        self.dag = EventDag(server_id)
        self.pending = PendingBuffer()
        #: None until genesis has arrived.
        self.state: ServerState | None = None
        #: the applied events, ascending by ``(depth, id)`` (``keys``); found by bisection
        self.order: list[Event] = []
        self.undo_window = undo_window
        #: full rebuilds so far (a health counter; tests assert late events avoid them)
        self.rebuilds = 0
        #: times applied events were undone to re-apply a changed suffix (with ``rebuilds``
        #: and the state object's identity: a view that saw neither change may treat the
        #: events after the order length it saw as the only changes since)
        self.rewinds = 0
        self._undo: list[list[Entry]] = []
        self._undo_base = 0

    @property
    def server_id(self) -> bytes:
        return self.dag.server_id

    @property
    def keys(self) -> list[OrderKey]:
        """The order keys ``(depth, id)`` of ``order`` (ascending), computed on demand."""
        depth = self.dag.depth
        return [(depth[ev.id], ev.id) for ev in self.order]

    def _place(self, key: OrderKey) -> int:
        """Where ``key`` goes in ``order`` (bisection; the depths of ``order`` are current)."""
        depth = self.dag.depth
        return bisect_left(self.order, key, key=lambda ev: (depth[ev.id], ev.id))

    def receive(self, events: Iterable[Event], now_ms: int, *, verified: bool = False) -> Receipt:
        """Insert events from anywhere, in any order; returns what happened to each.

        Args:
            verified: signatures were already checked when these events were first stored.
        """
        receipt = Receipt()
        forked: set[bytes] = set()
        dag = self.dag
        held = dag.events
        pending = self.pending
        waiting = pending.held
        events = list(events)
        forged: set[bytes] = set()
        if not verified:
            # Every new signature in one backend call: one FFI crossing in the browser, and a
            # tight loop natively. Each event is verified once, here, and never again.
            if held or waiting:
                fresh = [ev for ev in events if ev.id not in held and ev.id not in waiting]
            else:
                fresh = events
            verdicts: list[bool] = []
            for start in range(0, len(fresh), VERIFY_CHUNK):
                chunk = islice(fresh, start, start + VERIFY_CHUNK)
                verdicts += crypto.ed25519_verify_many(list(map(_SIGNED, chunk)))
            if not all(verdicts):
                forged = {ev.id for ev, ok in zip(fresh, verdicts, strict=True) if not ok}
        inserted = receipt.inserted
        add_run = dag.add_run
        i, count = 0, len(events)
        while i < count:
            # Plain events (almost all of a history) go in by the bulk path; the first one that
            # is not takes the general path below, then the bulk path resumes after it.
            run_end = add_run(events, i, forged, waiting, pending.awaited)
            if run_end > i:
                inserted.extend(events[i:run_end])
                i = run_end
                if i == count:
                    break
            ev = events[i]
            i += 1
            if ev.id in held or ev.id in waiting:
                receipt.duplicates += 1
                continue
            if forged and ev.id in forged:
                receipt.refused.append((ev.id, InsertError("bad-signature")))
                continue
            try:
                missing = dag.check(ev, verified=True)
            except InsertError as exc:
                receipt.refused.append((ev.id, exc))
                continue
            if missing:
                if pending.add(ev, missing[0], now_ms):
                    receipt.buffered += 1
                else:
                    receipt.dropped += 1
                continue
            self._add(ev, now_ms, receipt, forked)
        if inserted:
            receipt.moved = self._integrate(inserted, forked)
        return receipt

    def _add(self, ev: Event, now_ms: int, receipt: Receipt, forked: set[bytes]) -> None:
        dag = self.dag
        if not self.pending.held:  # the common case: nothing is waiting for any event
            if dag.add(ev):
                forked.add(ev.author)
            receipt.inserted.append(ev)
            return
        stack = [ev]
        while stack:
            current = stack.pop()
            if dag.add(current):
                forked.add(current.author)
            receipt.inserted.append(current)
            for waiting in self.pending.take(current.id):
                if waiting.id in dag.events:
                    continue
                try:
                    missing = dag.check(waiting, verified=True)
                except InsertError as exc:
                    receipt.refused.append((waiting.id, exc))
                    continue
                if missing:
                    self.pending.add(waiting, missing[0], now_ms)
                else:
                    stack.append(waiting)

    def _integrate(self, new: list[Event], forked: set[bytes]) -> list[Event]:
        """Place and apply ``new``; returns the events already held whose depth changed."""
        dag = self.dag
        depth = dag.depth
        # Removals among the new events push the events they did not see after them.
        raised = [moved for ev in new if ev.kind in REMOVAL_KINDS for moved in dag.raise_unseen(ev)]
        if self.state is None:
            if raised:
                dag.relax(new)
            self.rebuild()
            return []
        place = self._place
        r = place(min((depth[ev.id], ev.id) for ev in new))
        for ev in raised:
            r = min(r, place((depth[ev.id], ev.id)))
        for author in forked:
            for ev in dag.events_at_or_after(author, dag.fork_seq[author]):
                r = min(r, place((depth[ev.id], ev.id)))
        moved: list[Event] = []
        if raised:
            before = [(ev, depth[ev.id]) for ev in self.order[r:]]
            dag.relax(self.order[r:] + new)
            moved = [ev for ev, old in before if depth[ev.id] != old]
        if r < self._undo_base:
            self.rebuild()
            return moved
        self._rewind(r)
        if r == len(self.order):
            suffix = topological_order(new, depth)
        else:
            suffix = topological_order(self.order[r:] + new, depth)
            del self.order[r:]
        self._apply_suffix(suffix)
        return moved

    def _rewind(self, r: int) -> None:
        base = self._undo_base
        journals = self._undo
        for i in range(len(self.order) - 1, r - 1, -1):
            undo(journals[i - base])
        del journals[r - base :]
        if r < len(self.order):
            self.rewinds += 1
            if self.state is not None:
                self.state.forget_derived()

    def _apply_suffix(self, suffix: list[Event]) -> None:
        state = self.state
        assert state is not None
        order, journals = self.order, self._undo
        forks = self.dag.fork_seq.get
        j = Journal()
        for ev in suffix:
            order.append(ev)
            j.entries = []
            apply_event(state, ev, j, forks(ev.author))
            journals.append(j.entries)
        excess = len(journals) - self.undo_window
        if excess > self.undo_window:  # trim in large steps so trimming stays amortized O(1)
            del journals[:excess]
            self._undo_base += excess

    def rebuild(self) -> None:
        """Recompute order and state from genesis (a fresh materialize, journalling the tail)."""
        if not self.dag.has_genesis:
            return
        self.rebuilds += 1
        order = topological_order(self.dag.events.values(), self.dag.depth)
        state = new_state(order[0])
        # As in ``restore``: journal a short tail; the window refills as new events apply.
        cut = max(0, len(order) - min(self.undo_window, RESTORE_JOURNAL))
        fold(state, order[:cut], self.dag.fork_seq, Unrecorded())
        self.state = state
        self.order = order[:cut]
        self._undo = []
        self._undo_base = cut
        self._apply_suffix(order[cut:])

    def restore(self, rows: Iterable[tuple[bytes, int, bytes, bytes]]) -> None:
        """Reload a community from our own store, with no checks: the fast path after restart.

        ``rows`` are ``(id, depth, signable, signature)`` of events accepted earlier, in
        ``(depth, id)`` order (the order the store's index returns). Nothing is re-verified or
        re-sorted; the state is folded straight through (D2: verify once, at ingest).
        """
        if self.dag.events:
            raise LocalError("restore needs an empty community")
        dag = self.dag
        order = dag.restore_rows(rows)
        dag.finish_restore()
        if not order:
            return
        state = new_state(order[0])
        # Journal only a short tail: late events almost always land near the end, and the
        # window refills as new events apply. Deeper late events rebuild, which stays correct.
        cut = max(0, len(order) - min(self.undo_window, RESTORE_JOURNAL))
        fold(state, order[:cut], dag.fork_seq, Unrecorded())
        self.state = state
        self.order = order[:cut]
        self._undo = []
        self._undo_base = cut
        self._apply_suffix(order[cut:])

    def stored_rows(self) -> list[tuple[bytes, int, bytes, bytes]]:
        """``(id, depth, signable, signature)`` per event, in order: what ``restore`` takes."""
        depth = self.dag.depth
        return [(ev.id, depth[ev.id], ev.signable, ev.sig) for ev in self.order]

    def try_apply(self, ev: Event) -> RejectReason | None:
        """Judge ``ev`` as if appended now, then undo it: the local pre-check before publishing.

        Replay remains the authority; this only stops a client from signing what would be
        rejected (so it never consumes a seq for it).
        """
        if self.state is None:
            raise LocalError("the community has not been received yet")
        j = Journal()
        reason = apply_event(self.state, ev, j, self.dag.fork_seq.get(ev.author))
        undo(j.entries)
        self.state.forget_derived()
        return reason

    def rejection(self, event_id: bytes) -> RejectReason | None:
        """Why replay refused ``event_id``, or None if it applied (or is unknown)."""
        if self.state is None:
            return None
        reason = self.state.rejected.get(event_id)
        return None if reason is None else RejectReason(reason)
