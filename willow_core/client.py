"""Sans-I/O client facade: one community as seen by one local identity.

Shells feed it received events (``receive``/``receive_wire``) and ask it to author new ones
(``author``); it returns events to send and never touches a socket, file or clock: ``wall_ms``
is passed in. Authoring signs, judges the event against the current state with the replay rules
themselves (``ManagedDag.try_apply``), and refuses with ``NotPermitted`` *before* inserting, so
a refused action never consumes a seq and never leaves the process.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

from .dag import EventDag
from .errors import DecodeError, LocalError, NotPermitted, RemoteError
from .event import MAX_DEPS, ZERO_ID, Event, decode_event, sign_event
from .hlc import HybridClock
from .identity import Identity
from .invite import InviteLink, sign_join
from .keyring import UNKEYED_KINDS, Entropy, KeyPolicy, Keyring
from .kinds import CreateServer, Join, Payload, Sealed, ShareChannelKey, Vote
from .managed import ManagedDag, Receipt
from .state import ServerState, state_hash

__all__ = ["Community"]

#: New events beyond which ``_revision`` stops looking at kinds and just moves (a sync batch).
_SCAN_LIMIT = 64


class Community:
    """A community's replicated state plus the local identity that acts in it."""

    __slots__ = (
        "identity",
        "managed",
        "clock",
        "unverified",
        "keyring",
        "_covered",
        "_key_revision",
        "_scanned",
        "_forks_seen",
        "_deps_settled",
        "_deps_complete",
        "_built",
    )

    def __init__(self, identity: Identity, server_id: bytes, clock: HybridClock | None = None):
        self.identity = identity
        self.managed = ManagedDag(server_id)
        self.clock = clock or HybridClock()
        #: a snapshot's state, shown (marked unverified) until history has been replayed
        self.unverified: ServerState | None = None
        #: this identity's channel keys (sealed channels)
        self.keyring = Keyring(
            identity, server_id, lambda: self.managed.dag.fork_seq, self._revision
        )
        #: author -> the tip our latest event already depends on (so deps stay minimal)
        self._covered: dict[bytes, bytes] = {}
        #: moves whenever the DAG takes in an event that may change readers or epochs
        self._key_revision = 0
        #: DAG events already looked at for ``_key_revision``, and the forks seen then
        self._scanned = 0
        self._forks_seen: dict[bytes, int] = {}
        #: the DAG's event count right after our last event, if that event covered every
        #: other author's tip (else -1); ``_deps`` has nothing to add while it stays so
        self._deps_settled = -1
        self._deps_complete = False
        #: the id of the event ``build_signed`` made last and its deps in the order chosen
        #: (what the payload names first), for ``apply_own`` to record what they cover
        self._built: tuple[bytes, list[bytes]] = (b"", [])

    def _revision(self, state: ServerState) -> int | None:
        """How far ``state`` has got as far as keys go, if it is ours (the keyring's memo).

        The state changes only as the DAG takes in events (from which none is ever removed);
        a new fork mutes an author, and an event of a kind outside ``UNKEYED_KINDS`` may change
        readers or epochs, so either moves the revision. Content alone does not, even when it
        lands mid-history and replay rewinds: the rules that decide readers and epochs never
        read content, so re-applying them gives the same answer. Sending a message thus keeps
        the keyring's readers and current epoch instead of rescanning every member.
        """
        if state is not self.managed.state:
            return None
        dag = self.managed.dag
        events = dag.events
        fresh = len(events) - self._scanned
        if fresh:
            self._scanned = len(events)
            forks = dag.fork_seq
            if fresh == 1:  # the usual: one event since (our own message, say)
                keyed = next(reversed(events.values())).kind not in UNKEYED_KINDS
            else:
                keyed = fresh > _SCAN_LIMIT or any(
                    ev.kind not in UNKEYED_KINDS for ev in islice(reversed(events.values()), fresh)
                )
            if keyed or forks != self._forks_seen:
                self._key_revision += 1
                self._forks_seen = dict(forks)
        return self._key_revision

    @classmethod
    def create(cls, identity: Identity, name: str, wall_ms: int) -> tuple[Community, Event]:
        """Found a new community; returns it and its genesis event (the server id is its id)."""
        clock = HybridClock()
        genesis = sign_event(
            secret_key=identity.secret_key,
            author=identity.public_key,
            server=None,
            seq=1,
            prev=ZERO_ID,
            deps=(),
            ts=clock.now(wall_ms).ms,
            payload=CreateServer(name),
        )
        community = cls(identity, genesis.id, clock)
        community.managed.receive([genesis], wall_ms, verified=True)
        return community, genesis

    @property
    def server_id(self) -> bytes:
        return self.managed.server_id

    @property
    def dag(self) -> EventDag:
        return self.managed.dag

    @property
    def state(self) -> ServerState:
        if self.managed.state is None:
            raise LocalError("the community's history has not been received yet")
        return self.managed.state

    @property
    def view(self) -> ServerState | None:
        """What to show: replayed state, else an unverified snapshot, else nothing yet."""
        return self.managed.state if self.managed.state is not None else self.unverified

    @property
    def ready(self) -> bool:
        """Whether genesis has arrived (before that, nothing can be shown or authored)."""
        return self.managed.state is not None

    def state_hash(self) -> bytes:
        return state_hash(self.state)

    def receive(self, events: Iterable[Event], wall_ms: int, *, verified: bool = False) -> Receipt:
        """Take events from the network or the local store."""
        events = list(events)
        for ev in events:
            self.clock.observe(ev.ts, wall_ms)
        return self.managed.receive(events, wall_ms, verified=verified)

    def receive_wire(
        self, wires: Iterable[bytes], wall_ms: int
    ) -> tuple[Receipt, list[RemoteError]]:
        """Decode and take events in wire form; undecodable ones are returned, not raised."""
        events: list[Event] = []
        errors: list[RemoteError] = []
        for wire in wires:
            try:
                events.append(decode_event(wire))
            except DecodeError as exc:
                errors.append(exc)
        return self.receive(events, wall_ms), errors

    def _deps(self, required: tuple[bytes, ...]) -> list[bytes]:
        """``required`` and the newest other authors' tips our events do not cover yet."""
        dag = self.dag
        if len(dag.events) == self._deps_settled:
            # Nothing has come in since our last event, which covered every tip: a burst of
            # our own messages skips the walk over every author.
            return list(required)
        me = self.identity.public_key
        depth = dag.depth
        candidates = [
            tip
            for author, tips in dag.tips.items()
            if author != me and author not in dag.fork_seq
            for tip in tips
            if self._covered.get(author) != tip and tip not in required
        ]
        candidates.sort(key=depth.__getitem__, reverse=True)  # most recent first
        room = MAX_DEPS - len(required)
        self._deps_complete = len(candidates) <= room
        return list(required) + candidates[:room]

    def author(self, payload: Payload, wall_ms: int) -> Event:
        """Sign ``payload`` as the local identity, apply it locally, and return it to publish:
        ``build_signed`` (the send path) then ``apply_own``.

        Raises:
            NotPermitted: replay would reject it now; nothing was signed into the log.
        """
        return self.apply_own(self.build_signed(payload, wall_ms), wall_ms)

    def build_signed(self, payload: Payload, wall_ms: int) -> Event:
        """The send path: our next event carrying ``payload``, signed, not yet applied.

        Chooses seq and prev (our head), the deps (what the payload names, then the newest
        other authors' tips our events do not cover yet) and the timestamp (the clock, never
        before a parent's), then signs. The event must go through ``apply_own`` before it is
        published (``author`` does both): until then the log does not hold it, so building
        another one would reuse its seq.
        """
        managed = self.managed
        if managed.state is None:
            raise LocalError("the community's history has not been received yet")
        identity = self.identity
        me = identity.public_key
        dag = managed.dag
        head = dag.head(me)
        if isinstance(payload, Vote):
            required: tuple[bytes, ...] = (payload.proposal,)
        elif isinstance(payload, Join):
            required = (payload.invite,)
        else:
            required = self._key_event(payload)
        deps = self._deps(required)
        ts = self.clock.now(wall_ms).ms
        events = dag.events
        for dep in deps:
            ts = max(ts, events[dep].ts)
        if head is None:
            seq, prev = 1, ZERO_ID
        else:
            seq, prev, ts = head.seq + 1, head.id, max(ts, head.ts)
            if prev in deps:
                deps.remove(prev)
        ev = sign_event(
            secret_key=identity.secret_key,
            author=me,
            server=dag.server_id,
            seq=seq,
            prev=prev,
            deps=deps,
            ts=ts,
            payload=payload,
        )
        self._built = (ev.id, deps)
        return ev

    def apply_own(self, ev: Event, wall_ms: int) -> Event:
        """Judge ``ev`` (from ``build_signed``) with the replay rules and apply it locally.

        A client applies what it sends before publishing it: what it shows is then what
        replay gives everyone, and a refused action never leaves the process.

        Raises:
            NotPermitted: replay would reject it now; nothing was inserted into the log.
        """
        reason = self.managed.try_apply(ev)
        if reason is not None:
            raise NotPermitted(reason)
        held = len(self.dag.events)
        receipt = self.managed.receive([ev], wall_ms, verified=True)
        if receipt.refused:
            raise LocalError(f"own event refused: {receipt.refused[0][1]}")
        events = self.dag.events
        built_id, deps = self._built
        for dep in deps if built_id == ev.id else ev.deps:
            self._covered[events[dep].author] = dep
        settled = self._deps_complete and len(events) == held + 1  # only ours came in
        self._deps_settled = held + 1 if settled else -1
        return ev

    def _key_event(self, payload: Payload) -> tuple[bytes, ...]:
        """Sealed content and shares name a key epoch; depending on the event that started it
        orders them after it (replay requires the epoch to be known)."""
        state = self.state
        sealed = getattr(payload, "sealed", None)
        kid = sealed.key if sealed is not None else None
        if isinstance(payload, ShareChannelKey):
            kid = payload.key
        if kid is None:
            return ()
        channel = getattr(payload, "channel", None)
        if channel is None:  # an edit: the channel is the edited message's
            message = state.messages.get(getattr(payload, "message", b""))
            channel = message.channel if message is not None else None
        epochs = state.channel_keys.get(channel) if channel else None
        epoch = epochs.get(kid) if epochs else None
        return (epoch.event,) if epoch is not None and epoch.event in self.dag.events else ()

    # --- sealed channels -------------------------------------------------------------------

    def key_work(
        self, wall_ms: int, entropy: Entropy, policy: KeyPolicy | None = None
    ) -> list[Event]:
        """Author whatever key events are due (publish our key, rotate, share); see keyring."""
        if self.managed.state is None:
            return []
        out = []
        for payload in self.keyring.due(self.state, wall_ms, entropy, policy or KeyPolicy()):
            try:
                out.append(self.author(payload, wall_ms))
            except NotPermitted:
                continue  # replay would refuse it now; the next round looks again
        return out

    def seal(
        self, channel: bytes, text: str, purpose: str, wall_ms: int, entropy: Entropy
    ) -> tuple[list[Event], Sealed]:
        """Seal ``text`` for ``channel``, starting its first epoch if it has none.

        Returns the key events authored on the way (to publish before the content).

        Raises:
            LocalError: the channel's current epoch has not been shared with us yet.
        """
        identity = self.identity
        events: list[Event] = []
        if self.state.member_keys.get(identity.public_key) != identity.x25519_public:
            events += self.key_work(wall_ms, entropy)
        sealed = self.keyring.seal_text(self.state, channel, text, purpose, entropy)
        if sealed is None and self.keyring.current(self.state, channel) is None:
            clean = [
                e
                for e in self.state.channel_keys.get(channel, {}).values()
                if not self.keyring.exposed(self.state, channel, e)
            ]
            if not clean or self.keyring.excludes_newcomer(self.state, channel, clean[-1]):
                # Nobody can send here yet, or a since-joining newcomer would never be given
                # the newest epoch: start the first (or a fresh) one.
                events.append(
                    self.author(self.keyring.rotation(self.state, channel, entropy), wall_ms)
                )
                sealed = self.keyring.seal_text(self.state, channel, text, purpose, entropy)
        if sealed is None:
            raise LocalError("waiting for this channel's key to be shared with you")
        return events, sealed

    def join(self, link: InviteLink, wall_ms: int) -> Event:
        """Author the Join for ``link`` once the community's history (with the invite) is in."""
        if link.server != self.server_id:
            raise LocalError("the invite is for another community")
        if link.invite not in self.dag:
            raise LocalError("the invite has not been received yet")
        proof = sign_join(link.seed, self.server_id, link.invite, self.identity.public_key)
        return self.author(Join(link.invite, proof), wall_ms)
