"""The per-author event DAG of one community, with its insert rules.

Invariant: the DAG is closed under ancestry. An event enters only when its ``prev`` and all its
``deps`` are already in, so every event descends from genesis and a new event never has children
present; the managed DAG relies on this to place late events by rewinding a suffix only.

Insert rules, cheapest first (an event failing one raises ``InsertError`` and never enters):
wrong server, bad signature, ``prev`` not the author's previous seq, time earlier than a parent,
a vote not depending on its proposal, a join not depending on its invite or with a bad invite
proof. Missing parents are not an error: ``missing_parents`` tells the caller to buffer it.

Equivocation (two events by one author at one seq) is *recorded*, not refused: both branches
enter, ``fork_seq`` remembers the lowest forked seq per author, and replay gives that author's
events from there on no effect. Keeping both is what makes every peer converge whichever branch
it saw first, and other authors' events that depend on either branch can still enter.
"""

from __future__ import annotations

from . import crypto
from .encoding import encode
from .errors import InsertError
from .event import Event, verify_event
from .kinds import CreateInvite, Join, Kind, Vote

__all__ = ["EventDag", "ForkProof", "join_proof_message", "JOIN_TAG"]

JOIN_TAG = "willow/join/v1"

ForkProof = tuple[bytes, bytes]
"""Two event ids by one author at one seq; both events are in the DAG, so they sync as proof."""


def join_proof_message(server: bytes, invite: bytes, joiner: bytes) -> bytes:
    """The bytes an invite key signs to admit ``joiner`` (domain-separated)."""
    return encode([JOIN_TAG, server, invite, joiner])


class EventDag:
    """Events by id, per-author chains and tips, and recorded forks."""

    __slots__ = ("server_id", "events", "depth", "chains", "tips", "fork_seq", "fork_proofs")

    def __init__(self, server_id: bytes) -> None:
        self.server_id = server_id
        self.events: dict[bytes, Event] = {}
        #: id -> causal depth (genesis 0; else 1 + deepest parent), the order's primary key
        self.depth: dict[bytes, int] = {}
        #: author -> seq -> id of the first event seen at that seq
        self.chains: dict[bytes, dict[int, bytes]] = {}
        #: author -> events with no same-author child (one, unless the author forked)
        self.tips: dict[bytes, list[bytes]] = {}
        #: author -> lowest seq with two different events
        self.fork_seq: dict[bytes, int] = {}
        self.fork_proofs: dict[bytes, list[ForkProof]] = {}

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.events

    def __len__(self) -> int:
        return len(self.events)

    @property
    def has_genesis(self) -> bool:
        return self.server_id in self.events

    def check(self, ev: Event, *, verified: bool = False) -> list[bytes]:
        """Validate ``ev`` against the DAG; return the parents it still lacks.

        Args:
            verified: the signature was already checked (trusted local store, pending buffer).

        Raises:
            InsertError: ``ev`` breaks a rule and must be dropped.
        """
        if ev.kind is Kind.CREATE_SERVER:
            if ev.id != self.server_id:
                raise InsertError("wrong-server", "genesis of another community")
        elif ev.server != self.server_id:
            raise InsertError("wrong-server", "event bound to another community")
        if not verified and not verify_event(ev):
            raise InsertError("bad-signature")
        events = self.events
        ts = ev.ts
        missing = None
        for parent_id in ev.parents:
            parent = events.get(parent_id)
            if parent is None:
                if missing is None:
                    missing = [parent_id]
                else:
                    missing.append(parent_id)
            elif parent.ts > ts:
                raise InsertError("time-before-parent", "event is older than an event it names")
        if missing is not None:
            return missing
        if ev.seq > 1:
            prev = events[ev.prev]
            if prev.author != ev.author or prev.seq != ev.seq - 1:
                raise InsertError("bad-prev", "prev is not the author's previous event")
        if ev.kind is Kind.VOTE or ev.kind is Kind.JOIN:
            self._check_references(ev)
        return []

    def _check_references(self, ev: Event) -> None:
        events = self.events
        payload = ev.payload
        if ev.kind is Kind.VOTE:
            assert isinstance(payload, Vote)
            target = events.get(payload.proposal)
            if payload.proposal not in ev.parents or target is None:
                raise InsertError("vote-without-proposal", "a vote must depend on its proposal")
            if target.kind is not Kind.PROPOSE:
                raise InsertError("vote-without-proposal", "vote target is not a proposal")
        elif ev.kind is Kind.JOIN:
            assert isinstance(payload, Join)
            invite = events.get(payload.invite)
            if payload.invite not in ev.deps or invite is None:
                raise InsertError("join-without-invite", "a join must depend on its invite")
            if invite.kind is not Kind.CREATE_INVITE:
                raise InsertError("join-without-invite", "join target is not an invite")
            assert isinstance(invite.payload, CreateInvite)
            message = join_proof_message(self.server_id, invite.id, ev.author)
            if not crypto.ed25519_verify(invite.payload.key, message, payload.proof):
                raise InsertError("bad-invite-proof", "the invite key did not admit this author")

    def add(self, ev: Event) -> bool:
        """Store a checked event whose parents are present; returns whether it forked a chain."""
        self.events[ev.id] = ev
        parents = ev.parents
        self.depth[ev.id] = 1 + max(map(self.depth.__getitem__, parents)) if parents else 0
        author = ev.author
        chain = self.chains.get(author)
        if chain is None:
            chain = self.chains[author] = {}
        tips = self.tips.get(author)
        if tips is None:
            tips = self.tips[author] = []
        if ev.seq > 1 and ev.prev in tips:
            tips[tips.index(ev.prev)] = ev.id
        else:
            tips.append(ev.id)
        first = chain.get(ev.seq)
        if first is None:
            chain[ev.seq] = ev.id
            return False
        self.fork_proofs.setdefault(author, []).append((first, ev.id))
        known = self.fork_seq.get(author)
        if known is None or ev.seq < known:
            self.fork_seq[author] = ev.seq
            return True
        return False

    def restore_event(self, ev: Event, depth: int) -> None:
        """Add an event from our own store (no checks); call ``finish_restore`` after the last."""
        chain = self.chains.get(ev.author)
        if chain is None:
            chain = self.chains[ev.author] = {}
        if ev.seq in chain:
            self.add(ev)  # a recorded fork: take the general path
            self.depth[ev.id] = depth
            return
        self.events[ev.id] = ev
        self.depth[ev.id] = depth
        chain[ev.seq] = ev.id

    def finish_restore(self) -> None:
        """Recompute tips after ``restore_event`` calls."""
        for author, chain in self.chains.items():
            if author in self.fork_seq:
                has_child = {e.prev for e in self.events.values() if e.author == author}
                mine = [e for e in self.events.values() if e.author == author]
                self.tips[author] = [e.id for e in mine if e.id not in has_child]
            else:
                self.tips[author] = [chain[len(chain)]]

    def head(self, author: bytes) -> Event | None:
        """The author's highest-seq event (on the first branch seen, if forked)."""
        chain = self.chains.get(author)
        if not chain:
            return None
        return self.events[chain[len(chain)]]  # seqs are contiguous from 1

    def events_at_or_after(self, author: bytes, seq: int) -> list[Event]:
        """Every event of ``author`` with seq >= ``seq``, on every branch."""
        return [e for e in self.events.values() if e.author == author and e.seq >= seq]
