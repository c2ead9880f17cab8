"""The guard every browser test relies on: what counts as leaving the machine."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from bench.browserkit import ExternalRequests, is_loopback


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/index.html",
        "ws://127.0.0.1:9091/",
        "http://localhost/x.wasm",
        "http://[::1]:80/",
        "data:,",
        "blob:http://127.0.0.1:8080/1234",
        "about:blank",
    ],
)
def test_local_urls(url: str) -> None:
    assert is_loopback(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.jsdelivr.net/pyodide/v0.29.0/full/pyodide.js",
        "https://pypi.org/simple/",
        "http://10.0.0.1/",
        "http://127.0.0.1.example.com/",
        "http://localhost.example.com/",
        "wss://relay.example/",
        "chrome-extension://abc/x.js",
    ],
)
def test_external_urls(url: str) -> None:
    assert not is_loopback(url)


def test_hook_records_only_external_requests() -> None:
    external = ExternalRequests()
    for url in ("http://127.0.0.1/a", "https://example.com/b", "data:,"):
        external(cast("Any", SimpleNamespace(url=url)))
    assert external.urls == ["https://example.com/b"]
