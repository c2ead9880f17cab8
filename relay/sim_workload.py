"""Random workloads for the network simulator: one seed, one reproducible run (testing tier 2).

A run: an owner founds a community, opens #general, grants a storage worker and a replay worker
``SyncProvider`` and asks both to serve it, and publishes an open invite; four more peers get the
link and join once the history (with the invite) has synced. Then random actions by whoever
believes it may take them (messages, replies, reactions, edits, deletions, channels, roles and
role permissions, direct grants, kicks and bans, admin grants, votes, leaves; a kicked peer
rejoins later unless banned) interleave with random faults: lossy, duplicating and reordering
links, some much worse than others, partitions, crashes (peers and workers), disconnects, and
stale-store restarts that make a peer equivocate. Finally everything heals, anti-entropy runs
until quiescence, and ``audit`` compares every replica with the union DAG.

Every run also has a sealed (end-to-end encrypted) channel, created by the owner at the start:
peers do their key work on each tick, send and edit sealed messages beside the plain traffic,
two readers rotate concurrently while partitioned, and after settling every current reader must
read every sealed message it may read (``relay.sim_sealed`` has the details).

Sizes stay small (tens of events) so a thousand seeds run in a few minutes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from willow_core.client import Community
from willow_core.event import Event
from willow_core.invite import InviteLink, invite_key
from willow_core.kinds import (
    AssignRole,
    CreateChannel,
    CreateInvite,
    CreateRole,
    DeleteMessage,
    EditMessage,
    GrantAdmin,
    GrantPermission,
    KickMember,
    Leave,
    Message,
    Payload,
    Propose,
    Reaction,
    RemoveReaction,
    RenameChannel,
    SetPermission,
    UnassignRole,
    Vote,
)
from willow_core.permissions import Permission
from willow_core.testing import seed_bytes

from .sim import Audit, LinkFaults, Network, SimNode, Stats, audit
from .sim_sealed import RUN_POLICY, SealedReport, SealedTraffic

__all__ = ["WorkloadConfig", "RunResult", "Workload", "run_random"]


@dataclass(slots=True)
class WorkloadConfig:
    """Size and fault budget of one random run (each seed draws its own values within these)."""

    peers: int = 5
    actions: int = 30
    #: actions and faults happen in ``[0, duration_ms)``; then everything heals
    duration_ms: int = 2_500
    faults: bool = True
    max_drop: float = 0.3
    max_duplicate: float = 0.2
    max_delay_ms: int = 250
    #: directed links given their own, possibly much worse, drop rate
    lossy_links: float = 0.2
    partitions: int = 2
    crashes: int = 2
    disconnects: int = 2
    #: stale-store restarts of a peer that then acts at once (equivocation)
    equivocations: int = 1
    sync_every_ms: int = 250
    #: a sealed channel with key work, sealed sends and edits, and one concurrent rotation
    sealed: bool = True


@dataclass(slots=True)
class RunResult:
    seed: int
    server: bytes
    audit: Audit
    rounds: int
    stats: Stats
    trace: bytes
    actions: int
    refused: int
    faults: list[str] = field(default_factory=list)
    sealed: SealedReport | None = None

    @property
    def ok(self) -> bool:
        """Converged (``audit``) and, with sealed traffic, every current reader reads it all."""
        return self.audit.ok and (self.sealed is None or self.sealed.ok)

    def describe(self) -> str:
        text = f"{self.faults}\n{self.audit.describe()}"
        return text if self.sealed is None else f"{text}\n{self.sealed.describe()}"


_EMOJI = ("👍", "🎉", "😂", "❤️", "🔥")
_ROLE_PERMISSIONS = (
    Permission.MANAGE_CHANNELS,
    Permission.MANAGE_ROLES,
    Permission.SEND_MESSAGES,
    Permission.ADD_REACTIONS,
    Permission.MANAGE_MESSAGES,
)
#: action -> weight; admin actions are taken by a peer that believes it is an admin
_ACTIONS: dict[str, int] = {
    "message": 30,
    "sealed": 6,
    "react": 10,
    "unreact": 3,
    "edit": 8,
    "delete": 2,
    "channel": 5,
    "rename": 2,
    "role": 4,
    "role-permission": 5,
    "assign": 5,
    "unassign": 2,
    "grant": 3,
    "kick": 5,
    "admin": 3,
    "vote": 4,
    "leave": 2,
}
_ADMIN_ACTIONS = frozenset({"grant", "kick", "admin", "vote"})


@dataclass(frozen=True, slots=True)
class _SealedSend:
    """A message for a sealed channel: sealed at send time (``SealedTraffic.send``)."""

    text: str
    reply_to: bytes | None


@dataclass(frozen=True, slots=True)
class _SealedEdit:
    message: bytes
    text: str


class Workload:
    """One seeded random run: ``run()`` sets up, acts with faults, settles and audits."""

    def __init__(self, seed: int, config: WorkloadConfig | None = None) -> None:
        self.seed = seed
        self.config = config or WorkloadConfig()
        self.rng = random.Random(f"willow-sim-workload/{seed}")
        self.net = Network(seed, sync_every_ms=self.config.sync_every_ms)
        self.net.on_tick = self._on_tick
        self.peers = [self.net.add(f"p{i}") for i in range(self.config.peers)]
        self.storage = self.net.add("storage", "storage")
        self.replay = self.net.add("replay", "replay")
        self.peer_keys = frozenset(p.key for p in self.peers)
        self.server = b""
        self.link: InviteLink | None = None
        self.actions = 0
        self.refused = 0
        self.fault_log: list[str] = []
        self.sealed = SealedTraffic(self.net, seed, self.peers) if self.config.sealed else None
        #: the owner makes p1 an admin once (two admins for the concurrent rotation)
        self._second_admin = False

    @property
    def owner(self) -> SimNode:
        return self.peers[0]

    def run(self) -> RunResult:
        self.setup()
        if self.config.faults:
            self.schedule_faults()
        self.schedule_actions()
        self.net.run_until(self.config.duration_ms)
        rounds = self.net.settle(self.server)
        sealed = None
        if self.sealed is not None:
            self.sealed.settle_keys()
            sealed = self.sealed.check([self.storage, self.replay])
        return RunResult(
            self.seed,
            self.server,
            audit(self.net, self.server),
            rounds,
            self.net.stats,
            self.net.trace_digest(),
            self.actions,
            self.refused,
            self.fault_log,
            sealed,
        )

    # --- setup ------------------------------------------------------------------------------

    def setup(self) -> None:
        """The owner founds the community, grants both workers SyncProvider, opens an invite."""
        net = self.net
        owner = self.owner
        created = net.act(owner.name, lambda node, now: node.create("sim", now))
        assert isinstance(created, Community)
        server = self.server = created.server_id
        net.author(owner.name, server, CreateChannel("general"))
        for worker in (self.storage, self.replay):
            net.author(owner.name, server, GrantPermission(worker.key, Permission.SYNC_PROVIDER))
        seed = seed_bytes(f"sim/{self.seed}/invite")
        invite = net.author(owner.name, server, CreateInvite(invite_key(seed)[0]))
        assert invite is not None
        self.link = InviteLink(server, invite.id, seed)
        if self.sealed is not None:
            self.sealed.setup(server, owner)
        self._ask_to_serve()
        for peer in self.peers[1:]:
            net.at(self.rng.randint(1, 300), partial(self._receive_link, peer))

    def _receive_link(self, peer: SimNode) -> None:
        """``peer`` gets the invite link: it opens the community and asks for its history."""
        peer.known[self.server] = None  # the link is kept: a crashed peer opens it on recovery
        peer.hints[self.server] = self.owner.key
        if peer.up:
            peer.node.open(self.server)
            peer.node.request_sync(self.server, None)
            self.net.pump(peer)

    def _ask_to_serve(self) -> None:
        owner = self.owner
        for worker in (self.storage, self.replay):
            owner.node.ask_to_serve(self.server, worker.key)
        self.net.pump(owner)

    def _on_tick(self, sn: SimNode) -> None:
        if sn is self.owner and self.rng.random() < 0.25:
            self._ask_to_serve()  # idempotent; covers a SERVE lost to a fault or a crash
        if sn.role != "peer":
            return
        community = sn.community(self.server)
        if community is None or not community.ready:
            return
        if self.sealed is not None:
            # A client's habits: do the key work due, then show the sealed channel.
            self.sealed.key_step(sn, RUN_POLICY)
            self.sealed.observe(sn)
            if sn is self.owner:
                self._make_second_admin(community)
        if self.link is None:
            return
        state = community.state
        if sn.key in state.members or sn.key in state.banned:
            return
        if self.link.invite not in state.invites:
            return
        if self.rng.random() < 0.5:  # not at once: a kicked peer stays out for a while
            link = self.link
            self.net.act(sn.name, lambda node, now: node.join(link, now))

    def _make_second_admin(self, community: Community) -> None:
        if self._second_admin:
            return
        second = self.peers[1].key
        state = community.state
        if (
            second in state.members
            and second not in state.admins
            and self.owner.key in state.admins
        ):
            self._second_admin = True
            self.net.author(self.owner.name, self.server, Propose(GrantAdmin(second)))

    # --- faults -----------------------------------------------------------------------------

    def schedule_faults(self) -> None:
        cfg, rng, net = self.config, self.rng, self.net
        names = list(net.nodes)
        net.faults = LinkFaults(
            rng.uniform(0, cfg.max_drop),
            rng.uniform(0, cfg.max_duplicate),
            1,
            rng.randint(1, cfg.max_delay_ms),
        )
        self.fault_log.append(f"links {net.faults}")
        for src in names:
            for dst in names:
                if src != dst and rng.random() < cfg.lossy_links:
                    drop = rng.uniform(0, 0.9)
                    net.link_faults[(src, dst)] = LinkFaults(
                        drop, net.faults.duplicate, 1, net.faults.max_delay_ms
                    )
                    self.fault_log.append(f"lossy {src}->{dst} {drop:.2f}")
        end = cfg.duration_ms
        for _ in range(rng.randint(0, cfg.partitions)):
            side = frozenset(n for n in names if rng.random() < 0.5)
            start = rng.randint(0, end)
            stop = start + rng.randint(100, end // 2)
            net.partition(side, start, stop)
            self.fault_log.append(f"partition {sorted(side)} {start}..{stop}")
        for _ in range(rng.randint(0, cfg.crashes)):
            name = rng.choice(names)
            start = rng.randint(0, end)
            stop = start + rng.randint(20, 1_500)
            net.at(start, partial(self._fault, net.crash, name))
            net.at(stop, partial(net.recover, name))
            self.fault_log.append(f"crash {name} {start}..{stop}")
        for _ in range(rng.randint(0, cfg.disconnects)):
            name = rng.choice(names)
            start = rng.randint(0, end)
            stop = start + rng.randint(20, 1_500)
            net.at(start, partial(self._fault, net.disconnect, name))
            net.at(stop, partial(net.reconnect, name))
            self.fault_log.append(f"offline {name} {start}..{stop}")
        peers = [p.name for p in self.peers]
        for _ in range(rng.randint(0, cfg.equivocations)):
            name = rng.choice(peers)
            start = rng.randint(300, end)
            net.at(start, partial(self._equivocate, name))
            self.fault_log.append(f"stale-restart {name} {start}")

    def _equivocate(self, name: str) -> None:
        """``name`` restarts from a stale store and acts before syncing: a fork, usually."""
        net = self.net
        if net.healed or not net[name].up:
            return
        others = [sn for sn in net.nodes.values() if sn.name != name]
        for event_id in net.crash(name, forget_own=1):
            held = False
            for sn in others:
                community = sn.community(self.server)
                held = held or (community is not None and event_id in community.dag)
            if not held:  # never left the peer: really lost (in-flight copies may still land)
                net.authored.pop(event_id, None)
        net.recover(name)
        community = net[name].community(self.server)
        state = community.state if community is not None and community.ready else None
        plain = sorted(c for c, ch in state.channels.items() if not ch.sealed) if state else []
        if plain:
            channel = plain[0]
            if net.author(name, self.server, Message(channel, "after a stale restart")):
                self.actions += 1

    def _fault(self, fault: Callable[[str], object], name: str) -> None:
        if not self.net.healed:
            fault(name)

    # --- actions ----------------------------------------------------------------------------

    def schedule_actions(self) -> None:
        for _ in range(self.config.actions):
            self.net.at(self.rng.randint(300, self.config.duration_ms), self._random_action)
        if self.sealed is not None and self.config.actions:
            sealed = self.sealed
            when = self.rng.randint(800, max(800, self.config.duration_ms - 800))
            self.net.at(when, partial(sealed.concurrent_rotation, self.rng, (300, 900)))

    def _random_action(self) -> None:
        kinds = list(_ACTIONS)
        kind = self.rng.choices(kinds, weights=[_ACTIONS[k] for k in kinds])[0]
        actors = []
        for sn in self.peers:
            community = sn.community(self.server)
            if not sn.up or community is None or not community.ready:
                continue
            state = community.state
            if sn.key in state.members and (kind not in _ADMIN_ACTIONS or sn.key in state.admins):
                actors.append(sn)
        if not actors:
            return
        actor = self.rng.choice(actors)
        community = actor.community(self.server)
        assert community is not None
        payload = self._payload(kind, actor, community)
        if payload is None:
            return
        self.actions += 1
        result: Event | None
        if isinstance(payload, _SealedSend):
            assert self.sealed is not None
            result = self.sealed.send(actor, payload.text, payload.reply_to)
        elif isinstance(payload, _SealedEdit):
            assert self.sealed is not None
            result = self.sealed.edit(
                actor, community.state.messages[payload.message], payload.text
            )
        else:
            result = self.net.author(actor.name, self.server, payload)
        if result is None:
            self.refused += 1

    def _payload(
        self, kind: str, actor: SimNode, community: Community
    ) -> Payload | _SealedSend | _SealedEdit | None:
        rng, state, me = self.rng, community.state, actor.key
        n = self.actions
        channels = sorted(state.channels)
        live = [m for m in sorted(state.messages) if not state.messages[m].deleted]
        mine = [m for m in live if state.messages[m].author == me]
        roles = sorted(r for r in state.roles if r != state.everyone_role)
        targets = sorted(k for k in state.members if k in self.peer_keys and k != state.owner)
        payload: Payload | _SealedSend | _SealedEdit | None = None
        sealed = self.sealed
        if kind == "sealed" and sealed is not None and sealed.channel in state.channels:
            in_channel = [m for m in live if state.messages[m].channel == sealed.channel]
            reply = rng.choice(in_channel) if in_channel and rng.random() < 0.2 else None
            payload = _SealedSend(f"sealed {n} from {actor.name}", reply)
        elif kind == "message" and channels:
            reply = rng.choice(live) if live and rng.random() < 0.2 else None
            channel = rng.choice(channels)
            if state.channels[channel].sealed and sealed is not None:
                payload = _SealedSend(f"sealed message {n} from {actor.name}", None)
            else:
                payload = Message(channel, f"message {n}", reply_to=reply)
        elif kind == "react" and live:
            payload = Reaction(rng.choice(live), rng.choice(_EMOJI))
        elif kind == "unreact":
            mine_reactions = [
                (m, emoji)
                for m in live
                for emoji, who in sorted(state.messages[m].reactions.items())
                if me in who
            ]
            if mine_reactions:
                payload = RemoveReaction(*rng.choice(mine_reactions))
        elif kind == "edit" and mine:
            target = rng.choice(mine)
            if state.messages[target].sealed is not None and sealed is not None:
                payload = _SealedEdit(target, f"sealed edit {n} by {actor.name}")
            else:
                payload = EditMessage(target, f"edited {n}")
        elif kind == "delete" and mine:
            payload = DeleteMessage(rng.choice(mine))
        elif kind == "channel":
            payload = CreateChannel(f"channel-{n}")
        elif kind == "rename" and channels:
            payload = RenameChannel(rng.choice(channels), f"renamed-{n}")
        elif kind == "role":
            payload = CreateRole(f"role-{n}", rng.randint(0, 0xFFFFFF))
        elif kind == "role-permission" and roles:
            granted = rng.random() < 0.7
            payload = SetPermission(rng.choice(roles), rng.choice(_ROLE_PERMISSIONS), granted)
        elif kind == "assign" and roles and targets:
            payload = AssignRole(rng.choice(targets), rng.choice(roles))
        elif kind == "unassign":
            assigned = [(p, r) for p in targets for r in sorted(state.members[p].roles)]
            if assigned:
                payload = UnassignRole(*rng.choice(assigned))
        elif kind == "grant" and targets:
            permission = rng.choice((Permission.MANAGE_CHANNELS, Permission.MANAGE_ROLES))
            payload = GrantPermission(rng.choice(targets), permission)
        elif kind == "kick" and targets:
            payload = Propose(KickMember(rng.choice(targets), rng.random() < 0.15))
        elif kind == "admin" and targets:
            payload = Propose(GrantAdmin(rng.choice(targets)))
        elif kind == "vote" and state.proposals:
            payload = Vote(rng.choice(sorted(state.proposals)), rng.random() < 0.8)
        elif kind == "leave":
            payload = Leave()
        return payload


def run_random(seed: int, config: WorkloadConfig | None = None) -> RunResult:
    """One random run: 5 peers + a storage and a replay worker, actions, faults, settle, audit."""
    return Workload(seed, config).run()
