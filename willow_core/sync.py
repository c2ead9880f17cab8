"""Sync (D9), sans I/O: heads pages in, byte-budgeted windows of missing events out.

Theory of operation. A requester describes what it has as *heads* (author -> seq and id of
its latest event), paged by author id so no request carries more than ``MAX_HEADS`` entries:
page *k* covers the author-id range ``(lo, hi]`` (``None`` = open end) and lists every author
the requester knows in that range. The responder needs no session state: for each author *it*
knows in the range it sends

* everything, if the requester did not list the author (every branch, if the author forked);
* the events after the requester's seq, if it knows the requester's head id;
* nothing, if the head id is unknown and newer than anything it has (the requester is ahead);
* the author's whole history, if the head id is unknown but not newer (the author forked, so
  the requester must learn the other branch; forks are rare and bounded by rate limits).

Events are sent in the deterministic order (parents first), packed into batches of at most
``BATCH_BYTES``, then a ``SyncDone`` marker. **Flow control:** one answer carries at most
``WINDOW_BYTES``; if events remain, its marker names the order key ``(depth, id)`` of the last
event sent (the *cursor*) instead of saying "end of history", and the requester, once that
window is in, asks again with ``after`` = the cursor (and its new heads): the responder skips
every event whose key is not above it. The cursor, not the heads, is what guarantees progress
(an author that forked, or events waiting for another page's parents, would otherwise be sent
again and again); the heads keep a mostly-synced requester from being sent what it holds. A
requester keeps one window in flight per exchange (``SyncRound``), so a reader that is slow to
verify never has more than a window queued for it at the relay.

The requester feeds batches to its community like any other events; anything arriving before
its parents waits in the pending buffer. Sync is symmetric: each side requests from the other,
so both converge.

Snapshots (for a peer with nothing) carry a materialized state and its hash in chunks; the
receiver shows it *unverified* and verifies it by replaying the full history in the background
(``SnapshotAssembler`` + comparing ``state_hash`` after replay).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import NamedTuple

from .dag import EventDag
from .encoding import decode, encode
from .errors import DecodeError
from .event import Event
from .managed import ManagedDag
from .order import OrderKey
from .state import ServerState, state_from_obj

__all__ = [
    "MAX_HEADS",
    "BATCH_BYTES",
    "WINDOW_BYTES",
    "SNAPSHOT_CHUNK_BYTES",
    "MAX_SNAPSHOT_BYTES",
    "Head",
    "SyncRequest",
    "SyncBatch",
    "SyncDone",
    "SnapshotRequest",
    "SnapshotChunk",
    "SyncRound",
    "plan_requests",
    "page_request",
    "answer",
    "missing_events",
    "requester_has_more",
    "snapshot_bytes",
    "snapshot_chunks",
    "heads_of",
    "is_id",
    "is_uint",
    "is_opt_id",
    "history_up_to",
    "SnapshotAssembler",
]

#: Authors per request (SEC: a bigger heads summary is a cheap way to make a peer work).
MAX_HEADS = 256
#: Event bytes per batch: one batch is what a reader verifies and applies in one go (~160
#: events; tens of milliseconds in a browser), so a worker that yields between batches stays
#: responsive. A window is several batches.
BATCH_BYTES = 48 * 1024
#: Event bytes in one answer (eight full batches) before the responder stops and names a cursor.
#: A requester has one window in flight per exchange and a reader busy verifying leaves it in
#: the relay's send buffer for that connection (``relay.limits.SEND_BUFFER_BYTES`` = 1 MiB): two
#: serving nodes answering one request on the community topic (768 KiB) plus live traffic still
#: fit, so a catch-up never gets the reader dropped as a slow consumer. Larger windows save few
#: round trips (a window is ~1,000 events; the requester spends far longer verifying them).
WINDOW_BYTES = 384 * 1024
SNAPSHOT_CHUNK_BYTES = 192 * 1024
#: A snapshot larger than this is refused (about a million messages).
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024
_MAX_BODY = 256 * 1024
#: The order scan (``answer`` with ``order``) is used when at least this share of the events
#: after the cursor is missing; sparser answers sort the few missing events instead.
_SCAN_DENSITY = 4


class Head(NamedTuple):
    author: bytes
    seq: int
    id: bytes


def is_id(value: object) -> bool:
    return type(value) is bytes and len(value) == 32


def is_uint(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**63


def is_opt_id(value: object) -> bool:
    return value is None or is_id(value)


def _key_obj(key: OrderKey | None) -> list[object] | None:
    return None if key is None else [key[0], key[1]]


def _decode_key(value: object, what: str) -> OrderKey | None:
    """``null`` or ``[uint depth, bytes(32) id]``: an order key on the wire."""
    if value is None:
        return None
    if type(value) is not list or len(value) != 2 or not is_uint(value[0]) or not is_id(value[1]):
        raise DecodeError(f"malformed {what}")
    return (value[0], value[1])


class SyncRequest(NamedTuple):
    request_id: int
    server: bytes
    heads: tuple[Head, ...]
    lo: bytes | None
    hi: bytes | None
    #: continue after this order key (a previous answer's cursor); None: from the start
    after: OrderKey | None = None

    def encode(self) -> bytes:
        heads = [[h.author, h.seq, h.id] for h in self.heads]
        return encode([self.request_id, self.server, heads, self.lo, self.hi, _key_obj(self.after)])

    @classmethod
    def decode(cls, body: bytes) -> SyncRequest:
        v = decode(body, max_bytes=_MAX_BODY)
        if (
            type(v) is not list
            or len(v) != 6
            or not is_uint(v[0])
            or not is_id(v[1])
            or type(v[2]) is not list
            or not is_opt_id(v[3])
            or not is_opt_id(v[4])
        ):
            raise DecodeError("malformed sync request")
        after = _decode_key(v[5], "sync request cursor")
        if len(v[2]) > MAX_HEADS:
            raise DecodeError(f"heads summary over {MAX_HEADS} authors")
        heads = []
        for h in v[2]:
            if type(h) is not list or len(h) != 3 or not is_id(h[0]) or not is_uint(h[1]):
                raise DecodeError("malformed head")
            if not is_id(h[2]):
                raise DecodeError("malformed head")
            heads.append(Head(h[0], h[1], h[2]))
        authors = [h.author for h in heads]
        if authors != sorted(set(authors)):
            raise DecodeError("heads must be in ascending author order, once each")
        lo, hi = v[3], v[4]
        if lo is not None and hi is not None and hi <= lo:
            raise DecodeError("empty author range")
        if any((lo is not None and a <= lo) or (hi is not None and a > hi) for a in authors):
            raise DecodeError("a head lies outside the request's author range")
        return cls(v[0], v[1], tuple(heads), lo, hi, after)


class SyncBatch(NamedTuple):
    request_id: int
    server: bytes
    events: tuple[bytes, ...]
    more: bool

    def encode(self) -> bytes:
        return encode([self.request_id, self.server, list(self.events), self.more])

    @classmethod
    def decode(cls, body: bytes) -> SyncBatch:
        v = decode(body, max_bytes=_MAX_BODY)
        if (
            type(v) is not list
            or len(v) != 4
            or not is_uint(v[0])
            or not is_id(v[1])
            or type(v[2]) is not list
            or not all(type(w) is bytes for w in v[2])
            or type(v[3]) is not bool
        ):
            raise DecodeError("malformed sync batch")
        return cls(v[0], v[1], tuple(v[2]), v[3])


class SyncDone(NamedTuple):
    """The marker ending one answer: ``sent`` events in its batches; ``cursor`` None means end
    of history, otherwise the answer stopped at its window and the requester continues after
    ``cursor`` (the order key of the last event sent)."""

    request_id: int
    server: bytes
    sent: int
    cursor: OrderKey | None = None

    def encode(self) -> bytes:
        return encode([self.request_id, self.server, self.sent, _key_obj(self.cursor)])

    @classmethod
    def decode(cls, body: bytes) -> SyncDone:
        v = decode(body, max_bytes=_MAX_BODY)
        if type(v) is not list or len(v) != 4 or not is_uint(v[0]) or not is_id(v[1]):
            raise DecodeError("malformed sync done")
        if not is_uint(v[2]):
            raise DecodeError("malformed sync done")
        cursor = _decode_key(v[3], "sync done cursor")
        if cursor is not None and v[2] == 0:
            raise DecodeError("a cursor without events sent")
        return cls(v[0], v[1], v[2], cursor)


class SnapshotRequest(NamedTuple):
    request_id: int
    server: bytes

    def encode(self) -> bytes:
        return encode([self.request_id, self.server])

    @classmethod
    def decode(cls, body: bytes) -> SnapshotRequest:
        v = decode(body, max_bytes=_MAX_BODY)
        if type(v) is not list or len(v) != 2 or not is_uint(v[0]) or not is_id(v[1]):
            raise DecodeError("malformed snapshot request")
        return cls(v[0], v[1])


class SnapshotChunk(NamedTuple):
    request_id: int
    server: bytes
    part: int
    total: int
    data: bytes

    def encode(self) -> bytes:
        return encode([self.request_id, self.server, self.part, self.total, self.data])

    @classmethod
    def decode(cls, body: bytes) -> SnapshotChunk:
        v = decode(body, max_bytes=_MAX_BODY)
        if (
            type(v) is not list
            or len(v) != 5
            or not is_uint(v[0])
            or not is_id(v[1])
            or not is_uint(v[2])
            or not is_uint(v[3])
            or type(v[4]) is not bytes
            or not v[2] < v[3] <= MAX_SNAPSHOT_BYTES // SNAPSHOT_CHUNK_BYTES + 1
        ):
            raise DecodeError("malformed snapshot chunk")
        return cls(v[0], v[1], v[2], v[3], v[4])


# --- requester ------------------------------------------------------------------------------


def _heads(dag: EventDag) -> list[Head]:
    heads = []
    for author in sorted(dag.chains):
        head = dag.head(author)
        if head is not None:
            heads.append(Head(author, head.seq, head.id))
    return heads


def plan_requests(dag: EventDag, first_request_id: int) -> list[SyncRequest]:
    """Requests that together describe everything ``dag`` holds (one per page of heads)."""
    heads = _heads(dag)
    pages = [heads[i : i + MAX_HEADS] for i in range(0, len(heads), MAX_HEADS)] or [[]]
    requests = []
    lo: bytes | None = None
    for index, page in enumerate(pages):
        hi = None if index == len(pages) - 1 else page[-1].author
        requests.append(SyncRequest(first_request_id + index, dag.server_id, tuple(page), lo, hi))
        lo = hi
    return requests


def _in_range(author: bytes, lo: bytes | None, hi: bytes | None) -> bool:
    return (lo is None or author > lo) and (hi is None or author <= hi)


def page_request(
    dag: EventDag,
    request_id: int,
    lo: bytes | None,
    hi: bytes | None,
    after: OrderKey | None = None,
) -> tuple[SyncRequest, bytes | None]:
    """The request for the page ``(lo, hi]`` continuing after ``after``, listing every head
    ``dag`` holds in it. If that is more than ``MAX_HEADS``, the page is cut after the
    ``MAX_HEADS``-th author: the request covers ``(lo, cut]`` and ``cut`` is returned, the rest
    ``(cut, hi]`` still to be asked (with the same ``after``: the answer's order restricted to
    fewer authors is a subsequence of the same order). Otherwise the second value is None."""
    heads = [h for h in _heads(dag) if _in_range(h.author, lo, hi)]  # ascending by author
    cut: bytes | None = None
    if len(heads) > MAX_HEADS:
        heads = heads[:MAX_HEADS]
        cut = heads[-1].author
    request = SyncRequest(
        request_id, dag.server_id, tuple(heads), lo, hi if cut is None else cut, after
    )
    return request, cut


class SyncRound:
    """The requester's side of one exchange with one responder (or the community topic).

    The author space is walked page by page, left to right, one request in flight at a time:
    ``segments`` holds the pages still to finish as ``(lo, hi, after)``. A page is asked with
    ``page_request``; an answer that stopped at its window moves the page's ``after`` to the
    answer's cursor and the page is asked again (with the requester's new heads); an answer
    that reached the end finishes the page. The round is done when no page is left.

    Pure bookkeeping: the node decides whom to send to, whom to believe, and when to give up.
    """

    __slots__ = ("server", "peer", "chosen", "segments", "request_id", "responder", "quiet")

    def __init__(self, server: bytes, peer: bytes | None, *, chosen: bool = False) -> None:
        self.server = server
        #: whom the requests go to (None: the community topic)
        self.peer = peer
        #: the node picked ``peer`` itself (a silent one is replaced by the topic)
        self.chosen = chosen
        self.segments: list[tuple[bytes | None, bytes | None, OrderKey | None]] = [
            (None, None, None)
        ]
        #: the request in flight (its answer continues the round)
        self.request_id: int | None = None
        #: the node whose answers this round follows (on the topic: the first marker's sender)
        self.responder: bytes | None = peer
        #: when the round was last heard from (ms); None until the next tick stamps it
        self.quiet: int | None = None

    @property
    def done(self) -> bool:
        return not self.segments

    def next_request(self, dag: EventDag, request_id: int) -> SyncRequest:
        """The request for the first unfinished page (cutting it if it has too many heads)."""
        lo, hi, after = self.segments[0]
        request, cut = page_request(dag, request_id, lo, hi, after)
        if cut is not None:
            self.segments[0:1] = [(lo, cut, after), (cut, hi, after)]
        self.request_id = request_id
        return request

    def answered(self, cursor: OrderKey | None) -> None:
        """The first page's current request was answered up to ``cursor`` (None: its end)."""
        lo, hi, _ = self.segments[0]
        if cursor is None:
            del self.segments[0]
        else:
            self.segments[0] = (lo, hi, cursor)
        self.request_id = None


# --- responder ------------------------------------------------------------------------------


def requester_has_more(dag: EventDag, request: SyncRequest) -> bool:
    """Whether ``request`` shows heads we lack (an author we do not know, or an unknown head):
    then the responder should ask the requester in turn, so sync is push-pull, not pull-only."""
    events = dag.events
    return any(h.id not in events for h in request.heads)


def _plan(
    dag: EventDag, request: SyncRequest
) -> tuple[dict[bytes, int], dict[bytes, bytes | None], int]:
    """Per author in range, what the requester lacks (section 13.3): ``starts[author]`` = the
    first seq to send of a chain, ``forked[author]`` = the one id not to send of a forked
    author (or None); and how many chain events that makes."""
    theirs = {h.author: h for h in request.heads}
    lo, hi = request.lo, request.hi
    events = dag.events
    starts: dict[bytes, int] = {}
    forked: dict[bytes, bytes | None] = {}
    count = 0
    for author, chain in dag.chains.items():
        if (lo is not None and author <= lo) or (hi is not None and author > hi):
            continue
        head = theirs.get(author)
        if author in dag.fork_seq:
            # Every branch: the requester must hold both to judge the fork as we do.
            forked[author] = None if head is None else head.id
            continue
        if head is None:
            start = 1
        elif head.id in events:
            start = head.seq + 1
        elif head.seq > len(chain):
            continue  # they are ahead of us on this author
        else:
            # Their head is unknown yet not newer than ours: they hold a branch we lack, so
            # the author forked; send our whole branch so they can record the fork too.
            start = 1
        if start <= len(chain):
            starts[author] = start
            count += len(chain) - start + 1
    return starts, forked, count


def missing_events(
    dag: EventDag, request: SyncRequest, order: Sequence[Event] | None = None
) -> list[Event]:
    """The events of ``dag`` that the requester lacks after ``request.after``, in the
    deterministic order.

    Args:
        order: ``dag``'s events sorted by ``(depth, id)`` (``ManagedDag.order``), if the caller
            has it: then a dense answer is read off it instead of sorted.
    """
    return list(_missing(dag, request, order))


def _missing(dag: EventDag, request: SyncRequest, order: Sequence[Event] | None) -> Iterable[Event]:
    starts, forked, count = _plan(dag, request)
    depth = dag.depth
    after = request.after
    if order is not None:
        first = (
            0 if after is None else bisect_right(order, after, key=lambda e: (depth[e.id], e.id))
        )
        if (count + len(forked)) * _SCAN_DENSITY >= len(order) - first:
            return _scan(order, first, starts, forked)
    events = dag.events
    out: list[Event] = []
    for author, start in starts.items():
        chain = dag.chains[author]
        out.extend(events[chain[seq]] for seq in range(start, len(chain) + 1))
    for author, head in forked.items():
        out.extend(e for e in events.values() if e.author == author and e.id != head)
    if after is not None:
        out = [e for e in out if (depth[e.id], e.id) > after]
    out.sort(key=lambda ev: (depth[ev.id], ev.id))
    return out


def _scan(
    order: Sequence[Event], first: int, starts: dict[bytes, int], forked: dict[bytes, bytes | None]
) -> Iterable[Event]:
    """The missing events, read off the order from position ``first`` on (lazily: an answer
    stops at its window, so a catch-up costs each event once, not a sort per window)."""
    for i in range(first, len(order)):
        ev = order[i]
        start = starts.get(ev.author)
        if start is not None:
            if ev.seq >= start:
                yield ev
        elif ev.author in forked and ev.id != forked[ev.author]:
            yield ev


def answer(
    dag: EventDag,
    request: SyncRequest,
    *,
    order: Sequence[Event] | None = None,
    window: int = WINDOW_BYTES,
) -> tuple[list[SyncBatch], SyncDone]:
    """Batches (each within ``BATCH_BYTES``, together within ``window``) and the marker.

    Events are counted as their wire length plus 4. An answer holds at least one event if
    anything is missing; it stops before the event that would take it over ``window``, and
    then its marker's cursor is the order key of the last event it holds.
    """
    batches: list[SyncBatch] = []
    current: list[bytes] = []
    size = 0
    total = 0
    sent = 0
    last: Event | None = None
    cursor: OrderKey | None = None
    for ev in _missing(dag, request, order):
        wire = ev.wire
        if last is not None and total + len(wire) > window:
            cursor = (dag.depth[last.id], last.id)
            break
        if current and size + len(wire) > BATCH_BYTES:
            batches.append(SyncBatch(request.request_id, dag.server_id, tuple(current), True))
            current, size = [], 0
        current.append(wire)
        size += len(wire) + 4
        total += len(wire) + 4
        sent += 1
        last = ev
    if current:
        batches.append(SyncBatch(request.request_id, dag.server_id, tuple(current), False))
    return batches, SyncDone(request.request_id, dag.server_id, sent, cursor)


# --- snapshots ------------------------------------------------------------------------------


def snapshot_bytes(managed: ManagedDag) -> bytes:
    """The current state, its hash and the heads it covers, as one canonical blob."""
    state = managed.state
    if state is None:
        raise DecodeError("nothing to snapshot yet")
    heads = [[h.author, h.seq, h.id] for h in _heads(managed.dag)]
    # The state travels as its canonical bytes, so its hash is one SHA-256 on each side.
    state_bytes = encode(state.to_obj())
    return encode(["willow/snapshot/v1", state_bytes, sha256(state_bytes).digest(), heads])


def snapshot_chunks(managed: ManagedDag, request_id: int) -> list[SnapshotChunk]:
    blob = snapshot_bytes(managed)
    parts = [blob[i : i + SNAPSHOT_CHUNK_BYTES] for i in range(0, len(blob), SNAPSHOT_CHUNK_BYTES)]
    return [
        SnapshotChunk(request_id, managed.server_id, i, len(parts), part)
        for i, part in enumerate(parts)
    ]


class SnapshotAssembler:
    """Collects chunks of one snapshot; ``state`` is unverified until history replays to it."""

    __slots__ = ("request_id", "server", "_parts", "_total")

    def __init__(self, request_id: int, server: bytes) -> None:
        self.request_id = request_id
        self.server = server
        self._parts: dict[int, bytes] = {}
        self._total: int | None = None

    def add(self, chunk: SnapshotChunk) -> bool:
        """Take a chunk; returns True once every chunk is in."""
        if chunk.request_id != self.request_id or chunk.server != self.server:
            raise DecodeError("chunk of another snapshot")
        if self._total is None:
            self._total = chunk.total
        elif chunk.total != self._total:
            raise DecodeError("snapshot chunk count changed")
        self._parts[chunk.part] = chunk.data
        if sum(map(len, self._parts.values())) > MAX_SNAPSHOT_BYTES:
            raise DecodeError("snapshot over the size cap")
        return len(self._parts) == self._total

    def result(self) -> tuple[ServerState, bytes, tuple[Head, ...]]:
        """``(state, claimed hash, heads)``; raises if the blob does not hash to its claim."""
        if self._total is None or len(self._parts) != self._total:
            raise DecodeError("snapshot incomplete")
        blob = b"".join(self._parts[i] for i in range(self._total))
        value = decode(blob, max_bytes=MAX_SNAPSHOT_BYTES)
        if (
            type(value) is not list
            or len(value) != 4
            or value[0] != "willow/snapshot/v1"
            or type(value[1]) is not bytes
            or type(value[3]) is not list
        ):
            raise DecodeError("malformed snapshot")
        claimed = value[2]
        if sha256(value[1]).digest() != claimed:
            raise DecodeError("snapshot does not match its own hash")
        # The claim is the hash of these canonical bytes; the state shown is built from them and
        # stays unverified until the history it claims replays to a state with this same hash
        # (``state_hash`` is SHA-256 of exactly such bytes), at which point the replayed state
        # replaces it.
        state = state_from_obj(decode(value[1], max_bytes=MAX_SNAPSHOT_BYTES))
        if state.server_id != self.server:
            raise DecodeError("snapshot of another community")
        try:
            heads = tuple(Head(a, s, i) for a, s, i in value[3])
        except (TypeError, ValueError):
            raise DecodeError("malformed snapshot heads") from None
        return state, claimed, heads


def history_up_to(dag: EventDag, heads: list[bytes]) -> EventDag:
    """A new DAG holding exactly ``heads`` and their ancestors (what a snapshot covered)."""
    keep: set[bytes] = set()
    stack = [h for h in heads if h in dag.events]
    while stack:
        event_id = stack.pop()
        if event_id in keep:
            continue
        keep.add(event_id)
        stack.extend(p for p in dag.events[event_id].parents if p not in keep)
    keep.add(dag.server_id)
    sub = EventDag(dag.server_id)
    nat = dag.nat
    sub.build([dag.events[i] for i in sorted(keep, key=lambda i: (nat[i], i))])
    return sub


def heads_of(events: Iterable[Event]) -> list[Head]:
    """Latest event per author among ``events`` (for tests and diagnostics)."""
    latest: dict[bytes, Event] = {}
    for ev in events:
        known = latest.get(ev.author)
        if known is None or ev.seq > known.seq:
            latest[ev.author] = ev
    return [Head(a, e.seq, e.id) for a, e in sorted(latest.items())]
