"""History pages (``HISTORY_REQUEST`` / ``HISTORY_PAGE`` envelope bodies), sans I/O.

A peer scrolling back asks a storage worker's inbox for stored events older than a cursor; the
worker answers in the requester's inbox with the events newest first, whether older ones remain,
and the cursor to continue from (the ``(depth, id)`` of the oldest event in the page: only the
worker knows depths for events the requester lacks). Events are self-authenticating, so the
requester checks each signature itself (``willow_core.event.verify_event``) before showing it;
a page is for display and for filling gaps, the DAG still takes events only with their parents.

Bodies (canonical CBOR arrays):

* request: ``[request_id, server, before_depth | null, before_id | null, limit]``
* page: ``[request_id, server, [event wire...], more, [depth, id] | null]``
"""

from __future__ import annotations

from typing import NamedTuple

from willow_core.encoding import decode, encode
from willow_core.errors import DecodeError
from willow_core.sync import is_id, is_uint
from willow_core.wire import MAX_BODY_BYTES

__all__ = ["HistoryRequest", "HistoryPage", "Cursor"]

Cursor = tuple[int, bytes]
"""``(depth, id)``: a page holds events strictly older than this."""


class HistoryRequest(NamedTuple):
    request_id: int
    server: bytes
    before_depth: int | None
    before_id: bytes | None
    limit: int

    def encode(self) -> bytes:
        return encode([self.request_id, self.server, self.before_depth, self.before_id, self.limit])

    @classmethod
    def decode(cls, body: bytes) -> HistoryRequest:
        v = decode(body, max_bytes=MAX_BODY_BYTES)
        if (
            type(v) is not list
            or len(v) != 5
            or not is_uint(v[0])
            or not is_id(v[1])
            or not (v[2] is None or is_uint(v[2]))
            or not (v[3] is None or is_id(v[3]))
            or not is_uint(v[4])
        ):
            raise DecodeError("malformed history request")
        if v[2] is None and v[3] is not None:
            raise DecodeError("a history cursor id needs its depth")
        return cls(v[0], v[1], v[2], v[3], v[4])


class HistoryPage(NamedTuple):
    request_id: int
    server: bytes
    #: event wires, newest first
    events: tuple[bytes, ...]
    more: bool
    #: where the next page starts (None when the page is empty)
    next: Cursor | None

    def encode(self) -> bytes:
        cursor = None if self.next is None else [self.next[0], self.next[1]]
        return encode([self.request_id, self.server, list(self.events), self.more, cursor])

    @classmethod
    def decode(cls, body: bytes) -> HistoryPage:
        v = decode(body, max_bytes=MAX_BODY_BYTES)
        if (
            type(v) is not list
            or len(v) != 5
            or not is_uint(v[0])
            or not is_id(v[1])
            or type(v[2]) is not list
            or not all(type(w) is bytes for w in v[2])
            or type(v[3]) is not bool
        ):
            raise DecodeError("malformed history page")
        cursor = v[4]
        if cursor is not None and (
            type(cursor) is not list
            or len(cursor) != 2
            or not is_uint(cursor[0])
            or not is_id(cursor[1])
        ):
            raise DecodeError("malformed history cursor")
        next_cursor = None if cursor is None else (cursor[0], cursor[1])
        return cls(v[0], v[1], tuple(v[2]), v[3], next_cursor)
