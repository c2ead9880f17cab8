"""The ``willow`` command: run a relay, a storage worker, a replay worker, or all of them.

``willow up`` is what the README's run command starts: a relay, and both workers each in a
process of its own (``relay.supervise``: a worker's synchronous SQLite commit must not stall the
relay's event loop), with persistent identities and data under one directory, printing where to
connect. The workers reach the relay over its TCP endpoint like any other native peer; they stop
with ``willow up`` (SIGINT/SIGTERM), and also by themselves if it dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from willow_core.identity import Identity

from .keyfile import load_or_create_identity
from .peer import Carrier, PeerConnection, wall_ms
from .replay_worker import ReplayWorker
from .server import Relay
from .storage_worker import StorageWorker
from .supervise import WorkerProcess

__all__ = ["main"]

log = logging.getLogger("willow")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TCP_PORT = 9090
DEFAULT_WS_PORT = 9091
DEFAULT_HTTP_PORT = 8080


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="willow", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    relay = sub.add_parser("relay", help="run a relay (WebSocket, TCP and HTTP endpoints)")
    _relay_options(relay)
    relay.add_argument("--data", type=Path, default=Path(".willow/relay"), help="data directory")

    for name, text in (("storage", "a storage worker"), ("replay", "a replay worker")):
        worker = sub.add_parser(name, help=f"run {text} connected to a relay")
        worker.add_argument("--relay", type=_address, default=(DEFAULT_HOST, DEFAULT_TCP_PORT))
        worker.add_argument("--data", type=Path, default=Path(f".willow/{name}"))
        if name == "replay":
            worker.add_argument("--max-events", type=int, default=100_000)
            worker.add_argument("--max-communities", type=int, default=1_000)
        worker.add_argument(
            "--until-stdin-closes",
            action="store_true",
            help="also stop when standard input reaches end of file (how `willow up` ties its "
            "workers' lives to its own)",
        )

    up = sub.add_parser("up", help="run a relay and both workers (each in its own process)")
    _relay_options(up)
    up.add_argument("--data", type=Path, default=Path(".willow"), help="data directory")
    return parser


def _relay_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    parser.add_argument("--tcp-port", type=int, default=DEFAULT_TCP_PORT)
    parser.add_argument("--ws-port", type=int, default=DEFAULT_WS_PORT)
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT)
    parser.add_argument("--static", type=Path, default=None, help="serve this directory over HTTP")


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def _stop_on_stdin_eof(stop: asyncio.Event) -> None:
    """Set ``stop`` once standard input reaches end of file (the supervising parent is gone)."""
    loop = asyncio.get_running_loop()

    def wait() -> None:
        # The raw descriptor, not sys.stdin: a thread blocked in a buffered read would hold its
        # lock while the interpreter shuts down.
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait, name="stdin-watch", daemon=True).start()


def _worker(kind: str, data: Path, args: argparse.Namespace) -> tuple[Carrier, Identity]:
    identity = load_or_create_identity(data)
    if kind == "storage":
        storage = StorageWorker(identity, data / "events")
        storage.start(wall_ms())
        return storage, identity
    replay = ReplayWorker(
        identity,
        getattr(args, "max_events", 100_000),
        getattr(args, "max_communities", 1_000),
    )
    return replay, identity


async def _run_relay(
    args: argparse.Namespace, data: Path, services: Sequence[tuple[str, bytes]] = ()
) -> Relay:
    relay = Relay(
        args.host,
        tcp_port=args.tcp_port,
        ws_port=args.ws_port,
        http_port=args.http_port,
        data_dir=data,
        static_dir=args.static,
        services=services,
    )
    await relay.start()
    return relay


def _loopback(host: str) -> str:
    """Where a child should connect to reach a relay listening on ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    if getattr(args, "until_stdin_closes", False):
        _stop_on_stdin_eof(stop)
    tasks: list[asyncio.Task[None]] = []
    connections: list[PeerConnection] = []
    children: list[WorkerProcess] = []
    relay: Relay | None = None
    code = 0
    try:
        if args.command in ("relay", "up"):
            relay_data = args.data / "relay" if args.command == "up" else args.data
            services: list[tuple[str, bytes]] = []
            if args.command == "up":
                # The workers' keys go into the relay's capability document, so the web app
                # can grant them SyncProvider when someone founds a community.
                for kind in ("storage", "replay"):
                    key = load_or_create_identity(args.data / kind).public_key
                    services.append((kind, key))
            relay = await _run_relay(args, relay_data, services)
            print(f"relay key      {relay.key.hex()}")
            print(f"websocket      ws://{args.host}:{relay.ws_port}")
            print(f"tcp            {args.host}:{relay.tcp_port}")
            print(f"http           http://{args.host}:{relay.http_port}/")
            if args.static is not None:
                print(f"web app        http://{args.host}:{relay.http_port}/")
            sys.stdout.flush()
        if args.command == "up":
            assert relay is not None
            assert relay.tcp_port is not None
            for kind in ("storage", "replay"):
                child = WorkerProcess(
                    kind, _loopback(args.host), relay.tcp_port, args.data / kind, on_line=print
                )
                children.append(child)
                print(await child.start())  # "<kind> worker <key>", from the child itself
                sys.stdout.flush()
        elif args.command in ("storage", "replay"):
            (host, port), data = args.relay, args.data
            carrier, identity = _worker(args.command, data, args)
            print(f"{args.command} worker {identity.public_key.hex()}")
            connection = PeerConnection(carrier, host, port)
            connections.append(connection)
            tasks.append(asyncio.create_task(connection.run()))
        sys.stdout.flush()
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in done:
            if task is not waiter and not task.cancelled() and task.exception() is not None:
                # A worker's connection ended with an error it cannot survive (a storage
                # failure): exit non-zero so whoever runs it starts a fresh process.
                log.error("worker stopped: %r", task.exception())
                code = 1
    finally:
        for child in children:
            await child.stop()
        for connection in connections:
            await connection.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for carrier in (c.carrier for c in connections):
            close = getattr(carrier, "close", None)
            if close is not None:
                close()
        if relay is not None:
            await relay.stop()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
