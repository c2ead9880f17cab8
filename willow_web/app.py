"""The browser client's controller: user intents in, signed events and view patches out.

It runs in the Web Worker (D12) but touches no browser API: the shell (``boot``) hands it an
``Io`` (clock, entropy, posting to the page, flushing the store, waking the socket), so the
whole client runs unchanged under CPython in tests. Every page message is an *action*; every
change ends in ``render``, which recomputes each screen region and posts only those whose HTML
changed (the page morphs them in place, keeping focus and scroll).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from willow_core.client import Community
from willow_core.errors import LocalError, NotPermitted, WillowError
from willow_core.event import Event
from willow_core.identity import Identity
from willow_core.invite import InviteLink
from willow_core.managed import Receipt
from willow_core.node import Node
from willow_core.results import RejectReason
from willow_core.state import ServerState

from . import actions
from .link import RelayLink
from .store import Store
from .views import ViewCache, render_regions

__all__ = ["App", "Io", "Ui", "CATCH_UP_QUIET_MS", "LIST_JUMP", "LIST_QUIET_MS", "MESSAGE_WINDOW"]

#: A sync with no batch for this long is over, even without an end-of-history marker.
CATCH_UP_QUIET_MS = 8_000
#: The message list follows changes of at most this many messages at once (live chat). A larger
#: jump while the open community catches up, or while its events keep arriving (a batch every
#: few hundred milliseconds), waits until the catch-up is over and no event came for
#: LIST_QUIET_MS; the next tick then draws it once, and meanwhile the banner counts what
#: arrives. Every jump replaces the whole list on the page, a long task on the thread the person
#: types on, and the windows a long history passes through would fly by unread. What the person
#: does is always drawn at once.
LIST_JUMP = 20
LIST_QUIET_MS = 1_000
#: Messages rendered per channel at first; "load older" adds this many more.
MESSAGE_WINDOW = 80
#: Toasts shown at once (older ones drop).
MAX_TOASTS = 3
TOAST_MS = 5_000
#: Own events kept per community for re-sending until a storage worker acknowledges them.
#: Behind a relay without storage nothing is ever acknowledged: the newest are what a
#: reconnect must re-send (older ones went out on earlier connections), and the settings
#: file, about 40 bytes an id, stays far below the store's MAX_UI_BYTES.
MAX_UNACKED = 4_096


class Io(Protocol):
    """What the shell provides: the outside world, passed in."""

    def now_ms(self) -> int: ...

    def random(self, n: int) -> bytes: ...

    def post(self, message: dict[str, Any]) -> None: ...

    def persist(self) -> None:
        """Flush the store to durable storage soon (coalesced by the shell)."""
        ...

    def persist_later(self) -> None:
        """Flush within a while: for what others hold too (received events; sync would fetch
        them again), so a flush never sits between an arriving message and its drawing."""
        ...

    def wake(self) -> None:
        """The node has envelopes to send."""
        ...


@dataclass(slots=True)
class Ui:
    """What the person is looking at; survives reloads through ``ui.cbor``."""

    community: bytes | None = None
    channel: dict[bytes, bytes] = field(default_factory=dict)
    thread: bytes | None = None
    reply_to: bytes | None = None
    editing: bytes | None = None
    modal: str | None = None
    modal_args: dict[str, Any] = field(default_factory=dict)
    settings_tab: str = "overview"
    members_open: bool = True
    pins_open: bool = False
    picker_for: bytes | None = None
    window: int = MESSAGE_WINDOW
    #: channel or thread id -> messages seen there
    read: dict[bytes, int] = field(default_factory=dict)
    #: invite id -> seed, for invites this person made (to show their links again)
    invites: dict[bytes, bytes] = field(default_factory=dict)
    #: server -> invite links waiting for the community's history before joining
    joining: dict[bytes, str] = field(default_factory=dict)
    #: server -> ids of own events no trusted storage worker acknowledged yet
    unacked: dict[bytes, set[bytes]] = field(default_factory=dict)
    #: people whose safety number this person compared and confirmed (their identity keys)
    verified: set[bytes] = field(default_factory=set)
    toasts: list[tuple[int, str]] = field(default_factory=list)

    def to_obj(self) -> dict[str, Any]:
        """The persisted part. Maps keyed by bytes are lists of pairs: canonical CBOR as we
        decode it allows text map keys only."""
        return {
            "community": self.community,
            "channel": sorted(self.channel.items()),
            "members_open": self.members_open,
            "read": sorted(self.read.items()),
            "invites": sorted(self.invites.items()),
            "joining": sorted(self.joining.items()),
            "unacked": sorted((s, sorted(ids)) for s, ids in self.unacked.items() if ids),
            "verified": sorted(self.verified),
        }

    @classmethod
    def from_obj(cls, obj: dict[str, Any]) -> Ui:
        ui = cls()
        community = obj.get("community")
        ui.community = community if type(community) is bytes else None
        ui.channel = _bytes_map(obj.get("channel"), bytes)
        ui.members_open = obj.get("members_open") is not False
        ui.read = _bytes_map(obj.get("read"), int)
        ui.invites = _bytes_map(obj.get("invites"), bytes)
        ui.joining = _bytes_map(obj.get("joining"), str)
        verified = obj.get("verified")
        if type(verified) is list:
            ui.verified = {k for k in verified if type(k) is bytes and len(k) == 32}
        for server, ids in _bytes_map(obj.get("unacked"), list).items():
            ui.unacked[server] = {i for i in ids if type(i) is bytes}
        return ui


def _bytes_map(value: object, kind: type) -> dict[bytes, Any]:
    """A list of ``[bytes key, value of kind]`` pairs as a dict; anything malformed is skipped."""
    if type(value) is not list:
        return {}
    return {
        pair[0]: pair[1]
        for pair in value
        if type(pair) is list
        and len(pair) == 2
        and type(pair[0]) is bytes
        and type(pair[1]) is kind
    }


@dataclass(slots=True)
class CatchUp:
    started: int
    last_progress: int
    events: int
    #: ``SyncProgress.rounds`` when it began: one more means an exchange reached the end
    rounds: int


class App:
    """One person's client: identity, communities, what they see."""

    def __init__(self, io: Io, store: Store, config: dict[str, Any] | None = None) -> None:
        self.io = io
        self.store = store
        self.config = config or {}
        self.identity: Identity | None = None
        self.display_name = ""
        self.node: Node | None = None
        self.link: RelayLink | None = None
        self.ui = Ui()
        #: "offline", "connecting", "online"
        self.connection = "offline"
        self.retry_at: int | None = None
        self.catching: dict[bytes, CatchUp] = {}
        self.started = False
        self._last: dict[str, str] = {}
        self._render_seq = 0
        self._last_composer: dict[str, Any] | None = None
        #: (community, channel, window) of the message list the page shows, and its length
        self._list_shown: tuple[tuple[bytes, bytes, int], int] | None = None
        #: community -> when events last arrived there (see LIST_JUMP)
        self._arrived_at: dict[bytes, int] = {}
        self._dirty_ui = False
        #: the size of ``node.stored`` when ``notice_acks`` last looked
        self._stored_seen = -1
        self.view_cache = ViewCache()
        from .views.common import SERVICE_NAMES

        SERVICE_NAMES.update({key: f"{role} worker" for role, key in self.services()})

    # --- start-up -----------------------------------------------------------------------

    def start(self) -> None:
        """Load everything stored and show it: the cached state renders before any network."""
        try:
            profile = self.store.load_profile()
        except WillowError:
            profile = None
            self.toast("Your stored profile could not be read; create a new one.")
        self.ui = Ui.from_obj(self.store.load_ui())
        if profile is not None:
            seed, name = profile
            self._become(Identity.from_seed(seed), name)
            now = self.io.now_ms()
            for server in self.store.communities():
                rows = self.store.load_rows(server)
                community = Community(self.identity, server)  # type: ignore[arg-type]
                if rows:
                    community.managed.restore(rows)
                    newest = max(community.dag.events[r[0]].ts for r in rows[-64:])
                    community.clock.observe(newest, now)
                assert self.node is not None
                self.node.add(community)
        else:
            self.ui.modal = "welcome"
        self._fix_selection()
        self.started = True
        self.render()
        self.io.post({"type": "ready"})

    def _become(self, identity: Identity, name: str) -> None:
        self.identity = identity
        self.display_name = name
        self.node = Node(identity, observe=self._on_receipt)
        self._stored_seen = -1
        self.link = RelayLink(self.node, on_ready=self._on_link_ready)

    def create_identity(self, name: str) -> None:
        name = name.strip()
        if not name:
            raise LocalError("Pick a display name.")
        seed = self.io.random(32)
        self.store.save_profile(seed, name[:64])
        self._become(Identity.from_seed(seed), name[:64])
        self.ui.modal = None
        self.io.persist()

    # --- the network -----------------------------------------------------------------------

    @property
    def me(self) -> bytes:
        return self.identity.public_key if self.identity else b""

    def _on_link_ready(self) -> None:
        """A relay session is up: catch up everywhere and re-send what storage has not got."""
        node = self.node
        assert node is not None
        now = self.io.now_ms()
        self.connection = "online"
        self.retry_at = None
        for server, community in list(node.communities.items()):
            progress = node.progress[server]
            node.request_sync(server)
            self.catching[server] = CatchUp(now, now, progress.events, progress.rounds)
            unacked = self.ui.unacked.get(server)
            if community.ready and unacked:
                mine = [ev for ev in community.managed.order if ev.id in unacked]
                if mine:
                    node.publish(server, mine)
        self.render()

    def link_closed(self, retry_at: int | None) -> None:
        if self.link is not None:
            self.link.closed()
        self.connection = "offline"
        self.retry_at = retry_at
        self.catching.clear()
        self.render()

    def link_connecting(self) -> None:
        self.connection = "connecting"
        self.render()

    def _on_receipt(self, server: bytes, receipt: Receipt) -> None:
        """Persist what arrived, note sync progress, finish joins waiting for history."""
        changed = receipt.inserted + receipt.moved
        if changed:
            self._arrived_at[server] = self.io.now_ms()
            community = self.node.communities[server]  # type: ignore[union-attr]
            depth = community.dag.depth
            self.store.append_rows(
                server, [(ev.id, depth[ev.id], ev.signable, ev.sig) for ev in changed]
            )
            self.io.persist_later()
        catch = self.catching.get(server)
        if catch is not None:
            catch.last_progress = self.io.now_ms()
        link = self.ui.joining.get(server)
        if link is not None:
            self._try_join(server, link)

    def _try_join(self, server: bytes, text: str) -> None:
        node = self.node
        assert node is not None
        community = node.communities.get(server)
        if community is None or not community.ready:
            return
        parsed = InviteLink.parse(text)
        if self.me in community.state.members:
            self.ui.joining.pop(server, None)
            self._dirty_ui = True
            return
        if parsed.invite not in community.dag:
            return
        del self.ui.joining[server]
        self._dirty_ui = True
        try:
            self._publish_own(server, node.join(parsed, self.io.now_ms()))
        except NotPermitted as exc:
            self.toast(f"Could not join: {_reason_text(exc.reason)}")
            return
        self._set_profile(server)
        self.key_work(server)
        self.ui.community = server
        self._fix_selection()

    def tick(self) -> None:
        """About once a second: expire buffers, notice acknowledgements and finished syncs."""
        node = self.node
        if node is None:
            return
        now = self.io.now_ms()
        node.tick(now)
        self.key_work()
        self.notice_acks()
        for server, catch in list(self.catching.items()):
            progress = node.progress.get(server)
            if progress is None:
                del self.catching[server]
                continue
            if progress.events != catch.events:
                catch.events = progress.events
                catch.last_progress = now
            done = progress.rounds > catch.rounds
            if done or now - catch.last_progress > CATCH_UP_QUIET_MS:
                del self.catching[server]
        self.ui.toasts = [(t, s) for t, s in self.ui.toasts if now - t < TOAST_MS]
        if self._dirty_ui:
            self.save_ui()
        self.render()
        self.io.wake()

    def notice_acks(self) -> bool:
        """Forget own events a storage worker has acknowledged (they stop showing as
        pending); True if there were any. The shell calls this after the frames it handles,
        so a message turns from pending to stored as its acknowledgement arrives, one row at
        a time, rather than in a batch on the next tick."""
        node = self.node
        if node is None:
            return False
        stored, changed = node.stored, False
        # ``stored`` only grows, by one entry per newly acknowledged event: unchanged in size,
        # nothing new was acknowledged (the usual case for the frames this runs after).
        if len(stored) == self._stored_seen:
            return False
        self._stored_seen = len(stored)
        for ids in self.ui.unacked.values():
            acked = [i for i in ids if stored.get(i)]
            if acked:
                ids.difference_update(acked)
                changed = True
        if changed:
            self._dirty_ui = True
        return changed

    # --- acting -----------------------------------------------------------------------------

    def handle(self, message: dict[str, Any], *, render: bool = True) -> None:
        """One message from the page. Failures become toasts; nothing escapes to the shell.

        ``render=False``: the shell draws the result itself (``render(acted=True)``) once what
        the action signed has left: a browser only flushes a socket's sends when the worker
        yields, so drawing first would delay the message by the drawing's cost."""
        name = str(message.get("action", ""))
        handler: Callable[[App, dict[str, Any]], None] | None = actions.HANDLERS.get(name)
        try:
            if handler is None:
                raise LocalError(f"unknown action {name!r}")
            handler(self, message)
        except NotPermitted as exc:
            self.toast(f"Not allowed: {_reason_text(exc.reason)}")
        except (LocalError, ValueError) as exc:
            self.toast(str(exc))
        except WillowError as exc:
            self.toast(f"That did not work: {exc}")
        self.io.wake()  # what the action signed goes out before anything is drawn
        if render:
            self.save_ui()
            self.render(acted=True)

    def author(self, server: bytes, payload: Any) -> Event:
        """Sign, apply, store and queue one event of ours."""
        node = self.node
        if node is None:
            raise LocalError("Create your identity first.")
        ev = node.author(server, payload, self.io.now_ms())
        self._publish_own(server, ev)
        return ev

    def _publish_own(self, server: bytes, ev: Event) -> None:
        community = self.node.communities[server]  # type: ignore[union-attr]
        self.store.append_rows(server, [(ev.id, community.dag.depth[ev.id], ev.signable, ev.sig)])
        unacked = self.ui.unacked.setdefault(server, set())
        unacked.add(ev.id)
        if len(unacked) > MAX_UNACKED:  # keep the newest three quarters (amortised)
            depth = community.dag.depth
            oldest = sorted(unacked, key=lambda i: depth.get(i, 0))
            unacked.difference_update(oldest[: len(unacked) - MAX_UNACKED * 3 // 4])
        self._dirty_ui = True
        self.io.persist()

    # --- sealed channels -----------------------------------------------------------------

    def key_work(self, server: bytes | None = None) -> None:
        """Publish our key, rotate and share channel keys wherever the keyring says it is due."""
        node = self.node
        if node is None:
            return
        servers = [server] if server is not None else list(node.communities)
        for sid in servers:
            community = node.communities.get(sid)
            if community is None or not community.ready or self.me not in community.state.members:
                continue
            events = community.key_work(self.io.now_ms(), self.io.random)
            if events:
                node.publish(sid, events)
                for ev in events:
                    self._publish_own(sid, ev)

    def seal(self, server: bytes, channel: bytes, text: str, purpose: str) -> Any:
        """Seal ``text`` for a sealed channel (publishing any key events that had to come first)."""
        node = self.node
        assert node is not None
        community = node.communities[server]
        events, sealed = community.seal(channel, text, purpose, self.io.now_ms(), self.io.random)
        if events:
            node.publish(server, events)
            for ev in events:
                self._publish_own(server, ev)
        return sealed

    def undecryptable(self) -> dict[str, int]:
        """Sealed messages this person cannot read right now, counted by reason."""
        counts: dict[str, int] = {}
        node = self.node
        if node is None:
            return counts
        for community in node.communities.values():
            if not community.ready:
                continue
            state = community.state
            for message in state.messages.values():
                if message.sealed is None or message.deleted:
                    continue
                opened = community.keyring.open_message(state, message)
                if opened.reason is not None:
                    counts[opened.reason.name] = counts.get(opened.reason.name, 0) + 1
        return counts

    def _set_profile(self, server: bytes) -> None:
        from willow_core.kinds import SetProfile

        state = self.node.communities[server].state  # type: ignore[union-attr]
        profile = state.profiles.get(self.me)
        if profile is None or profile.display_name != self.display_name:
            self.author(server, SetProfile(self.display_name))

    def create_community(self, name: str) -> bytes:
        from willow_core.kinds import CreateSealedChannel, GrantPermission, HistoryVisibility
        from willow_core.permissions import Permission

        node = self.node
        if node is None:
            raise LocalError("Create your identity first.")
        name = name.strip()
        if not name:
            raise LocalError("Give the community a name.")
        community = node.create(name, self.io.now_ms())
        server = community.server_id
        genesis = community.dag.events[server]
        self._publish_own(server, genesis)
        self._set_profile(server)
        self.key_work(server)  # our X25519 key, before the first sealed channel
        self.author(server, CreateSealedChannel("general", "Say hello", HistoryVisibility.FULL))
        for key in self.service_keys():
            self.author(server, GrantPermission(key, Permission.SYNC_PROVIDER))
            node.ask_to_serve(server, key)
        self.ui.community = server
        self._fix_selection()
        return server

    def join(self, text: str) -> bytes:
        node = self.node
        if node is None:
            raise LocalError("Create your identity first.")
        link = InviteLink.parse(text)
        server = link.server
        self.ui.joining[server] = link.encode()
        self._dirty_ui = True
        community = node.open(server)
        self.ui.community = server
        if community.ready:
            self._try_join(server, self.ui.joining[server])
        else:
            node.request_sync(server)
            now = self.io.now_ms()
            self.catching[server] = CatchUp(now, now, 0, node.progress[server].rounds)
        self._fix_selection()
        return server

    def services(self) -> list[tuple[str, bytes]]:
        """``(role, key)`` of the workers the relay's operator runs (capability document)."""
        out = []
        for service in self.config.get("services", []) or []:
            try:
                key = bytes.fromhex(str(service.get("key", "")))
                role = str(service.get("role", "service"))[:32]
            except (ValueError, AttributeError):
                continue
            if len(key) == 32:
                out.append((role, key))
        return out

    def service_keys(self) -> list[bytes]:
        return [key for _, key in self.services()]

    # --- views ------------------------------------------------------------------------------

    @property
    def community(self) -> Community | None:
        if self.node is None or self.ui.community is None:
            return None
        return self.node.communities.get(self.ui.community)

    @property
    def state(self) -> ServerState | None:
        community = self.community
        return community.view if community is not None else None

    @property
    def channel_id(self) -> bytes | None:
        if self.ui.community is None:
            return None
        return self.ui.channel.get(self.ui.community)

    def _fix_selection(self) -> None:
        """Point at a community and channel that exist (after loads, kicks and deletes)."""
        node = self.node
        if node is None:
            return
        if self.ui.community not in node.communities:
            self.ui.community = next(iter(node.communities), None)
        state = self.state
        if state is None or self.ui.community is None:
            return
        channel = self.ui.channel.get(self.ui.community)
        if channel not in state.channels:
            first = next(iter(state.channels), None)
            if first is not None:
                self.ui.channel[self.ui.community] = first
            else:
                self.ui.channel.pop(self.ui.community, None)
        if self.ui.thread is not None and self.ui.thread not in state.threads:
            self.ui.thread = None

    def pending_ids(self) -> set[bytes]:
        """Own events of the open community not yet acknowledged by a storage worker.

        Shown greyed only where the relay advertises storage (else nothing would ever ack).
        """
        if self.ui.community is None or not self.service_keys():
            return set()
        return self.ui.unacked.get(self.ui.community, set())

    def relay_hints(self) -> list[str]:
        url = self.config.get("relay")
        return [str(url)] if url else []

    def invite_url(self, link: str) -> str:
        """A web address that opens this app and joins: the link rides in the fragment, which
        browsers never send to the server."""
        origin = str(self.config.get("origin") or "")
        return f"{origin}/#{link}"

    def toast(self, text: str) -> None:
        self.ui.toasts.append((self.io.now_ms(), text))
        del self.ui.toasts[:-MAX_TOASTS]

    def save_ui(self) -> None:
        self.store.save_ui(self.ui.to_obj())
        self._dirty_ui = False
        self.io.persist()

    def render(self, *, acted: bool = False) -> None:
        """Post every region whose HTML changed since the last render (``acted``: this render
        shows what the person just did, so nothing is held back; see LIST_JUMP)."""
        if not self.started:
            return
        self._fix_selection()
        self.mark_read()
        hold = not acted and self._hold_list()
        regions, appends, composer = render_regions(self, with_list=not hold)
        changed = [[k, v] for k, v in regions.items() if self._last.get(k) != v]
        for key, value in changed:
            self._last[key] = value
        appended: list[list[str]] = []
        patched: list[list[str]] = []
        trims: list[list[str | int]] = []
        for key, lst in appends.items():
            last = self._last.get(key)
            # identity first: while messages arrive, ``shown`` is the object posted last
            if last is lst.whole or (last is not lst.shown and last == lst.whole):
                continue
            if (lst.new or lst.patches or lst.trim) and (last is lst.shown or last == lst.shown):
                if lst.trim:
                    trims.append([key, lst.trim])
                patched += [[key, row, html] for row, html in lst.patches]
                if lst.new:
                    appended.append([key, lst.new])
            else:
                changed.append([key, lst.whole])
            self._last[key] = lst.whole
        if not hold:
            self._list_shown = self._list_now()
        if composer != self._last_composer:
            self._last_composer = composer
            self.io.post({"type": "composer", "state": composer})
        if changed or appended or patched or trims:
            self._render_seq += 1
            self.io.post(
                {
                    "type": "render",
                    "regions": changed,
                    "trims": trims,
                    "patches": patched,
                    "appends": appended,
                    "seq": self._render_seq,
                }
            )

    def resync(self, region: str) -> None:
        """The page could not apply a patch to ``region``: post it whole next time."""
        self._last.pop(region, None)
        self.render()

    def _list_now(self) -> tuple[tuple[bytes, bytes, int], int] | None:
        state, server, channel = self.state, self.ui.community, self.channel_id
        if state is None or server is None or channel is None or channel not in state.channels:
            return None
        return (server, channel, self.ui.window), len(state.channels[channel].messages)

    def _hold_list(self) -> bool:
        """Whether the page keeps its message list this time: it would jump by more than
        LIST_JUMP messages while the open community catches up or its events keep arriving."""
        server = self.ui.community
        if server is None:
            return False
        quiet = self.io.now_ms() - self._arrived_at.get(server, 0) >= LIST_QUIET_MS
        if quiet and server not in self.catching:
            return False
        now, shown = self._list_now(), self._list_shown
        if now is None or shown is None or now[0] != shown[0]:
            return False
        return now[1] - shown[1] > LIST_JUMP

    def mark_read(self) -> None:
        """The open channel (and thread) are read up to their newest message."""
        state = self.state
        channel = self.channel_id
        if state is None or channel is None or channel not in state.channels:
            return
        count = len(state.channels[channel].messages)
        if self.ui.read.get(channel) != count:
            self.ui.read[channel] = count
            self._dirty_ui = True
        thread = self.ui.thread
        if thread is not None and thread in state.threads:
            count = len(state.threads[thread].messages)
            if self.ui.read.get(thread) != count:
                self.ui.read[thread] = count
                self._dirty_ui = True


def _reason_text(reason: object) -> str:
    if isinstance(reason, RejectReason):
        return reason.name.lower().replace("_", " ")
    try:
        return RejectReason(int(reason)).name.lower().replace("_", " ")  # type: ignore[call-overload]
    except (ValueError, TypeError):
        return str(reason)
