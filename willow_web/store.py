"""The client's local store: identity, each community's events, and view settings.

A plain directory (``/persist`` in the browser, an IDBFS mount that ``env.persist()`` flushes to
IndexedDB; any folder natively). Layout::

    profile.cbor          ["willow/profile/v1", seed, display name]
    ui.cbor               view settings (selected community/channel, read marks, invites made)
    c/<server hex>/NNNNNN rows of events, each a 4-byte length + CBOR [id, depth, signable, sig]

Events go to numbered segments of at most ``SEGMENT_BYTES`` so a flush rewrites only the last
segment (IDBFS stores a file as one record). A row for an id seen before updates that event's
depth (its place moved); loading keeps the last row per id and sorts by (depth, id), which is
what ``ManagedDag.restore`` takes. Everything here was verified before it was written, so
loading re-verifies nothing.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from willow_core.encoding import decode, encode
from willow_core.errors import DecodeError
from willow_core.event import MAX_EVENT_BYTES

__all__ = ["Store", "Row", "SEGMENT_BYTES", "MAX_UI_BYTES"]

Row = tuple[bytes, int, bytes, bytes]
#: One segment's size: small enough that flushing the tail is cheap, large enough that a long
#: history is a few hundred files.
SEGMENT_BYTES = 256 * 1024
#: View settings are tiny; anything larger is corrupt.
MAX_UI_BYTES = 1024 * 1024
_LEN = struct.Struct(">I")
_PROFILE_TAG = "willow/profile/v1"


class Store:
    """Reads and appends the files above. Every write is followed by the shell's flush."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        #: server -> (segment number, bytes in it)
        self._tails: dict[bytes, tuple[int, int]] = {}

    # --- profile ---------------------------------------------------------------------------

    def load_profile(self) -> tuple[bytes, str] | None:
        path = self.root / "profile.cbor"
        if not path.exists():
            return None
        value = decode(path.read_bytes(), max_bytes=4096)
        if (
            type(value) is not list
            or len(value) != 3
            or value[0] != _PROFILE_TAG
            or type(value[1]) is not bytes
            or len(value[1]) != 32
            or type(value[2]) is not str
        ):
            raise DecodeError("profile file is corrupt")
        return value[1], value[2]

    def save_profile(self, seed: bytes, name: str) -> None:
        self._write_atomic(self.root / "profile.cbor", encode([_PROFILE_TAG, seed, name]))

    # --- view settings ---------------------------------------------------------------------

    def load_ui(self) -> dict[str, Any]:
        path = self.root / "ui.cbor"
        if not path.exists():
            return {}
        try:
            value = decode(path.read_bytes(), max_bytes=MAX_UI_BYTES)
        except DecodeError:
            return {}  # view settings are a convenience: start fresh rather than fail
        return value if type(value) is dict else {}

    def save_ui(self, value: dict[str, Any]) -> None:
        self._write_atomic(self.root / "ui.cbor", encode(value))

    # --- events ----------------------------------------------------------------------------

    def communities(self) -> list[bytes]:
        base = self.root / "c"
        if not base.exists():
            return []
        out = []
        for entry in sorted(base.iterdir()):
            try:
                server = bytes.fromhex(entry.name)
            except ValueError:
                continue
            if len(server) == 32:
                out.append(server)
        return out

    def load_rows(self, server: bytes) -> list[Row]:
        """Every stored event of ``server`` in (depth, id) order; a torn last row is skipped."""
        rows: dict[bytes, Row] = {}
        last = (0, 0)
        segments = self._segments(server)
        for number, path in segments:
            data = path.read_bytes()
            pos = 0
            while pos + 4 <= len(data):
                (size,) = _LEN.unpack_from(data, pos)
                if size > 2 * MAX_EVENT_BYTES or pos + 4 + size > len(data):
                    break  # torn write at the end of a segment: the rest never committed
                try:
                    value = decode(data[pos + 4 : pos + 4 + size], max_bytes=2 * MAX_EVENT_BYTES)
                except DecodeError:
                    break
                pos += 4 + size
                if _is_row(value):
                    rows[value[0]] = (value[0], value[1], value[2], value[3])
            if pos < len(data) and (number, path) == segments[-1]:
                # Cut the torn row off, so the next append starts on a row boundary.
                with path.open("r+b") as f:
                    f.truncate(pos)
            last = (number, pos)
        if segments:  # a known tail means the directory exists (append_rows relies on it)
            self._tails[server] = last
        return sorted(rows.values(), key=lambda r: (r[1], r[0]))

    def append_rows(self, server: bytes, rows: Iterable[Row]) -> int:
        """Append rows (new events, or events whose depth changed); returns how many."""
        directory = self.root / "c" / server.hex()
        if server not in self._tails:
            directory.mkdir(parents=True, exist_ok=True)
            segments = self._segments(server)
            if segments:
                number, path = segments[-1]
                self._tails[server] = (number, path.stat().st_size)
            else:
                self._tails[server] = (0, 0)
        number, size = self._tails[server]
        chunks: list[bytes] = []
        count = 0
        for row in rows:
            body = encode(list(row))
            record = _LEN.pack(len(body)) + body
            if size and size + len(record) > SEGMENT_BYTES:
                self._append(directory / f"{number:06d}", chunks)
                chunks, number, size = [], number + 1, 0
            chunks.append(record)
            size += len(record)
            count += 1
        self._append(directory / f"{number:06d}", chunks)
        self._tails[server] = (number, size)
        return count

    def forget(self, server: bytes) -> None:
        directory = self.root / "c" / server.hex()
        if directory.exists():
            for path in directory.iterdir():
                path.unlink()
            directory.rmdir()
        self._tails.pop(server, None)

    # --- helpers ---------------------------------------------------------------------------

    def _segments(self, server: bytes) -> list[tuple[int, Path]]:
        directory = self.root / "c" / server.hex()
        if not directory.exists():
            return []
        out = []
        for path in directory.iterdir():
            if path.name.isdigit():
                out.append((int(path.name), path))
        return sorted(out)

    @staticmethod
    def _append(path: Path, chunks: list[bytes]) -> None:
        if chunks:
            with path.open("ab") as f:
                f.write(b"".join(chunks))

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _is_row(value: object) -> bool:
    return (
        type(value) is list
        and len(value) == 4
        and type(value[0]) is bytes
        and type(value[1]) is int
        and type(value[2]) is bytes
        and type(value[3]) is bytes
    )
