"""``willow up`` as a newcomer runs it: it starts, prints where to connect, answers, and stops."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_willow_up_starts_relay_and_workers_and_stops_on_sigterm(tmp_path: Path) -> None:
    tcp, ws, http = free_port(), free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "relay.cli",
        "up",
        "--data",
        str(tmp_path / "willow"),
        "--tcp-port",
        str(tcp),
        "--ws-port",
        str(ws),
        "--http-port",
        str(http),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while time.monotonic() < deadline and not any("replay worker" in x for x in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        printed = "".join(lines)
        assert f"http://127.0.0.1:{http}/" in printed, printed
        assert f"ws://127.0.0.1:{ws}" in printed
        assert "storage worker" in printed
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/.well-known/willow", timeout=5) as r:
            assert r.status == 200
        # Identities persist: the data directory now holds each party's key.
        assert (tmp_path / "willow" / "storage").is_dir()
        assert (tmp_path / "willow" / "replay").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
