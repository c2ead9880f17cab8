"""Willow runs in one tab of a browser profile at a time: a second tab says it is open
elsewhere and can take it over, and the first then stops (two tabs would sign as the same
person from two copies of the history). A reload is not "another tab"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, expect

from bench.browserkit import BOOT_TIMEOUT_MS, ExternalRequests, chromium

READY = "document.documentElement.dataset.ready === '1'"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def context(
    playwright: Playwright, tmp_path: Path, external: ExternalRequests
) -> Iterator[BrowserContext]:
    with chromium(playwright, tmp_path / "profile", external) as context:
        yield context


def _open(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(BOOT_TIMEOUT_MS)
    page.goto(url)
    return page


def test_a_second_tab_defers_to_the_first_and_can_take_over(
    context: BrowserContext, relay_url: str
) -> None:
    first = _open(context, relay_url)
    first.wait_for_function(READY)
    first.reload()  # the reloaded document gets the tab back without asking
    first.wait_for_function(READY)
    expect(first.locator("#use-here")).to_have_count(0)

    second = _open(context, relay_url)
    expect(second.locator("#loading-text")).to_have_text("Willow is open in another tab.")
    second.wait_for_timeout(1_000)
    assert second.evaluate("document.documentElement.dataset.ready") is None  # not booted
    expect(first.locator("#loading")).to_be_hidden()  # the first one carries on
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    second.screenshot(path=str(SCREENSHOTS / "another-tab.png"), animations="disabled")

    second.click("#use-here")
    second.wait_for_function(READY)
    expect(first.locator("#loading-text")).to_have_text("Willow was opened in another tab.")
    expect(first.locator("#use-here")).to_be_visible()
    assert first.evaluate("document.documentElement.dataset.ready") is None

    second.close()  # closing the tab that runs Willow frees it for the next one
    third = _open(context, relay_url)
    third.wait_for_function(READY)
    expect(third.locator("#use-here")).to_have_count(0)
