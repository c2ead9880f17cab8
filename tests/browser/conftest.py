"""Tier 4 fixtures: the built site, loopback servers, and Debian Chromium under Playwright.

The site is built once per session (``build.py`` into a temporary folder) and served two ways:
by a real relay's HTTP side (as ``willow up --static`` does) and by a plain static server, so
the tests prove it needs no special headers. Each browser context runs on a fresh profile and
records every request that would leave 127.0.0.1; any such request fails the test.
scripts/test.sh installs chromium and npm when they are missing, so nothing here skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from bench.browserkit import (
    ExternalRequests,
    RelayThread,
    StaticServer,
    chromium,
    open_harness,
)
from build import Site, build_site


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(tmp_path_factory.mktemp("build") / "site")


@pytest.fixture(scope="session")
def relay_url(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a relay (HTTP, WebSocket, TCP) serving the site."""
    with RelayThread(tmp_path_factory.mktemp("relay"), site.root) as relay:
        yield relay.url


@pytest.fixture(scope="session")
def static_url(site: Site) -> Iterator[str]:
    """Base URL of a plain static host (content types only) serving the site."""
    with StaticServer(site.root) as server:
        yield server.url


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API, per test module: while it is open it holds an event loop as the
    running one, which would break every ``asyncio.run`` in test modules collected after it."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def session_external() -> Iterator[ExternalRequests]:
    external = ExternalRequests()
    yield external
    assert external.urls == [], f"requests left the machine: {external.urls}"


@pytest.fixture(scope="module")
def harness(
    playwright: Playwright,
    relay_url: str,
    session_external: ExternalRequests,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Page]:
    """One harness page (served by the relay), booted once and shared by the module's tests."""
    with chromium(playwright, tmp_path_factory.mktemp("profile"), session_external) as context:
        yield open_harness(context, relay_url)


@pytest.fixture
def external(session_external: ExternalRequests) -> Iterator[ExternalRequests]:
    """A fresh external-request log; the test fails if anything was requested off-machine."""
    external = ExternalRequests()
    yield external
    assert external.urls == [], f"requests left the machine: {external.urls}"
    assert session_external.urls == [], f"requests left the machine: {session_external.urls}"


@pytest.fixture
def browser(
    playwright: Playwright, tmp_path: Path, external: ExternalRequests
) -> Iterator[BrowserContext]:
    """A browser on a fresh profile for this test alone."""
    with chromium(playwright, tmp_path / "profile", external) as context:
        yield context
