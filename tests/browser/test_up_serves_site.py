"""``willow up --static site`` (what scripts/up.sh runs) serves the built app beside the relay.

The page finds the relay's WebSocket through ``/.well-known/willow`` on its own origin, so the
capability document and the site must come from the same HTTP endpoint.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from build import Site

#: How long ``willow up`` may take to print its addresses.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> tuple[dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(response.headers), response.read()


def test_willow_up_serves_the_site_and_the_capability_document(site: Site, tmp_path: Path) -> None:
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
        "--static",
        str(site.root),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and not any("replay worker" in x for x in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        base = f"http://127.0.0.1:{http}/"
        assert f"web app        {base}\n" in lines, "".join(lines)

        headers, index = fetch(base)
        assert headers["Cache-Control"] == "no-cache"
        assert b'id="willow-manifest"' in index
        headers, worker = fetch(base + str(site.manifest["worker"]))
        assert headers["Content-Type"].startswith("text/javascript")
        assert "immutable" in headers["Cache-Control"]
        assert worker == (site.root / str(site.manifest["worker"])).read_bytes()
        _, document = fetch(base + ".well-known/willow")
        assert json.loads(document)["capabilities"]["transports"]["websocket"]["port"] == ws
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
