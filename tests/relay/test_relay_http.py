"""The HTTP side: signed capability document, health check, dev static files; the relay's key."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict
from relay_testkit import peer, relay_at, run

from relay.http import (
    CAPABILITIES_TAG,
    WELL_KNOWN_PATH,
    capability_message,
    verify_capabilities,
)
from relay.keyfile import SEED_FILE, KeyFileError, load_or_create_identity
from relay.limits import Limits
from relay.server import Relay
from willow_core import crypto
from willow_core.encoding import encode
from willow_core.wire import AUTH_TAG, ENVELOPE_TAG, MAX_FRAME_BYTES


async def fetch(port: int, path: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}{path}", headers=headers) as response,
    ):
        return response.status, CIMultiDict(response.headers), await response.read()


def test_capability_document_is_signed_by_the_relay_key(tmp_path: Path) -> None:
    limits = Limits(max_topics_per_connection=77)

    async def body() -> None:
        async with relay_at(tmp_path, limits=limits) as relay:
            assert relay.http_port is not None
            status, headers, raw = await fetch(relay.http_port, WELL_KNOWN_PATH)
            assert status == 200
            assert headers["Content-Type"].startswith("application/json")
            assert headers["Access-Control-Allow-Origin"] == "*"
            served = json.loads(raw)
            assert verify_capabilities(served, expected_key=relay.key)
            caps = served["capabilities"]
            assert caps["key"] == relay.key.hex()
            assert caps["protocols"] == ["willow-relay/1"]
            assert (caps["envelope"], caps["auth"]) == (ENVELOPE_TAG, AUTH_TAG)
            assert caps["transports"]["websocket"]["port"] == relay.ws_port
            assert caps["transports"]["tcp"]["port"] == relay.tcp_port
            assert caps["limits"]["max_frame_bytes"] == MAX_FRAME_BYTES
            assert caps["limits"]["max_topics_per_connection"] == 77
            assert caps["authority"] == "none"
            # The scheme, spelled out: Ed25519 over canonical CBOR of [tag, capabilities].
            message = encode([CAPABILITIES_TAG, caps])
            assert message == capability_message(caps)
            assert crypto.ed25519_verify(relay.key, message, bytes.fromhex(served["signature"]))
            # ... and it is the key the relay presents in HELLO.
            client = await peer("tcp", relay, "alice", auth=False)
            await client.hello()
            assert client.relay_key.hex() == caps["key"]

    run(body)


def test_a_tampered_document_does_not_verify(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            assert relay.http_port is not None
            served = json.loads((await fetch(relay.http_port, WELL_KNOWN_PATH))[2])
            assert verify_capabilities(served)
            served["capabilities"]["limits"]["key_publishes_per_s"] += 1
            assert not verify_capabilities(served)
            assert not verify_capabilities({"capabilities": {}, "signature": "zz"})
            assert not verify_capabilities([])
            fresh = json.loads((await fetch(relay.http_port, WELL_KNOWN_PATH))[2])
            assert not verify_capabilities(fresh, expected_key=b"\x00" * 32)

    run(body)


def test_capability_document_etag(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            assert relay.http_port is not None
            _, headers, first = await fetch(relay.http_port, WELL_KNOWN_PATH)
            etag = headers["ETag"]
            _, again, second = await fetch(relay.http_port, WELL_KNOWN_PATH)
            assert (again["ETag"], second) == (etag, first)  # deterministic signature
            status, _, empty = await fetch(
                relay.http_port, WELL_KNOWN_PATH, **{"If-None-Match": etag}
            )
            assert (status, empty) == (304, b"")
            status, _, _ = await fetch(
                relay.http_port, WELL_KNOWN_PATH, **{"If-None-Match": '"something-else"'}
            )
            assert status == 200

    run(body)


def test_healthz(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            assert relay.http_port is not None
            await peer("ws", relay, "alice")
            status, _, raw = await fetch(relay.http_port, "/healthz")
            assert status == 200
            health = json.loads(raw)
            assert health["status"] == "ok"
            assert health["connections"] == 1

    run(body)


def test_static_files_in_dev_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    (site / "index.html").write_text("<h1>willow</h1>")
    (site / "js" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("outside the site")

    async def body() -> None:
        async with relay_at(tmp_path, static_dir=site) as relay:
            port = relay.http_port
            assert port is not None
            assert (await fetch(port, "/"))[2] == b"<h1>willow</h1>"
            assert (await fetch(port, "/index.html"))[2] == b"<h1>willow</h1>"
            assert (await fetch(port, "/js/app.js"))[2] == b"console.log(1)"
            assert (await fetch(port, "/missing.js"))[0] == 404
            assert (await fetch(port, "/../secret.txt"))[0] == 404
            assert (await fetch(port, "/%2e%2e/secret.txt"))[0] in (403, 404)
            # The relay's own routes still win over the static tree.
            assert (await fetch(port, "/healthz"))[0] == 200
            assert verify_capabilities(json.loads((await fetch(port, WELL_KNOWN_PATH))[2]))

    run(body)


def test_no_static_files_without_a_static_dir(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            assert relay.http_port is not None
            assert (await fetch(relay.http_port, "/"))[0] == 404

    run(body)


def test_endpoints_can_be_disabled(tmp_path: Path) -> None:
    async def body() -> None:
        relay = Relay(data_dir=tmp_path, ws_port=None, tcp_port=0, http_port=0)
        await relay.start()
        try:
            assert relay.ws_port is None
            assert relay.http_port is not None
            caps = json.loads((await fetch(relay.http_port, WELL_KNOWN_PATH))[2])["capabilities"]
            assert "websocket" not in caps["transports"]
            assert "websocket" not in caps["features"]
            assert "tcp" in caps["features"]
        finally:
            await relay.stop()

    run(body)


# --- the relay's key --------------------------------------------------------------------------


def test_relay_seed_is_created_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = load_or_create_identity(data)
    seed_file = data / SEED_FILE
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert len(seed_file.read_bytes()) == 32
    assert load_or_create_identity(data).public_key == first.public_key
    assert [p.name for p in data.iterdir()] == [SEED_FILE]  # no temporary left behind


def test_relay_keeps_its_key_across_restarts(tmp_path: Path) -> None:
    async def body() -> None:
        async with relay_at(tmp_path) as relay:
            first = relay.key
        async with relay_at(tmp_path) as relay:
            assert relay.key == first

    run(body)


def test_a_damaged_seed_file_is_refused(tmp_path: Path) -> None:
    tmp_path.joinpath(SEED_FILE).write_bytes(b"short")
    os.chmod(tmp_path / SEED_FILE, 0o600)
    with pytest.raises(KeyFileError):
        load_or_create_identity(tmp_path)
