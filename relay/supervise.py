"""Workers in processes of their own, started and watched by the process that runs the relay.

A worker does synchronous work (the storage worker's SQLite commit, fsync included; replaying a
large batch) that must never stall the relay's event loop, so ``willow up`` and
``bench.stack.Stack`` run each worker as a child process::

    python -m relay.cli storage|replay --relay HOST:PORT --data DIR --until-stdin-closes

It reaches the relay over TCP loopback like any other native peer (``relay.peer``).

**Lifetime.** The child's standard input is a pipe whose other end only the parent holds; with
``--until-stdin-closes`` the child stops when it reads end-of-file, which happens however the
parent ends (even ``kill -9``), so no worker outlives the process that started it. Children run
in a session of their own, so a terminal's Ctrl-C reaches the parent alone, which stops them in
order: SIGTERM, then SIGKILL after ``STOP_GRACE_S``. A child that exits by itself (a storage
failure is fatal by design, section 15.2 of docs/protocol.md: a new process restores what was
committed) is started again after a backoff of ``RESTART_BACKOFF_S``, doubling up to
``MAX_RESTART_BACKOFF_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "WorkerProcess",
    "START_TIMEOUT_S",
    "STOP_GRACE_S",
    "RESTART_BACKOFF_S",
    "MAX_RESTART_BACKOFF_S",
]

log = logging.getLogger("willow.supervise")

#: A child prints its key line right after loading its identity and data (the storage worker
#: restores every stored community first, which can take a while on a big archive).
START_TIMEOUT_S = 120.0
#: A worker asked to stop closes its relay connection and its databases in well under a second;
#: one that has not exited after this long is killed (its committed data is safe either way).
STOP_GRACE_S = 10.0
#: First wait before restarting a child that exited by itself, doubled on every restart in a
#: row and capped, so a worker that fails at once does not spin.
RESTART_BACKOFF_S = 1.0
MAX_RESTART_BACKOFF_S = 30.0
#: A child that ran this long before exiting counts as healthy: the backoff starts over.
_HEALTHY_S = 60.0
#: Longest line read from a child's standard output (it prints one short line per start).
_MAX_LINE = 64 * 1024


def _project_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


class WorkerProcess:
    """One worker child: ``start`` spawns it and returns its first output line, ``stop`` ends
    it; in between it is restarted whenever it exits by itself."""

    def __init__(
        self,
        kind: str,
        relay_host: str,
        relay_port: int,
        data_dir: Path,
        *,
        options: Sequence[str] = (),
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        if kind not in ("storage", "replay"):
            raise ValueError(f"unknown worker kind {kind!r}")
        self.kind = kind
        self.command = [
            sys.executable,
            "-m",
            "relay.cli",
            kind,
            "--relay",
            f"{relay_host}:{relay_port}",
            "--data",
            str(data_dir),
            "--until-stdin-closes",
            *options,
        ]
        self.on_line = on_line
        #: times the child was started again after exiting by itself
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> str:
        """Spawn the child and return its first line (``<kind> worker <key>``).

        Raises:
            RuntimeError: the child exited, or printed nothing within ``START_TIMEOUT_S``.
        """
        process = await self._spawn()
        try:
            first = await asyncio.wait_for(self._first_line(process), START_TIMEOUT_S)
        except (TimeoutError, RuntimeError):
            await self._end(process)
            raise
        self._watch = asyncio.create_task(self._supervise(process))
        return first

    async def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after ``STOP_GRACE_S``); no restart after."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._process is not None:
            await self._end(self._process)

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        # The child imports this checkout, however the parent found it.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_project_root(), env.get("PYTHONPATH", "")) if p
        )
        process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
            limit=_MAX_LINE,
        )
        self._process = process
        return process

    async def _first_line(self, process: asyncio.subprocess.Process) -> str:
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line:
            code = await process.wait()
            raise RuntimeError(f"the {self.kind} worker exited with code {code} before starting")
        return line.decode(errors="replace").rstrip("\n")

    async def _forward(self, process: asyncio.subprocess.Process) -> None:
        """Pass the child's further output lines on (and keep its pipe drained)."""
        assert process.stdout is not None
        while line := await process.stdout.readline():
            if self.on_line is not None:
                self.on_line(line.decode(errors="replace").rstrip("\n"))

    async def _supervise(self, process: asyncio.subprocess.Process) -> None:
        backoff = RESTART_BACKOFF_S
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            forward = asyncio.create_task(self._forward(process))
            code = await process.wait()
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forward
            if self._stopping:
                return
            if loop.time() - started > _HEALTHY_S:
                backoff = RESTART_BACKOFF_S
            log.warning(
                "%s worker exited with code %s; restarting in %.0f s", self.kind, code, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)
            try:
                process = await self._spawn()
                line = await asyncio.wait_for(self._first_line(process), START_TIMEOUT_S)
            except (OSError, TimeoutError, RuntimeError) as exc:
                log.warning("%s worker did not restart: %s", self.kind, exc)
                if self._process is not None:
                    await self._end(self._process)
                continue
            self.restarts += 1
            if self.on_line is not None:
                self.on_line(line)

    async def _end(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.stdin is not None:
            process.stdin.close()
