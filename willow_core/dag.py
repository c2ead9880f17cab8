"""The per-author event DAG of one community, with its insert rules.

Invariant: the DAG is closed under ancestry. An event enters only when its ``prev`` and all its
``deps`` are already in, so every event descends from genesis and a new event never has children
present; the managed DAG relies on this to place late events by rewinding a suffix only.

Insert rules, cheapest first (an event failing one raises ``InsertError`` and never enters):
wrong server, bad signature, ``prev`` not the author's previous seq, time earlier than a parent,
a vote not depending on its proposal, a join not depending on its invite or with a bad invite
proof. Missing parents are not an error: ``missing_parents`` tells the caller to buffer it.

Depth. ``nat`` is an event's causal depth (0 for genesis, else one more than its deepest
parent); ``depth`` (the order's key, see ``order``) is the *effective* depth: at least
``1 + depth`` of every parent, and, for an event whose subject (its author, or the invite a Join
uses) is the target of a removal ``K`` (kick, ban, admin or permission revocation, role
unassignment, member overwrite, invite revocation, or a join taking a slot of a limited invite)
that has not seen it, at least ``1 + nat(K)``. So a removed member cannot slip an event in
before their removal by naming old parents: whatever they did not show the remover is ordered
after the removal and judged by the state after it. Removals are recognized structurally (kind
and payload), so a forged removal can only *reorder* concurrent events, never reject them:
replay judges it like any other event.

Equivocation (two events by one author at one seq) is *recorded*, not refused: both branches
enter, ``fork_seq`` remembers the lowest forked seq per author, and replay gives that author's
events from there on no effect. Keeping both is what makes every peer converge whichever branch
it saw first, and other authors' events that depend on either branch can still enter.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from itertools import islice

from . import crypto
from .encoding import encode
from .errors import InsertError, LocalError
from .event import Event, decode_stored, verify_event
from .kinds import (
    CreateInvite,
    Join,
    KickMember,
    Kind,
    OverwriteTarget,
    Propose,
    RevokeAdmin,
    RevokeInvite,
    RevokePermission,
    SetChannelOverwrite,
    UnassignRole,
    Vote,
)

# Enum members as module constants: reading ``Kind.X`` is a class lookup on every call.
_CREATE_SERVER, _VOTE, _JOIN = Kind.CREATE_SERVER, Kind.VOTE, Kind.JOIN
_PROPOSE, _CREATE_INVITE = Kind.PROPOSE, Kind.CREATE_INVITE

__all__ = [
    "EventDag",
    "ForkProof",
    "join_proof_message",
    "removal_targets",
    "REMOVAL_KINDS",
    "JOIN_TAG",
]

JOIN_TAG = "willow/join/v1"

ForkProof = tuple[bytes, bytes]
"""Two event ids by one author at one seq; both events are in the DAG, so they sync as proof."""


def join_proof_message(server: bytes, invite: bytes, joiner: bytes) -> bytes:
    """The bytes an invite key signs to admit ``joiner`` (domain-separated)."""
    return encode([JOIN_TAG, server, invite, joiner])


class EventDag:
    """Events by id, per-author chains and tips, and recorded forks."""

    __slots__ = (
        "server_id",
        "events",
        "nat",
        "depth",
        "floor",
        "raised",
        "chains",
        "tips",
        "fork_seq",
        "fork_proofs",
        "joins",
        "restored",
    )

    def __init__(self, server_id: bytes) -> None:
        self.server_id = server_id
        self.events: dict[bytes, Event] = {}
        #: id -> causal depth (genesis 0; else 1 + deepest parent). Only removals ever read it,
        #: so it is filled lazily (see ``_CausalDepth``): the bulk path stores none while no
        #: removal bound exists, since every effective depth is a causal depth then.
        self.nat: dict[bytes, int] = _CausalDepth(self)
        #: id -> effective depth, the order's primary key (see the module docstring)
        self.depth: dict[bytes, int] = {}
        #: subject (peer key or invite id) -> deepest ``nat`` of a removal targeting it
        self.floor: dict[bytes, int] = {}
        #: id -> lower bound on its effective depth from removals it did not see
        self.raised: dict[bytes, int] = {}
        #: author -> seq -> id of the first event seen at that seq
        self.chains: dict[bytes, dict[int, bytes]] = {}
        #: author -> events with no same-author child (one, unless the author forked)
        self.tips: dict[bytes, list[bytes]] = {}
        #: author -> lowest seq with two different events
        self.fork_seq: dict[bytes, int] = {}
        self.fork_proofs: dict[bytes, list[ForkProof]] = {}
        #: invite id -> joins using it (the subject events of a limited invite)
        self.joins: dict[bytes, list[bytes]] = {}
        #: events came from a store (their stored effective depths may include raises)
        self.restored = False

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
        if ev.kind is _CREATE_SERVER:
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
        if ev.kind is _VOTE or ev.kind is _JOIN:
            self._check_references(ev)
        return []

    def _check_references(self, ev: Event) -> None:
        events = self.events
        payload = ev.payload
        if ev.kind is _VOTE:
            assert isinstance(payload, Vote)
            target = events.get(payload.proposal)
            if payload.proposal not in ev.parents or target is None:
                raise InsertError("vote-without-proposal", "a vote must depend on its proposal")
            if target.kind is not _PROPOSE:
                raise InsertError("vote-without-proposal", "vote target is not a proposal")
        elif ev.kind is _JOIN:
            assert isinstance(payload, Join)
            invite = events.get(payload.invite)
            if payload.invite not in ev.parents or invite is None:
                raise InsertError("join-without-invite", "a join must depend on its invite")
            if invite.kind is not _CREATE_INVITE:
                raise InsertError("join-without-invite", "join target is not an invite")
            assert isinstance(invite.payload, CreateInvite)
            message = join_proof_message(self.server_id, invite.id, ev.author)
            if not crypto.ed25519_verify(invite.payload.key, message, payload.proof):
                raise InsertError("bad-invite-proof", "the invite key did not admit this author")

    def add(self, ev: Event) -> bool:
        """Store a checked event whose parents are present; returns whether it forked a chain.

        The caller must then ``raise_unseen`` for each removal among the events it added.
        """
        self.events[ev.id] = ev
        parents = ev.parents
        if parents:
            self.nat[ev.id] = 1 + max(map(self.nat.__getitem__, parents))
            depth = 1 + max(map(self.depth.__getitem__, parents))
        else:
            self.nat[ev.id] = depth = 0
        if self.floor:
            floor = self._floor_of(ev)
            if floor >= 0:
                self.raised[ev.id] = floor + 1
                depth = max(depth, floor + 1)
        self.depth[ev.id] = depth
        kind = ev.kind
        if kind is _JOIN:
            self.joins.setdefault(ev.payload.invite, []).append(ev.id)
        if kind in REMOVAL_KINDS:
            for target in removal_targets(ev, self.events):
                self.floor[target] = max(self.floor.get(target, -1), self.nat[ev.id])
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

    def add_run(
        self,
        batch: list[Event],
        start: int,
        refused: Container[bytes],
        held: Container[bytes],
        awaited: Container[bytes],
    ) -> int:
        """Check and add ``batch[start:]`` while each event is *plain*; returns the index of the
        first event that is not (``len(batch)`` if all were).

        Plain: a later event of an author already in the DAG, extending their single tip, whose
        parents are all present and no later than it, of a kind with no reference or removal
        rule, and none of new, duplicate (``refused``, e.g. a bad signature, ``held`` or
        ``awaited`` by the pending buffer: the general path handles those). For such an event
        ``check`` + ``add`` reduce to the comparisons below; this is the bulk path of a whole
        history's ingest, where almost every event is plain. Nothing is changed for the event
        returned, so the caller can give it to ``check`` and ``add``.
        """
        server_id = self.server_id
        events, nat, depth = self.events, self.nat, self.depth
        floors, raised = self.floor, self.raised
        chains, tips_of = self.chains, self.tips
        special = _SPECIAL_KINDS
        blocked = bool(refused or held or awaited)
        # Without removal bounds no depth was ever raised, so causal depths equal effective
        # ones and ``nat`` derives them (``_CausalDepth``); otherwise they are recorded.
        causal_too = bool(floors) or self.restored
        causal = 0
        index = start
        for ev in islice(batch, start, None):
            event_id, server, author, seq, prev, _, ts, kind, _, _, _, parents = ev
            if kind in special or server != server_id or event_id in events:
                return index
            if blocked and (event_id in refused or event_id in held or event_id in awaited):
                return index
            chain = chains.get(author)
            if chain is None or seq in chain:
                return index  # the author's first event, or a second event at one seq
            tips = tips_of[author]
            if len(tips) != 1 or tips[0] != prev:
                return index  # forked author, or prev is not the tip (bad-prev or fork)
            parent = events[prev]
            if parent.seq != seq - 1 or parent.ts > ts:
                return index
            if len(parents) == 1:
                effective = depth[prev] + 1
                if causal_too:
                    causal = nat[prev] + 1
            else:
                for parent_id in parents:
                    parent = events.get(parent_id)  # type: ignore[assignment]
                    if parent is None or parent.ts > ts:
                        return index
                effective = 1 + max(map(depth.__getitem__, parents))
                if causal_too:
                    causal = 1 + max(map(nat.__getitem__, parents))
            if causal_too:
                nat[event_id] = causal
                floor = floors.get(author, -1)
                if floor >= 0:
                    raised[event_id] = floor + 1
                    if floor >= effective:
                        effective = floor + 1
            events[event_id] = ev
            depth[event_id] = effective
            chain[seq] = event_id
            tips[0] = event_id
            index += 1
        return index

    def _floor_of(self, ev: Event) -> int:
        floors = self.floor
        if not floors:
            return -1
        floor = floors.get(ev.author, -1)
        if ev.kind is _JOIN:
            floor = max(floor, floors.get(ev.payload.invite, -1))
        return floor

    def raise_unseen(self, removal: Event) -> list[Event]:
        """Raise the effective depth of every event that ``removal`` targets but did not see.

        Returns the events whose lower bound rose; the caller recomputes effective depths of
        them and their descendants (``relax``) and re-orders. Removals are rare; the walk
        covers only the region between the targets' events and the removal.
        """
        bound = self.nat[removal.id] + 1
        walk = _AncestorWalk(self, removal)
        out: list[Event] = []
        for target in removal_targets(removal, self.events):
            chain = self.chains.get(target)
            linear = chain is not None and target not in self.fork_seq
            for ev in self._subject_events(target):
                if ev.id == removal.id or self.depth[ev.id] >= bound:
                    continue
                if walk.contains(ev.id):
                    if linear:
                        break  # a chain's earlier events are ancestors of this one too
                    continue
                if self.raised.get(ev.id, -1) < bound:
                    self.raised[ev.id] = bound
                    out.append(ev)
        return out

    def _subject_events(self, subject: bytes) -> list[Event]:
        """The subject's events, newest first (a peer's chain, or the joins using an invite)."""
        chain = self.chains.get(subject)
        if chain is not None and subject not in self.fork_seq:
            return [self.events[chain[seq]] for seq in range(len(chain), 0, -1)]
        if subject in self.events:  # an invite: the joins that use it
            return [self.events[i] for i in self.joins.get(subject, ())]
        if chain is None:
            return []  # a peer who has authored nothing
        return [e for e in self.events.values() if e.author == subject]

    def build(self, events: list[Event]) -> None:
        """Add checked events given parents-first (e.g. by another DAG's ``nat``), then settle
        the effective depths of everything a removal among them did not see."""
        for ev in events:
            self.add(ev)
        self.settle()

    def settle(self) -> None:
        """Apply every removal's ordering bound to the events it did not see (after plain
        ``add`` calls in any parents-first order; ``ManagedDag`` does this incrementally)."""
        raised = False
        for ev in list(self.events.values()):
            if ev.kind in REMOVAL_KINDS and self.raise_unseen(ev):
                raised = True
        if raised:
            self.relax(list(self.events.values()))

    def relax(self, events: list[Event]) -> None:
        """Recompute effective depths of ``events`` (parents first: sorted by ``nat``).

        Effective depths only ever grow (parents only deepen, bounds only rise), so the current
        value is a lower bound too: events restored from a store need no ``raised`` record.
        """
        depth, raised = self.depth, self.raised
        for ev in sorted(events, key=lambda e: (self.nat[e.id], e.id)):
            parents = ev.parents
            d = 1 + max(map(depth.__getitem__, parents)) if parents else 0
            depth[ev.id] = max(d, raised.get(ev.id, 0), depth.get(ev.id, 0))

    def restore_rows(self, rows: Iterable[tuple[bytes, int, bytes, bytes]]) -> list[Event]:
        """Add stored ``(id, depth, signable, signature)`` rows (``restore_event`` each, in one
        loop); returns their events in row order. Call ``finish_restore`` after the last.

        Raises:
            LocalError: the rows are not in strictly ascending ``(depth, id)`` order.
        """
        self.restored = True
        events, depths, chains = self.events, self.depth, self.chains
        special = _RESTORE_SPECIAL
        restore_event = self.restore_event
        order: list[Event] = []
        append = order.append
        last_depth, last_id = -1, b""
        for event_id, depth, signable, sig in rows:
            if depth <= last_depth and (depth < last_depth or event_id <= last_id):
                raise LocalError("stored rows are not in (depth, id) order")
            last_depth, last_id = depth, event_id
            ev = decode_stored(event_id, signable, sig)
            chain = chains.get(ev.author)
            if chain is None or ev.seq in chain or ev.kind in special:
                restore_event(ev, depth)
            else:  # restore_event's common case
                events[event_id] = ev
                depths[event_id] = depth
                chain[ev.seq] = event_id
            append(ev)
        return order

    def restore_event(self, ev: Event, depth: int) -> None:
        """Add an event from our own store (no checks); call ``finish_restore`` after the last."""
        self.restored = True
        chain = self.chains.get(ev.author)
        if chain is None:
            chain = self.chains[ev.author] = {}
        if ev.seq in chain:
            self.add(ev)  # a recorded fork: take the general path
            self.depth[ev.id] = depth
            return
        self.events[ev.id] = ev
        self.depth[ev.id] = depth
        if ev.kind is _JOIN:
            self.joins.setdefault(ev.payload.invite, []).append(ev.id)
        if ev.kind in REMOVAL_KINDS:
            for target in removal_targets(ev, self.events):
                self.floor[target] = max(self.floor.get(target, -1), self.nat[ev.id])
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


REMOVAL_KINDS = frozenset(
    {
        Kind.JOIN,
        Kind.PROPOSE,
        Kind.VOTE,
        Kind.REVOKE_PERMISSION,
        Kind.UNASSIGN_ROLE,
        Kind.SET_CHANNEL_OVERWRITE,
        Kind.REVOKE_INVITE,
    }
)


#: Kinds ``add_run`` leaves to ``check`` and ``add``: genesis, reference rules, removals.
_SPECIAL_KINDS = REMOVAL_KINDS | {Kind.CREATE_SERVER, Kind.VOTE, Kind.JOIN}
#: Kinds ``restore_rows`` gives to ``restore_event``: those it records more for.
_RESTORE_SPECIAL = REMOVAL_KINDS | {Kind.JOIN}


def removal_targets(ev: Event, events: dict[bytes, Event]) -> tuple[bytes, ...]:
    """Subjects whose authority ``ev`` may remove, judged from its payload alone."""
    if ev.kind not in REMOVAL_KINDS:
        return ()
    payload = ev.payload
    if isinstance(payload, Vote):
        proposal = events.get(payload.proposal)
        if proposal is None:
            return ()
        payload = proposal.payload
    if isinstance(payload, Propose):
        action = payload.action
        if isinstance(action, (KickMember, RevokeAdmin)):
            return (action.peer,)
        return ()
    if isinstance(payload, (RevokePermission, UnassignRole)):
        return (payload.peer,)
    if isinstance(payload, SetChannelOverwrite):
        return (payload.target,) if payload.target_kind is OverwriteTarget.MEMBER else ()
    if isinstance(payload, RevokeInvite):
        return (payload.invite,)
    if isinstance(payload, Join):
        # A join takes a slot of a limited invite: joins it did not see come after it, so a
        # late joiner holding the same link cannot sort first and evict an admitted member.
        invite = events.get(payload.invite)
        if invite is not None and invite.payload.max_uses:
            return (payload.invite,)
    return ()


class _AncestorWalk:
    """Lazily answers "is X an ancestor of this event?" by walking parents, shallowest-last."""

    __slots__ = ("_dag", "_seen", "_frontier")

    def __init__(self, dag: EventDag, start: Event) -> None:
        self._dag = dag
        self._seen: set[bytes] = set()
        self._frontier: list[bytes] = list(start.parents)

    def contains(self, event_id: bytes) -> bool:
        if event_id in self._seen:
            return True
        nat = self._dag.nat
        limit = nat[event_id]
        events = self._dag.events
        keep: list[bytes] = []
        stack = self._frontier
        while stack:
            current = stack.pop()
            if current in self._seen:
                continue
            if nat[current] < limit:
                keep.append(current)  # cannot reach ``event_id`` from here; expand later
                continue
            self._seen.add(current)
            stack.extend(events[current].parents)
        self._frontier = keep
        return event_id in self._seen


class _CausalDepth(dict[bytes, int]):
    """``nat``: what ``add`` recorded; anything else is derived on first use.

    While the DAG holds no removal bound (``floor`` is empty) and was not restored from a store,
    no effective depth was ever raised, so an event's causal depth is its effective depth and
    nothing is stored. Otherwise it is computed from the parents (and stored): for events
    restored from a store, and for events the bulk path added before the first removal bound.
    """

    __slots__ = ("_dag",)

    def __init__(self, dag: EventDag) -> None:
        super().__init__()
        self._dag = dag

    def __missing__(self, event_id: bytes) -> int:
        dag = self._dag
        if not dag.floor and not dag.restored:
            return dag.depth[event_id]
        # Iterative: a restored chain can be far deeper than the recursion limit.
        events = dag.events
        stack = [event_id]
        while stack:
            current = stack[-1]
            parents = events[current].parents
            pending = [p for p in parents if p not in self]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self[current] = 1 + max(map(self.__getitem__, parents)) if parents else 0
        return self[event_id]
