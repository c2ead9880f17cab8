"""One member's channel keys in one community: open sealed content (or say exactly why not),
pick the key to send under, and decide what key work is due.

The keyring never changes the replicated state; it reads it. Everything key-related that other
members must learn travels as events (``PublishKey``, ``RotateChannelKey``, ``ShareChannelKey``)
in the same DAG as the messages, so keys sync with the same completeness as messages (D7).

**Readers** of a sealed channel are members who may view it, have published an X25519 key, are
not services (peers granted SyncProvider directly: storage and replay workers must only ever
see ciphertext) and have not equivocated (replay ignores what they author from their fork on).
**An epoch is exposed** when a peer holding a share of it is no longer a reader (kicked,
banned, left, lost view, or equivocated): nothing new is sealed under it. Nor is anything
sealed, in a since-joining channel, under an epoch some reader lacks: such an epoch is never
shared with a newcomer, so the sender starts a fresh one first. **Key work due**
for a reader, in order: publish their own key; start a new epoch when the channel has none that
is unexposed and shared with them, or the newest one is too old or has sealed too much (the
``KeyPolicy``); share the current epoch (and, with full history visibility, every older one
they hold) with readers who lack it.

Several readers notice the same need at once. Each waits ``rank * STAGGER_MS`` after first
noticing (rank: admins first, then by key), and acts only if the need is still there, so
usually one rotation or share happens; when two happen anyway they converge (replay keeps both
epochs, every message names its own, and the newest unexposed epoch is the one sent under).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import CryptoError
from .identity import Identity
from .kinds import (
    HistoryVisibility,
    KeyShare,
    Kind,
    PublishKey,
    RotateChannelKey,
    Sealed,
    ShareChannelKey,
)
from .permissions import Permission, has_channel_permission
from .sealing import (
    KEY_BYTES,
    SALT_BYTES,
    Sealer,
    ShareWriter,
    key_id,
    open_sealed,
    unwrap_key,
)
from .state import ChatMessage, KeyEpoch, ServerState, Thread

__all__ = [
    "Keyring",
    "KeyPolicy",
    "Unreadable",
    "Opened",
    "STAGGER_MS",
    "Entropy",
    "Revision",
    "UNKEYED_KINDS",
]

Entropy = Callable[[int], bytes]
#: Kinds whose replay never changes who reads a channel or which key epochs it has: they only
#: add, change or remove content (messages, reactions, threads, pins, profiles), and no rule
#: about members, permissions, channels or keys reads content. A state that took in only these
#: since the keyring last looked still has the same readers and current epochs.
UNKEYED_KINDS = frozenset(
    {
        Kind.MESSAGE,
        Kind.FILE_MESSAGE,
        Kind.EDIT_MESSAGE,
        Kind.DELETE_MESSAGE,
        Kind.REACTION,
        Kind.REMOVE_REACTION,
        Kind.SET_PROFILE,
        Kind.UPDATE_PROFILE,
        Kind.PIN_MESSAGE,
        Kind.UNPIN_MESSAGE,
        Kind.CREATE_THREAD,
        Kind.SEALED_MESSAGE,
        Kind.SEALED_EDIT,
        Kind.CREATE_SEALED_THREAD,
        Kind.SEALED_FILE_MESSAGE,
    }
)
#: What a state has taken in so far (``None``: unknown, so nothing derived from it is kept).
Revision = Callable[[ServerState], Hashable | None]
#: Delay per rank before a reader does key work others may already be doing.
STAGGER_MS = 3_000
#: Opened sealed items remembered (rendering asks again on every redraw); then forgotten.
MAX_OPENED = 50_000
#: Sealers kept (one per channel, epoch and purpose this member sent under); then forgotten.
MAX_SEALERS = 256


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """When a channel's epoch is old enough to replace even with no membership change."""

    max_age_ms: int = 7 * 86_400_000
    max_messages: int = 1_000


@dataclass(slots=True)
class _Derived:
    """What the keyring derived from one revision of one state. Sending reads it per message;
    rebuilding it scans every member (and their permissions), so it is kept until the revision
    moves (the state took in something that may change readers or epochs)."""

    state: ServerState | None = None
    revision: Hashable | None = None
    #: channel -> its readers, sorted by key, and the same as a set
    readers: dict[bytes, tuple[tuple[bytes, ...], frozenset[bytes]]] = field(default_factory=dict)
    #: channel -> what ``current`` answered
    current: dict[bytes, tuple[bytes, bytes] | None] = field(default_factory=dict)
    #: (channel, purpose) -> the sealer for the current epoch (``seal_text``, per message)
    sealers: dict[tuple[bytes, str], Sealer] = field(default_factory=dict)


class Unreadable(Enum):
    """Why a sealed item is not shown as text. Every value is a sentence for people."""

    WAITING_FOR_KEY = "Waiting for the key: no member has shared this epoch with you yet"
    KEY_LOST = "Its key was held only by members who can no longer share it"
    NOT_A_READER = "Sent while you could not read this channel: it was not shared with you"
    CORRUPT = "Cannot be decrypted: the message or its key share is corrupt or forged"
    NO_OWN_KEY = "Waiting for your encryption key to be published to the community"

    @property
    def transient(self) -> bool:
        """Whether this may resolve by itself (a key arriving), and so is retried."""
        return self in (Unreadable.WAITING_FOR_KEY, Unreadable.NO_OWN_KEY)


@dataclass(frozen=True, slots=True)
class Opened:
    text: str | None
    reason: Unreadable | None = None


def _unknown(_state: ServerState) -> None:
    return None


class Keyring:
    """Channel keys of one identity in one community."""

    def __init__(
        self,
        identity: Identity,
        server_id: bytes,
        muted: Callable[[], Collection[bytes]] | None = None,
        revision: Revision | None = None,
    ) -> None:
        self.identity = identity
        self.server_id = server_id
        #: peers whose events no longer take effect because they equivocated (replay ignores
        #: what they author from their fork on); ``Community`` passes its DAG's forked authors
        self._muted: Callable[[], Collection[bytes]] = muted or tuple
        #: how far a state has got as far as readers and epochs go; ``Community`` passes one
        #: for its own state (``Community._revision``). Without it nothing is memoized.
        self._revision: Revision = revision or _unknown
        self._derived = _Derived()
        #: (channel, key id) -> the epoch key, once unwrapped
        self._keys: dict[tuple[bytes, bytes], bytes] = {}
        #: (channel, key id) -> why unwrapping failed for good (a corrupt share)
        self._bad: set[tuple[bytes, bytes]] = set()
        #: need -> when this reader first noticed it
        self._noticed: dict[tuple[Any, ...], int] = {}
        #: (message id, sealed box) -> opened
        self._opened: dict[tuple[bytes, bytes], Opened] = {}
        #: (channel, key id, purpose) -> the sealer this member sends with
        self._sealers: dict[tuple[bytes, bytes, str], Sealer] = {}

    # --- readers and epochs ----------------------------------------------------------------

    @staticmethod
    def is_service(state: ServerState, peer: bytes) -> bool:
        return Permission.SYNC_PROVIDER in state.peer_permissions.get(peer, ())

    def readers(self, state: ServerState, channel: bytes) -> list[bytes]:
        """Members who get keys for ``channel``, sorted by key. A member who equivocated is
        not one: nothing it authors takes effect any more (no share, no rotation, no message),
        so counting it would leave an epoch only it holds looking current for ever, and the
        channel unusable for everyone else in a full-history channel."""
        return list(self._readers(state, channel)[0])

    def _memo(self, state: ServerState) -> _Derived | None:
        """The memo for ``state`` as it is now, emptied if its revision moved since."""
        revision = self._revision(state)
        if revision is None:
            return None
        derived = self._derived
        if derived.state is not state or derived.revision != revision:
            derived = self._derived = _Derived(state, revision)
        return derived

    def _readers(
        self, state: ServerState, channel: bytes
    ) -> tuple[tuple[bytes, ...], frozenset[bytes]]:
        derived = self._memo(state)
        if derived is not None:
            hit = derived.readers.get(channel)
            if hit is not None:
                return hit
        muted = self._muted()
        ordered = tuple(
            sorted(
                peer
                for peer in state.members
                if peer in state.member_keys
                and peer not in muted
                and not self.is_service(state, peer)
                and has_channel_permission(state, peer, channel, Permission.VIEW_CHANNEL)
            )
        )
        found = (ordered, frozenset(ordered))
        if derived is not None:
            derived.readers[channel] = found
        return found

    def exposed(self, state: ServerState, channel: bytes, epoch: KeyEpoch) -> bool:
        readers = self._readers(state, channel)[1]
        return not readers.issuperset(epoch.shares)

    def key(self, state: ServerState, channel: bytes, kid: bytes) -> bytes | Unreadable:
        """The epoch key ``kid`` of ``channel``, or why this member cannot have it (yet)."""
        known = self._keys.get((channel, kid))
        if known is not None:
            return known
        if (channel, kid) in self._bad:
            return Unreadable.CORRUPT
        me = self.identity.public_key
        epoch = state.channel_keys.get(channel, {}).get(kid)
        if epoch is None:
            return Unreadable.WAITING_FOR_KEY
        share = epoch.shares.get(me)
        if share is None:
            ordered, readers = self._readers(state, channel)
            if me not in readers and me not in state.member_keys:
                return Unreadable.NO_OWN_KEY if me in state.members else Unreadable.NOT_A_READER
            if me not in readers:
                return Unreadable.NOT_A_READER
            channel_state = state.channels.get(channel)
            history = channel_state.history if channel_state else HistoryVisibility.FULL
            if history is HistoryVisibility.SINCE_JOINING:
                return Unreadable.NOT_A_READER
            if not any(peer in epoch.shares for peer in ordered):
                # Everyone who held it was removed or equivocated: nobody can share it again.
                return Unreadable.KEY_LOST
            return Unreadable.WAITING_FOR_KEY
        try:
            value = unwrap_key(
                share,
                server=self.server_id,
                channel=channel,
                kid=kid,
                recipient=me,
                x25519_private=self.identity.x25519_private,
                x25519_public=self.identity.x25519_public,
            )
        except CryptoError:
            self._bad.add((channel, kid))
            return Unreadable.CORRUPT
        self._keys[(channel, kid)] = value
        return value

    def excludes_newcomer(self, state: ServerState, channel: bytes, epoch: KeyEpoch) -> bool:
        """Whether a reader of a since-joining channel lacks ``epoch``. It will never be shared
        with them (only replaced for everyone), so nothing new may be sealed under it: what is
        sent from now on must be readable by everyone who can read the channel now."""
        channel_state = state.channels.get(channel)
        if channel_state is None or channel_state.history is not HistoryVisibility.SINCE_JOINING:
            return False
        shares = epoch.shares
        return any(peer not in shares for peer in self._readers(state, channel)[0])

    def current(self, state: ServerState, channel: bytes) -> tuple[bytes, bytes] | None:
        """``(key id, key)`` to seal new content under: the newest unexposed epoch we hold,
        unless a since-joining newcomer lacks it (then a fresh epoch is due first). Asked
        for every message sent, so the answer is kept until the revision moves."""
        derived = self._memo(state)
        if derived is not None and channel in derived.current:
            return derived.current[channel]
        found = self._current(state, channel)
        if derived is not None:
            derived.current[channel] = found
        return found

    def _current(self, state: ServerState, channel: bytes) -> tuple[bytes, bytes] | None:
        for kid, epoch in reversed(state.channel_keys.get(channel, {}).items()):
            if self.exposed(state, channel, epoch):
                continue
            if self.excludes_newcomer(state, channel, epoch):
                return None
            value = self.key(state, channel, kid)
            if isinstance(value, bytes):
                return kid, value
            return None  # the newest clean epoch is not ours yet: wait for a share
        return None

    # --- opening ---------------------------------------------------------------------------

    def open(
        self,
        state: ServerState,
        channel: bytes,
        author: bytes,
        sealed: Sealed,
        purpose: str,
        cache_key: bytes = b"",
    ) -> Opened:
        memo = (cache_key, sealed.box) if cache_key else None
        if memo is not None:
            hit = self._opened.get(memo)
            if hit is not None:
                return hit
        value = self.key(state, channel, sealed.key)
        if isinstance(value, Unreadable):
            return Opened(None, value)  # not memoized: retried when keys arrive
        try:
            text = open_sealed(
                sealed,
                value,
                purpose=purpose,
                server=self.server_id,
                channel=channel,
                author=author,
            ).decode("utf-8")
            opened = Opened(text)
        except (CryptoError, UnicodeDecodeError):
            opened = Opened(None, Unreadable.CORRUPT)
        if memo is not None:
            if len(self._opened) > MAX_OPENED:
                self._opened.clear()
            self._opened[memo] = opened
        return opened

    def open_message(self, state: ServerState, message: ChatMessage) -> Opened:
        if message.sealed is None:
            return Opened(message.body)
        # A sealed file message carries its content hash in the clear (``file``, metadata empty)
        # and its metadata sealed for the ``file`` purpose.
        if message.edited:
            purpose = "edit"
        elif message.file is not None:
            purpose = "file"
        else:
            purpose = "message"
        return self.open(
            state, message.channel, message.author, message.sealed, purpose, message.id
        )

    def open_thread(self, state: ServerState, thread: Thread) -> Opened:
        if thread.sealed is None:
            return Opened(thread.name)
        return self.open(state, thread.channel, thread.creator, thread.sealed, "thread", thread.id)

    # --- sealing ---------------------------------------------------------------------------

    def seal_text(
        self, state: ServerState, channel: bytes, text: str, purpose: str, entropy: Entropy
    ) -> Sealed | None:
        """Seal ``text`` under the current epoch; None when there is none we hold yet."""
        derived = self._memo(state)
        sealer = None if derived is None else derived.sealers.get((channel, purpose))
        if sealer is None:
            sealer = self._sealer(state, channel, purpose)
            if sealer is None:
                return None
            if derived is not None:
                derived.sealers[(channel, purpose)] = sealer
        return sealer.seal(text.encode(), entropy(SALT_BYTES))

    def _sealer(self, state: ServerState, channel: bytes, purpose: str) -> Sealer | None:
        """The sealer for the current epoch (kept per epoch, so a revision that moved without
        changing the epoch costs no new key schedule)."""
        current = self.current(state, channel)
        if current is None:
            return None
        kid, key = current
        sealer = self._sealers.get((channel, kid, purpose))
        if sealer is None:
            if len(self._sealers) >= MAX_SEALERS:
                self._sealers.clear()
            sealer = self._sealers[(channel, kid, purpose)] = Sealer(
                key,
                purpose=purpose,
                server=self.server_id,
                channel=channel,
                author=self.identity.public_key,
            )
        return sealer

    def rotation(self, state: ServerState, channel: bytes, entropy: Entropy) -> RotateChannelKey:
        """A new epoch for ``channel``, wrapped for every reader (ourselves included)."""
        new_key = entropy(KEY_BYTES)
        kid = key_id(new_key)
        self._keys[(channel, kid)] = new_key
        readers = list(self._readers(state, channel)[0])
        shares = self._shares(state, channel, new_key, readers, entropy)
        return RotateChannelKey(channel, kid, shares)

    def _shares(
        self, state: ServerState, channel: bytes, key: bytes, peers: list[bytes], entropy: Entropy
    ) -> tuple[KeyShare, ...]:
        writer = ShareWriter(key, server=self.server_id, channel=channel)
        wrap, member_keys = writer.wrap, state.member_keys
        shares = []
        for peer in peers:
            try:
                blob = wrap(peer, member_keys[peer], entropy(KEY_BYTES))
            except CryptoError:
                continue  # a small-order key published by a hostile member: no share
            shares.append(KeyShare(peer, blob))
        return tuple(shares)

    # --- key work --------------------------------------------------------------------------

    def _rank(self, state: ServerState, channel: bytes | None) -> int:
        me = self.identity.public_key
        peers = self.readers(state, channel) if channel is not None else sorted(state.members)
        ordered = sorted(peers, key=lambda p: (p not in state.admins, p))
        return ordered.index(me) if me in ordered else len(ordered)

    def _ready(self, need: tuple[Any, ...], rank: int, now_ms: int) -> bool:
        first = self._noticed.setdefault(need, now_ms)
        return now_ms - first >= rank * STAGGER_MS

    def due(
        self, state: ServerState, now_ms: int, entropy: Entropy, policy: KeyPolicy = KeyPolicy()
    ) -> list[Any]:
        """Key events this member should author now (empty when nothing is due)."""
        me = self.identity.public_key
        if me not in state.members or self.is_service(state, me):
            return []
        if state.member_keys.get(me) != self.identity.x25519_public:
            return [PublishKey(self.identity.x25519_public, self.identity.binding)]
        out: list[Any] = []
        needs: set[tuple[Any, ...]] = set()
        for channel_id, channel in state.channels.items():
            if not channel.sealed:
                continue
            readers = self.readers(state, channel_id)
            if me not in readers:
                continue
            rank = self._rank(state, channel_id)
            epochs = state.channel_keys.get(channel_id, {})
            clean = [e for e in epochs.values() if not self.exposed(state, channel_id, e)]
            newest = clean[-1] if clean else None
            rotate_why: object = None
            if newest is None:
                rotate_why = "none"
            elif self._stale(state, channel_id, newest, now_ms, policy):
                rotate_why = ("stale", newest.key)
            elif channel.history is HistoryVisibility.SINCE_JOINING and any(
                p not in newest.shares for p in readers
            ):
                # A newcomer must not read what was sealed before they came: a fresh epoch
                # for everyone rather than a share of this one.
                rotate_why = ("newcomer", newest.key)
            if rotate_why is not None:
                need: tuple[Any, ...] = ("rotate", channel_id, rotate_why)
                needs.add(need)
                if self._ready(need, rank, now_ms):
                    out.append(self.rotation(state, channel_id, entropy))
                continue
            assert newest is not None
            wanted = (
                list(epochs.values()) if channel.history is HistoryVisibility.FULL else [newest]
            )
            for epoch in wanted:
                missing = [p for p in readers if p not in epoch.shares]
                value = self.key(state, channel_id, epoch.key) if missing else None
                if not missing or not isinstance(value, bytes):
                    continue
                need = ("share", channel_id, epoch.key, tuple(missing))
                needs.add(need)
                if self._ready(need, rank, now_ms):
                    shares = self._shares(state, channel_id, value, missing, entropy)
                    if shares:
                        out.append(ShareChannelKey(channel_id, epoch.key, shares))
        for stale in [n for n in self._noticed if n not in needs]:
            del self._noticed[stale]
        return out

    @staticmethod
    def _stale(
        state: ServerState, channel: bytes, epoch: KeyEpoch, now_ms: int, policy: KeyPolicy
    ) -> bool:
        """Old enough, or sealed enough, to replace (bounds what one leaked key exposes)."""
        if policy.max_age_ms > 0 and now_ms - epoch.started > policy.max_age_ms:
            return True
        sent = 0
        for message_id in reversed(state.channels[channel].messages):
            message = state.messages.get(message_id)
            if message is not None and message.sealed is not None:
                if message.sealed.key == epoch.key:
                    sent += 1
                    if sent >= policy.max_messages:
                        return True
                elif sent:
                    break  # older epochs below: nothing more of this one
        return False
