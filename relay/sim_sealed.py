"""Sealed (end-to-end encrypted) channel traffic for the simulator's random runs (issue 5).

``relay.sim_workload`` drives one ``SealedTraffic`` per run:

* **Setup.** The owner creates one sealed channel at the start (history visibility drawn from
  the seed), publishes its X25519 key and starts the first epoch.
* **Every step of a peer** (its anti-entropy tick) it does the key work due for it
  (``Keyring.due``: publish its key, rotate on exposure/age/count or for a since-joining
  newcomer, share epochs with readers lacking them, staggered by rank) and then *looks* at every
  sealed message as a client would render it: each one opens, or gives an ``Unreadable`` reason.
  Observations are counted per reason (distinct peer, message, reason); one without a reason
  would be a silent decryption failure and is counted as ``unexplained`` (must stay 0).
* **Traffic.** Sends to the sealed channel go through ``Community.seal`` + ``SealedMessage``
  (edits through ``SealedEdit``), beside the plain traffic, kicks and leaves of the workload.
* **Concurrent rotations.** Once per run two readers (admins when there are two) are cut apart
  by a partition and each starts a new epoch with ``Keyring.rotation`` and sends under it.
* **After settling.** Time moves on in whole ``STAGGER_MS`` steps and every member does its key
  work, until a full round of steps passes with nothing authored (a need noticed by the reader
  of rank ``r`` is acted on within ``r + 1`` steps, so ``len(readers)`` quiet steps mean no need
  is left). Then ``check`` opens every sealed message for every current reader: each must open
  to a plaintext that was sealed for it, except messages that reader may legitimately not read
  (``NOT_A_READER`` in a since-joining channel), which are classified and counted separately,
  and messages whose epoch no current reader holds (its only holders equivocated, so replay
  ignores whatever they author now, or left): nobody can ever share those keys, a loss the
  design accepts (no key escrow), counted apart as ``key-lost``. The storage and replay
  workers must open nothing.

Key policy during the run is deliberately aggressive (``RUN_POLICY``) so that age and count
rotations happen within a 2.5 s run. The settling steps move time by seconds at a time, so they
use no age limit (``SETTLED_POLICY``): otherwise every step would rotate again.

Entropy (epoch keys, ephemeral keys, salts) comes from a ``random.Random`` seeded per run, so a
seed still replays exactly.

**Two fault models**, run many seeds of either with ``python -m relay.sim_sealed`` (see
``main``; ``--help``):

* ``issue`` (issue 5's acceptance): lossy, duplicating and reordering links, partitions,
  crashes, disconnects and the concurrent rotation, beside kicks, bans and leaves in the
  workload; no peer equivocates. Every sealed message must end readable by every current reader
  who may read it: ``undecryptable``, ``key-lost`` and ``unexplained`` must all be zero.
  During the run a reader may still see ``KEY_LOST`` while every holder of an epoch is out
  (left or kicked); a holder who rejoins shares it again and the message reads after all
  (counted as ``key-lost-later-read``).
* ``equivocation``: the same plus stale-store restarts, so a peer may sign two events at one
  seq (the default ``WorkloadConfig``, and what ``tests/sim`` runs). A member who equivocates
  stops counting as a reader, so an epoch only such members held is lost for good
  (``KEY_LOST``, accepted and counted apart); nothing else may stay unreadable.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import TYPE_CHECKING

from willow_core.client import Community
from willow_core.errors import LocalError
from willow_core.event import Event
from willow_core.keyring import STAGGER_MS, KeyPolicy, Unreadable
from willow_core.kinds import (
    CreateSealedChannel,
    HistoryVisibility,
    PublishKey,
    RotateChannelKey,
    Sealed,
    SealedEdit,
    SealedMessage,
    ShareChannelKey,
)
from willow_core.node import Node
from willow_core.state import ChatMessage, ServerState

if TYPE_CHECKING:
    from .sim import Network, SimNode

__all__ = [
    "RUN_POLICY",
    "SETTLED_POLICY",
    "MAX_KEY_STEPS",
    "SealedReport",
    "SealedTraffic",
    "FAULT_MODELS",
    "Tally",
    "run_seeds",
    "main",
]

#: During the run: epochs older than 1.5 s or with 6 sealed messages are replaced.
RUN_POLICY = KeyPolicy(max_age_ms=1_500, max_messages=6)
#: After healing, time moves in stagger steps: no age limit (see the module docstring).
SETTLED_POLICY = KeyPolicy(max_age_ms=0, max_messages=6)
#: Settling steps before giving up (a failure: key work that never ends).
MAX_KEY_STEPS = 40
#: Fault model -> stale-store restarts (equivocations) a run may draw; all else is shared.
FAULT_MODELS = {"issue": 0, "equivocation": 1}
#: Seeds a worker process takes at a time (big enough to amortize the hand-off).
SEED_CHUNK = 25
#: Failing seeds whose details ``main`` prints.
SHOWN_FAILURES = 3
#: A since-joining reader cannot read a message whose sender had seen its join and its key.
_GAP = "after-join-and-key-seen"

_KEY_KINDS = {
    PublishKey: "key-publishes",
    RotateChannelKey: "rotations",
    ShareChannelKey: "shares",
}


@dataclass(slots=True)
class SealedReport:
    """What happened to sealed traffic in one run, and whether the end state is all readable."""

    history: str
    #: traffic and key work (sent, edits, rotations, shares, ...)
    counters: dict[str, int] = field(default_factory=dict)
    #: during the run: distinct (peer, message, reason) observations of an unreadable message
    observed: dict[str, int] = field(default_factory=dict)
    #: at the end, per (current reader, sealed message): readable, or why not
    final: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        lines = [
            f"sealed ({self.history}): {self.counters}",
            f"  observed {self.observed}",
            f"  final {self.final}",
        ]
        lines += [f"  FAIL {f}" for f in self.failures[:10]]
        return "\n".join(lines)


class SealedTraffic:
    """The sealed channel of one random run: key work, sends, observations, the final check."""

    def __init__(self, net: Network, seed: int, peers: list[SimNode]) -> None:
        self.net = net
        self.peers = peers
        rng = random.Random(f"willow-sim-sealed/{seed}")
        self._entropy_rng = random.Random(rng.getrandbits(64))
        self.history = rng.choice((HistoryVisibility.FULL, HistoryVisibility.SINCE_JOINING))
        self.server = b""
        self.channel = b""
        #: sealed message id -> every plaintext sealed for it (the message, then its edits)
        self.texts: dict[bytes, set[str]] = {}
        self.counters: Counter[str] = Counter()
        #: (peer, message, reason) seen while looking at the channel during the run
        self._seen: set[tuple[str, bytes, Unreadable]] = set()
        #: (peer, message) seen unreadable for a transient reason (a key not there yet)...
        self._transient: set[tuple[str, bytes]] = set()
        #: ...and of those, the ones the peer read later (the key arrived; retried by itself)
        self._resolved: set[tuple[str, bytes]] = set()
        #: (peer, message) seen as KEY_LOST, and those the peer read later all the same: the
        #: only holders had left or been kicked, and one came back (rejoined) and shared it
        self._lost: set[tuple[str, bytes]] = set()
        self._lost_resolved: set[tuple[str, bytes]] = set()
        #: peer -> events its replica held when it last looked at the channel
        self._looked: dict[str, int] = {}
        #: sealed box -> (members, readers) in its sender's view when it was sealed
        self._audience: dict[bytes, tuple[frozenset[bytes], frozenset[bytes]]] = {}
        self.unexplained = 0
        self._current_readers: dict[str, bool] = {}

    def entropy(self, n: int) -> bytes:
        return self._entropy_rng.randbytes(n)

    def _community(self, sn: SimNode) -> Community | None:
        community = sn.community(self.server)
        return community if community is not None and community.ready else None

    # --- setup and key work ---------------------------------------------------------------

    def setup(self, server: bytes, owner: SimNode) -> None:
        """The owner creates the sealed channel, publishes its key and starts the first epoch."""
        self.server = server
        created = self.net.author(
            owner.name, server, CreateSealedChannel("sealed", "end to end", self.history)
        )
        assert created is not None
        self.channel = created.id
        self.key_step(owner, RUN_POLICY)  # PublishKey
        self.key_step(owner, RUN_POLICY)  # the first epoch

    def key_step(self, sn: SimNode, policy: KeyPolicy) -> int:
        """``sn`` authors the key work due now (as ``Community.key_work`` does, through the
        simulator's act so each event is persisted before it is sent). Returns events authored."""
        community = self._community(sn)
        if community is None or not sn.up:
            return 0
        state = community.state
        if sn.key not in state.members:
            return 0
        keyring = community.keyring
        due = keyring.due(state, self.net.wall_ms, self.entropy, policy)
        if not due:
            return 0
        rank = keyring._rank(state, self.channel) if self.channel in state.channels else 0
        authored = 0
        for payload in due:
            if self.net.author(sn.name, self.server, payload) is None:
                self.counters["key-work-refused"] += 1
                continue
            authored += 1
            self.counters[_KEY_KINDS.get(type(payload), "other-key-events")] += 1
            if rank > 0 and not isinstance(payload, PublishKey):
                self.counters["staggered"] += 1  # done by a reader that waited its turn
        return authored

    # --- sending --------------------------------------------------------------------------

    def _ensure_own_key(self, sn: SimNode, community: Community) -> bool:
        if community.state.member_keys.get(sn.key) != sn.identity.x25519_public:
            self.key_step(sn, RUN_POLICY)
        community = self._community(sn) or community
        return community.state.member_keys.get(sn.key) == sn.identity.x25519_public

    def _author_sealed(
        self, sn: SimNode, channel: bytes, text: str, purpose: str, make: object
    ) -> Event | None:
        """Seal ``text`` (starting an epoch if the channel has none clean) and author what
        ``make(sealed)`` builds, all inside one act: persisted before anything is sent."""
        community = self._community(sn)
        if community is None or not sn.up or not self._ensure_own_key(sn, community):
            self.counters["send-without-key"] += 1
            return None
        server = self.server
        authored: list[Event] = []

        def action(node: Node, now: int) -> Event | None:
            own = node.communities[server]
            # Own key published: ``seal`` either authors a rotation and seals, or raises
            # before authoring anything (waiting for a share).
            key_events, sealed = own.seal(channel, text, purpose, now, self.entropy)
            node.publish(server, key_events)
            authored.extend(key_events)
            state = own.state  # what the sender knew when it sealed (the final check asks)
            self._audience[sealed.box] = (
                frozenset(state.members),
                frozenset(own.keyring.readers(state, channel)),
            )
            try:
                return node.author(server, make(sealed), now)  # type: ignore[operator]
            except LocalError:
                return None  # refused (say, a role lost SEND_MESSAGES); the epoch stays

        result = self.net.act(sn.name, action)
        for ev in authored:
            self.net.authored[ev.id] = ev
            self.counters["rotations-by-senders"] += 1
        if result is None:
            self.counters["send-refused"] += 1
        return result if isinstance(result, Event) else None

    def send(self, sn: SimNode, text: str, reply_to: bytes | None = None) -> Event | None:
        channel = self.channel

        def make(sealed: Sealed) -> SealedMessage:
            return SealedMessage(channel, sealed, None, reply_to)

        ev = self._author_sealed(sn, channel, text, "message", make)
        if ev is not None:
            self.texts[ev.id] = {text}
            self.counters["sent"] += 1
        return ev

    def edit(self, sn: SimNode, message: ChatMessage, text: str) -> Event | None:
        def make(sealed: Sealed) -> SealedEdit:
            return SealedEdit(message.id, sealed)

        self.texts.setdefault(message.id, set()).add(text)
        ev = self._author_sealed(sn, message.channel, text, "edit", make)
        if ev is not None:
            self.counters["edits"] += 1
        return ev

    def concurrent_rotation(self, rng: random.Random, window: tuple[int, int]) -> None:
        """Two readers, cut apart by a partition, each start an epoch and send under it."""
        net = self.net
        if net.healed:
            return
        ready = []
        for sn in self.peers:
            community = self._community(sn)
            if community is None or not sn.up:
                continue
            state = community.state
            if sn.key in community.keyring.readers(state, self.channel):
                ready.append((sn.key not in state.admins, sn.name, sn))
        if len(ready) < 2:
            self.counters["concurrent-skipped"] += 1
            return
        ready.sort(key=lambda item: (item[0], item[1]))  # admins first
        a = ready[0][2]
        two_admins = not ready[1][0]
        b = ready[1][2] if two_admins else rng.choice(ready[1:])[2]
        side = {a.name} | {n for n in net.nodes if n not in (a.name, b.name) and rng.random() < 0.5}
        net.partition(side, net.now, net.now + rng.randint(*window))
        self.counters["concurrent-rotations"] += 1
        if two_admins:
            self.counters["concurrent-by-two-admins"] += 1
        for sn in (a, b):
            community = self._community(sn)
            assert community is not None
            rotation = community.keyring.rotation(community.state, self.channel, self.entropy)
            if net.author(sn.name, self.server, rotation) is not None:
                self.counters["rotations"] += 1
            self.send(sn, f"sealed while partitioned, from {sn.name} at {net.now}")

    # --- looking at the channel -----------------------------------------------------------

    def _sealed_messages(self, state: ServerState) -> list[ChatMessage]:
        channel = state.channels.get(self.channel)
        if channel is None:
            return []
        out = []
        for message_id in channel.messages:
            message = state.messages.get(message_id)
            if message is not None and message.sealed is not None:
                out.append(message)
        return out

    def observe(self, sn: SimNode) -> None:
        """Render the sealed channel as ``sn``'s client would: count every unreadable by reason."""
        community = self._community(sn)
        if community is None:
            return
        # A client re-renders when events arrive: nothing new, nothing to look at again.
        if self._looked.get(sn.name) == len(community.dag):
            return
        self._looked[sn.name] = len(community.dag)
        state, keyring = community.state, community.keyring
        for message in self._sealed_messages(state):
            opened = keyring.open_message(state, message)
            if opened.text is not None:
                if (sn.name, message.id) in self._transient:
                    self._resolved.add((sn.name, message.id))
                if (sn.name, message.id) in self._lost:
                    self._lost_resolved.add((sn.name, message.id))
                continue
            if not isinstance(opened.reason, Unreadable):
                self.unexplained += 1
                continue
            self._seen.add((sn.name, message.id, opened.reason))
            if opened.reason.transient:
                self._transient.add((sn.name, message.id))
            elif opened.reason is Unreadable.KEY_LOST:
                self._lost.add((sn.name, message.id))

    # --- after the run --------------------------------------------------------------------

    def settle_keys(self) -> None:
        """After healing: stagger steps of key work until nothing more is due (see above)."""
        net = self.net
        quiet = steps = 0
        while steps < MAX_KEY_STEPS:
            readers = max(1, len(self._readers()))
            if quiet >= readers:
                break
            net.run_until(net.now + STAGGER_MS)  # timers are stopped: time just passes
            steps += 1
            authored = sum(self.key_step(sn, SETTLED_POLICY) for sn in self.peers)
            quiet = 0 if authored else quiet + 1
            if authored:
                net.quiesce()  # healed links: every copy arrives
                if not net.converged(self.server):
                    net.resume()
                    net.settle(self.server)
        else:
            self.counters["key-steps-exhausted"] += 1
        self.counters["settle-steps"] += steps
        for sn in self.peers:
            self.observe(sn)

    def _readers(self) -> list[bytes]:
        for sn in self.peers:
            community = self._community(sn)
            if community is not None and self.channel in community.state.channels:
                return community.keyring.readers(community.state, self.channel)
        return []

    def check(self, workers: list[SimNode]) -> SealedReport:
        """Every current reader reads every sealed message it may read; workers read none."""
        report = SealedReport(self.history.name)
        final: Counter[str] = Counter()
        failures = report.failures
        if self.counters["key-steps-exhausted"]:
            failures.append("key work never settled")
        if self.unexplained:
            failures.append(f"{self.unexplained} unreadable observations carried no reason")
        #: (current reader, message) -> how it ended (read, not-a-reader, key-lost, ...)
        outcome: dict[tuple[str, bytes], str] = {}
        for sn in self.peers:
            community = self._community(sn)
            if community is None or self.channel not in community.state.channels:
                continue
            state, keyring = community.state, community.keyring
            is_reader = sn.key in keyring.readers(state, self.channel)
            self._current_readers[sn.name] = is_reader
            if not is_reader:
                final["peers-not-readers"] += 1
                continue
            final["readers"] += 1
            history = state.channels[self.channel].history
            for message in self._sealed_messages(state):
                opened = keyring.open_message(state, message)
                if opened.text is not None:
                    if opened.text not in self.texts.get(message.id, ()):
                        failures.append(f"{sn.name} read {opened.text!r}: not what was sealed")
                    final["readable"] += 1
                    outcome[(sn.name, message.id)] = "read"
                    continue
                reason = opened.reason
                outcome[(sn.name, message.id)] = "unreadable"
                if reason is Unreadable.NOT_A_READER and history is HistoryVisibility.SINCE_JOINING:
                    why = self._why_not(community, sn, message)
                    final[f"not-a-reader/{why}"] += 1
                    outcome[(sn.name, message.id)] = "not-a-reader"
                    if why == _GAP:
                        failures.append(f"{sn.name} cannot read {message.id.hex()[:12]}: {why}")
                    continue
                if reason is Unreadable.KEY_LOST:
                    # The keyring says nobody can share this key again; the simulator checks
                    # that independently (every holder is gone) before accepting it.
                    lost = self._lost_with(community, message)
                    if lost is not None:
                        final[f"key-lost/{lost}"] += 1
                        outcome[(sn.name, message.id)] = "key-lost"
                        continue
                name = reason.name if reason is not None else "NO-REASON"
                final[f"undecryptable/{name}"] += 1
                failures.append(
                    f"{sn.name} cannot read {message.id.hex()[:12]}: {name} ({history.name})"
                )
        for worker in workers:
            community = self._community(worker)
            if community is None:
                continue
            for message in self._sealed_messages(community.state):
                if community.keyring.open_message(community.state, message).text is not None:
                    failures.append(f"{worker.name} read a sealed message")
                    final["read-by-workers"] += 1
        observed: Counter[str] = Counter(reason.name for _, _, reason in self._seen)
        observed["transient-later-read"] = len(self._resolved)
        if self._lost_resolved:
            observed["key-lost-later-read"] = len(self._lost_resolved)
        # Every transient that was never read by its peer, and why: the peer is no reader any
        # more (kicked, left, equivocated), the message is gone (deleted, or refused once the
        # order settled), since-joining history, or a lost key.
        end_state = next(
            (c.state for sn in self.peers if (c := self._community(sn)) is not None), None
        )
        for pair in sorted(self._transient - self._resolved):
            ended = outcome.get(pair)
            if ended is None and not self._current_readers.get(pair[0], False):
                ended = "peer-not-a-reader"
            elif ended is None:
                gone = end_state.messages.get(pair[1]) if end_state is not None else None
                ended = "message-refused" if gone is None else "message-deleted"
            observed[f"transient-then-{ended}"] += 1
        if self.unexplained:
            observed["unexplained"] = self.unexplained
        report.counters = dict(self.counters)
        report.observed = dict(observed)
        report.final = dict(final)
        return report

    def _lost_with(self, community: Community, message: ChatMessage) -> str | None:
        """Whether no current reader holds ``message``'s epoch, so nobody can ever share it:
        its holders equivocated (replay ignores what they author now) or are gone. A loss the
        keys' design accepts (no key escrow), reported apart; None if someone could share it."""
        assert message.sealed is not None
        state = community.state
        epoch = state.channel_keys[self.channel][message.sealed.key]
        readers = set(community.keyring.readers(state, self.channel))
        if any(peer in readers for peer in epoch.shares):
            return None
        if any(peer in community.dag.fork_seq for peer in epoch.shares):
            return "holder-equivocated"
        return "holders-left"

    def _why_not(self, community: Community, sn: SimNode, message: ChatMessage) -> str:
        """Why a current reader may not read ``message`` in a since-joining channel: it was
        sent before the reader's (latest) join, by a sender who had not yet seen that join, or
        had not yet seen the reader's key (nobody can wrap a key for a member without one), as
        recorded when it was sealed. ``_GAP`` (the sender counted the reader among the
        channel's readers and still sealed under an epoch the reader lacks) is a keyring bug."""
        member = community.state.members.get(sn.key)
        if member is None or message.ts < member.joined_at:
            return "sent-before-joining"
        assert message.sealed is not None
        members, readers = self._audience.get(message.sealed.box, (frozenset(), frozenset()))
        if sn.key in readers:
            return _GAP
        if sn.key not in members:
            return "sender-had-not-seen-the-join"
        return "sender-had-not-seen-the-key"


# --- many seeds from the command line -------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """Sealed-channel outcomes summed over many seeds of one fault model."""

    model: str
    seeds: int = 0
    failed: list[str] = field(default_factory=list)
    forked_runs: int = 0
    #: at the end, per (current reader, sealed message)
    final: Counter[str] = field(default_factory=Counter)
    #: during the run, per distinct (peer, message, reason)
    observed: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)

    def add(self, summary: tuple[int, bool, str, int, dict[str, dict[str, int]]]) -> None:
        seed, ok, detail, forks, groups = summary
        self.seeds += 1
        if not ok:
            self.failed.append(f"seed {seed}: {detail}")
        self.forked_runs += forks > 0
        self.final.update(groups["final"])
        self.observed.update(groups["observed"])
        self.counters.update(groups["counters"])

    def _sum(self, prefix: str) -> int:
        return sum(v for k, v in self.final.items() if k.startswith(prefix))

    @property
    def headline(self) -> dict[str, int]:
        """The counts the acceptance names, per (current reader, sealed message) at the end,
        and the unreadable sightings during the run (each one carried its reason, or was
        counted ``unexplained``)."""
        transient = [r.name for r in Unreadable if r.transient]
        return {
            "readable": self.final["readable"],
            "NOT_A_READER": self._sum("not-a-reader/"),
            "undecryptable": self._sum("undecryptable/"),
            "KEY_LOST": self._sum("key-lost/"),
            "transient-with-reason": sum(self.observed[name] for name in transient),
            "transient-later-read": self.observed["transient-later-read"],
            "KEY_LOST-during-run": self.observed["KEY_LOST"],
            "KEY_LOST-later-read": self.observed["key-lost-later-read"],
            "unexplained": self.observed["unexplained"],
        }

    @property
    def clean(self) -> bool:
        """No failed seed, nothing unexplained, nothing undecryptable; ``KEY_LOST`` only
        where members equivocated (the fault model without equivocation allows none)."""
        counts = self.headline
        lost_ok = self.model != "issue"
        return (
            not self.failed
            and counts["undecryptable"] == 0
            and counts["unexplained"] == 0
            and (lost_ok or counts["KEY_LOST"] == 0)
        )

    def describe(self) -> str:
        lines = [
            f"{self.model}: {self.seeds} seeds, {len(self.failed)} failed, "
            f"{self.forked_runs} with an equivocating peer",
            f"  {self.headline}",
            f"  end (current reader x sealed message): {dict(sorted(self.final.items()))}",
            f"  unreadable during the run: {dict(sorted(self.observed.items()))}",
            f"  sealed traffic and key work: {dict(sorted(self.counters.items()))}",
        ]
        lines += [f"  {failure}" for failure in self.failed[:SHOWN_FAILURES]]
        return "\n".join(lines)


def _run_one(job: tuple[str, int]) -> tuple[int, bool, str, int, dict[str, dict[str, int]]]:
    """One seed of one fault model, summarized small enough to send between processes."""
    from .sim_workload import WorkloadConfig, run_random  # imports this module

    model, seed = job
    result = run_random(seed, WorkloadConfig(equivocations=FAULT_MODELS[model]))
    sealed = result.sealed
    assert sealed is not None
    groups = {"final": sealed.final, "observed": sealed.observed, "counters": sealed.counters}
    detail = "" if result.ok else result.describe()
    return seed, result.ok, detail, result.audit.forks, groups


def run_seeds(model: str, seeds: Iterable[int], processes: int = 1) -> Tally:
    """Run ``seeds`` under ``model`` (``FAULT_MODELS``), in ``processes`` worker processes."""
    tally = Tally(model)
    jobs = [(model, seed) for seed in seeds]
    if processes <= 1:
        for job in jobs:
            tally.add(_run_one(job))
        return tally
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        for summary in pool.map(_run_one, jobs, chunksize=SEED_CHUNK):
            tally.add(summary)
    return tally


def main(argv: list[str] | None = None) -> int:
    """``python -m relay.sim_sealed [--seeds N] [--first S] [--processes P] [--model M]``:
    run the sealed channel through many seeds and print the outcome counts of each fault
    model. Exit status 1 if a model's run is not clean (``Tally.clean``)."""
    parser = argparse.ArgumentParser(prog="python -m relay.sim_sealed", description=main.__doc__)
    parser.add_argument("--seeds", type=int, default=1_000, help="seeds per fault model")
    parser.add_argument("--first", type=int, default=0, help="the first seed")
    parser.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--model", choices=[*FAULT_MODELS, "both"], default="issue", help="fault model(s)"
    )
    args = parser.parse_args(argv)
    models = list(FAULT_MODELS) if args.model == "both" else [args.model]
    clean = True
    for model in models:
        start = time.perf_counter()
        tally = run_seeds(model, range(args.first, args.first + args.seeds), args.processes)
        elapsed = time.perf_counter() - start
        print(f"{tally.describe()}\n  ({elapsed:.0f} s on {args.processes} processes)")
        clean = clean and tally.clean
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
