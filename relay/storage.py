"""The storage worker's event archive: one SQLite database per community (D11).

Invariant: an id is returned by ``append`` only after the transaction that wrote it has
committed with ``journal_mode=WAL`` and ``synchronous=FULL`` (the WAL is fsynced on every
commit), so an acknowledged event survives a process kill and, if the disk honours fsync, a power
loss (``shared/reference/perf-reliability.md`` section 6). Each community lives in its own file
``<server id hex>.db`` under the data directory (the original filed everything under one id);
the directory is fsynced after a file is created or deleted, because SQLite syncs the WAL's
directory entry but not the main file's. A failed write is not retried: after a storage error the
store refuses all further writes (PostgreSQL's "fsyncgate": a retried fsync can falsely succeed),
and the process should restart and recover from the WAL.

Rows are ``(id, depth, signable, sig)`` in ``(depth, id)`` order, exactly what
``willow_core.managed.ManagedDag.restore`` takes.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from willow_core.errors import LocalError, WillowError
from willow_core.event import Event

__all__ = [
    "StorageError",
    "EventStore",
    "Row",
    "RowPage",
    "SCHEMA_VERSION",
    "MAX_OPEN_DATABASES",
    "MAX_HISTORY_LIMIT",
    "HISTORY_PAGE_BYTES",
]

#: Connections kept open at once (each is two or three file descriptors); older ones close.
MAX_OPEN_DATABASES = 128
#: Events per history page, whatever the requester asks for (the original's cap was 10k).
MAX_HISTORY_LIMIT = 1_000
#: Event bytes per history page, so a page fits one 256 KiB frame (at least one event is always
#: sent).
HISTORY_PAGE_BYTES = 192 * 1024

_SUFFIX = ".db"
_NAME = re.compile(r"^[0-9a-f]{64}\.db$")
#: One tuple of statements per schema version; never edit a released step, append a new one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
        "CREATE TABLE events ("
        " id BLOB PRIMARY KEY,"
        " depth INTEGER NOT NULL,"
        " author BLOB NOT NULL,"
        " seq INTEGER NOT NULL,"
        " signable BLOB NOT NULL,"
        " sig BLOB NOT NULL)",
        "CREATE INDEX events_order ON events (depth, id)",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)

Row = tuple[bytes, int, bytes, bytes]
"""``(id, depth, signable, signature)`` of one stored event."""


class RowPage(NamedTuple):
    """Stored events newest first, and whether older ones remain."""

    rows: list[Row]
    more: bool


class StorageError(WillowError):
    """The archive could not read or write (disk full, I/O error, corrupt or foreign file).

    Attributes:
        operation: what the store was doing (``"open"``, ``"append"``, ``"rows"``...).
        path: the database file or directory concerned.
        code: SQLite's error name (``"SQLITE_FULL"``...) or the OS error name, if known.
    """

    def __init__(self, operation: str, path: Path | str, code: str = "", detail: str = "") -> None:
        text = f"{operation} {path}: {code or 'error'}"
        super().__init__(f"{text} ({detail})" if detail else text)
        self.operation = operation
        self.path = str(path)
        self.code = code
        self.detail = detail


@contextlib.contextmanager
def _translated(operation: str, path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorname", "") or type(exc).__name__
        raise StorageError(operation, path, code, str(exc)) from exc
    except OSError as exc:
        code = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise StorageError(operation, path, code, str(exc)) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EventStore:
    """Per-community SQLite archives under ``data_dir``; not thread-safe (one owner)."""

    def __init__(self, data_dir: Path | str, *, max_open: int = MAX_OPEN_DATABASES) -> None:
        self.data_dir = Path(data_dir)
        self.max_open = max_open
        self._open: OrderedDict[bytes, sqlite3.Connection] = OrderedDict()
        #: the error that broke the store; every later write raises (restart to recover)
        self.failed: StorageError | None = None
        with _translated("create", self.data_dir):
            if not self.data_dir.is_dir():
                self.data_dir.mkdir(parents=True, exist_ok=True)
                _fsync_dir(self.data_dir.parent)

    # --- files and connections ------------------------------------------------------------

    def path(self, server_id: bytes) -> Path:
        """The database file of ``server_id`` (whether or not it exists yet)."""
        if len(server_id) != 32:
            raise LocalError("a server id is 32 bytes")
        return self.data_dir / f"{server_id.hex()}{_SUFFIX}"

    def communities(self) -> list[bytes]:
        """Server ids with a database file, sorted."""
        with _translated("list", self.data_dir):
            names = [p.name for p in self.data_dir.iterdir() if _NAME.match(p.name)]
        return sorted(bytes.fromhex(name[: -len(_SUFFIX)]) for name in names)

    def _connection(self, server_id: bytes, *, create: bool) -> sqlite3.Connection | None:
        conn = self._open.get(server_id)
        if conn is not None:
            self._open.move_to_end(server_id)
            return conn
        path = self.path(server_id)
        fresh = not path.exists()
        if fresh and not create:
            return None
        conn = self._connect(server_id, path, fresh)
        self._open[server_id] = conn
        while len(self._open) > self.max_open:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return conn

    def _connect(self, server_id: bytes, path: Path, fresh: bool) -> sqlite3.Connection:
        with _translated("open", path):
            # isolation_level=None: no implicit transactions; every write is an explicit
            # BEGIN IMMEDIATE ... COMMIT, so "returned" means "committed".
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageError("open", path, "SQLITE_CANTOPEN", f"journal mode {mode}")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA busy_timeout=5000")
                self._migrate(conn, server_id, path)
            except BaseException:
                conn.close()
                raise
            if fresh:
                _fsync_dir(self.data_dir)
        return conn

    def _migrate(self, conn: sqlite3.Connection, server_id: bytes, path: Path) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            version = 0 if row is None or row[0] is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise StorageError("open", path, "schema", f"version {version} is newer")
            for step in _MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('server_id', ?)", (server_id,))
            owner = conn.execute("SELECT value FROM meta WHERE key = 'server_id'").fetchone()
            if owner is None or owner[0] != server_id:
                raise StorageError("open", path, "foreign", "the file holds another community")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        while self._open:
            _, conn = self._open.popitem()
            conn.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes ---------------------------------------------------------------------------

    def append(
        self, server_id: bytes, events: Iterable[Event], depths: Mapping[bytes, int]
    ) -> list[bytes]:
        """Store events of one community in one transaction; returns their ids after COMMIT.

        An event already stored has its depth updated (a removal that arrived later can push
        an event back in the order: ``EventDag.raise_unseen``), so ``rows`` always returns the
        current order. ``depths`` maps each event id to its effective depth in the community's
        DAG (``EventDag.depth``).

        Raises:
            StorageError: nothing was acknowledged; the store refuses writes from now on.
            LocalError: an event of another community, or without a depth.
        """
        rows = []
        for ev in events:
            if (ev.server if ev.server is not None else ev.id) != server_id:
                raise LocalError("event of another community")
            depth = depths.get(ev.id)
            if depth is None:
                raise LocalError("event without a depth (not in the DAG)")
            rows.append((ev.id, depth, ev.author, ev.seq, ev.signable, ev.sig))
        if not rows:
            return []
        self._check_healthy()
        path = self.path(server_id)
        try:
            with _translated("append", path):
                conn = self._connection(server_id, create=True)
                assert conn is not None
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT(id) DO UPDATE SET depth = excluded.depth"
                        " WHERE depth != excluded.depth",
                        rows,
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
        except StorageError as exc:
            self.failed = exc
            raise
        return [row[0] for row in rows]

    def _check_healthy(self) -> None:
        if self.failed is not None:
            raise StorageError("append", self.failed.path, "failed", "an earlier write failed")

    def delete(self, server_id: bytes) -> bool:
        """Remove a community's database (and its WAL); returns whether it existed."""
        conn = self._open.pop(server_id, None)
        if conn is not None:
            conn.close()
        path = self.path(server_id)
        existed = False
        with _translated("delete", path):
            for suffix in ("", "-wal", "-shm"):
                candidate = Path(f"{path}{suffix}")
                if candidate.exists():
                    candidate.unlink()
                    existed = True
            if existed:
                _fsync_dir(self.data_dir)
        return existed

    # --- reads ----------------------------------------------------------------------------

    def rows(self, server_id: bytes) -> Iterator[Row]:
        """Every stored event of ``server_id`` in ``(depth, id)`` order (for ``restore``)."""
        path = self.path(server_id)
        with _translated("rows", path):
            conn = self._connection(server_id, create=False)
            if conn is None:
                return
            cursor = conn.execute("SELECT id, depth, signable, sig FROM events ORDER BY depth, id")
            while batch := cursor.fetchmany(512):
                yield from batch

    def count(self, server_id: bytes) -> int:
        """Stored events of ``server_id``."""
        path = self.path(server_id)
        with _translated("count", path):
            conn = self._connection(server_id, create=False)
            if conn is None:
                return 0
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def history_page(
        self,
        server_id: bytes,
        before_depth: int | None = None,
        limit: int = MAX_HISTORY_LIMIT,
        *,
        before_id: bytes | None = None,
        max_bytes: int = HISTORY_PAGE_BYTES,
    ) -> RowPage:
        """Stored events older than a cursor, newest first (effective depth, then id, descending).

        Args:
            before_depth: only events below this depth (None: from the newest), or, with
                ``before_id``, only events whose ``(depth, id)`` sorts below the pair.
            limit: events wanted; capped at ``MAX_HISTORY_LIMIT``.
            max_bytes: the page stops before exceeding this many event bytes (but always
                holds at least one event when any is older than the cursor).
        """
        limit = max(1, min(limit, MAX_HISTORY_LIMIT))
        select = "SELECT id, depth, signable, sig FROM events"
        order = "ORDER BY depth DESC, id DESC LIMIT ?"
        query: str
        params: tuple[object, ...]
        if before_depth is None:
            query, params = f"{select} {order}", (limit + 1,)
        elif before_id is None:
            query, params = f"{select} WHERE depth < ? {order}", (before_depth, limit + 1)
        else:
            query = f"{select} WHERE (depth, id) < (?, ?) {order}"
            params = (before_depth, before_id, limit + 1)
        path = self.path(server_id)
        rows: list[Row] = []
        size = 0
        with _translated("history", path):
            conn = self._connection(server_id, create=False)
            if conn is None:
                return RowPage([], False)
            for row in conn.execute(query, params):
                cost = len(row[2]) + len(row[3]) + 8
                if len(rows) == limit or (rows and size + cost > max_bytes):
                    return RowPage(rows, True)
                rows.append(row)
                size += cost
        return RowPage(rows, False)

    def describe(self, server_id: bytes) -> dict[str, object]:
        """The settings in force on a community's connection (for tests and diagnostics)."""
        path = self.path(server_id)
        with _translated("describe", path):
            conn = self._connection(server_id, create=False)
            if conn is None:
                return {}
            return {
                "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
                "synchronous": conn.execute("PRAGMA synchronous").fetchone()[0],
                "schema_version": conn.execute("SELECT version FROM schema_version").fetchone()[0],
                "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
            }
