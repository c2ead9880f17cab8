"""Browser benchmarks: the core in Pyodide, and the web app's start-up.

``browser-core``: materialize the same signed 10k-event history (wire bytes -> state, every
signature verified) in Pyodide with the libsodium.js backend, vs CPython with PyNaCl, in the
same run. Goal: at most 4x slower. Both sides must reach the same state hash.

``browser-start``: page navigation -> the app is interactive (cached state rendered, input
enabled: the page sets ``<html data-ready="1">``), vs the bare page that only boots Pyodide in a
module worker and sets the same flag. Cold (fresh profile, first visit: the welcome screen) and
warm (a new tab in the same browser, HTTP, code and wasm caches filled, for a returning user
whose identity the app loads from IndexedDB), both against their own baseline; the contract
line carries the worse of the two. Goal: at most 1.3x.

Both build the site into ``.bench-cache/site`` and serve it from a real relay on 127.0.0.1.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from willow_core.encoding import encode
from willow_core.state import state_hash

from .browserkit import (
    BOOT_TIMEOUT_MS,
    ExternalRequests,
    RelayThread,
    chromium,
    open_harness,
    run_python,
)
from .core import _ingest
from .fixtures import CACHE_DIR, history
from .harness import Result, best_time, report

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

__all__ = ["browser_core", "browser_start"]

REPO = Path(__file__).resolve().parent.parent
#: The history both sides materialize (generated once, cached like the other fixtures).
CORE_EVENTS = 10_000
#: Timed rounds per side (best kept); the first Pyodide round also pays for imports.
CORE_ROUNDS = 3
CORE_GOAL = 4.0
#: Browser launches per page (alternating app and bare); each gives one cold load, on a fresh
#: profile, then WARM_LOADS loads in new tabs of the same browser. The best of each is kept.
START_ROUNDS = 5
WARM_LOADS = 1
#: The app's first-run form (a display name creates the local identity).
FIRST_RUN_FORM = "form[data-action=create-identity]"
#: Time for the worker to flush a new identity to IndexedDB before the tab closes.
PERSIST_GRACE_MS = 1_000
START_GOAL = 1.3
#: Frames to decode in Pyodide: far above the fixture's size (about 4 MB).
MAX_FIXTURE_BYTES = 2**28

#: The same steps as bench.core's materialize subject (decode every wire event, then one
#: ManagedDag.receive that verifies every signature in one batch), timed inside Pyodide under
#: the collector settings of this process (bench.harness.runtime_gc), so only the runtime differs.
PYODIDE_MATERIALIZE = """
import gc, json, time
from willow_core.encoding import decode
from willow_core.event import decode_event
from willow_core.managed import ManagedDag
from willow_core.state import state_hash

wires = list(decode(harness_data.to_bytes(), max_bytes=%(max_bytes)d))
gc.set_threshold(*%(gc_threshold)r)

def ingest():
    events = [decode_event(w) for w in wires]
    managed = ManagedDag(events[0].id)
    receipt = managed.receive(events, 0, verified=False)
    if receipt.refused or receipt.buffered or managed.state is None:
        raise AssertionError("fixture did not ingest cleanly")
    return managed

times = []
for _ in range(%(rounds)d):
    start = time.perf_counter()
    managed = ingest()
    times.append(time.perf_counter() - start)
json.dumps({"best_s": min(times), "times": times, "state": state_hash(managed.state).hex()})
"""

#: Records when <html data-ready="1"> appears (the app's and the bare page's "interactive"),
#: in the page's own clock: milliseconds since navigation started. It observes the document,
#: not <html>, because an init script runs before the parser has created <html>.
READY_PROBE = """
new MutationObserver(() => {
  const root = document.documentElement;
  if (root && root.dataset.ready === "1" && window.__readyAt === undefined) {
    window.__readyAt = performance.now();
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-ready"] });
"""


def _site() -> Path:
    """Build the site with the repository's build.py (loaded by path: the PyPA ``build``
    package, when installed, would shadow a plain ``import build`` outside the repo root)."""
    name = "willow_site_build"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, REPO / "build.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return Path(module.build_site(CACHE_DIR / "site").root)


@contextmanager
def _browser_session(workers: bool) -> Iterator[tuple[Playwright, RelayThread, ExternalRequests]]:
    from playwright.sync_api import sync_playwright

    site = _site()
    external = ExternalRequests()
    data = Path(tempfile.mkdtemp(prefix="willow-bench-"))
    try:
        with RelayThread(data, site, workers=workers) as relay, sync_playwright() as playwright:
            yield playwright, relay, external
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if external.urls:
        raise AssertionError(f"requests left the machine: {external.urls}")


def browser_core(n_events: int = CORE_EVENTS, rounds: int = CORE_ROUNDS) -> Result:
    """Materialize in Pyodide (libsodium.js) vs CPython (PyNaCl), same history (goal <= 4)."""
    wires = history(n_events)
    native_s, _ = best_time(lambda: _ingest(wires, verified=False), lambda: None, rounds)
    native = _ingest(wires, verified=False)
    assert native.state is not None
    native_state = state_hash(native.state).hex()

    code = PYODIDE_MATERIALIZE % {
        "rounds": rounds,
        "max_bytes": MAX_FIXTURE_BYTES,
        "gc_threshold": gc.get_threshold(),
    }
    with _browser_session(workers=False) as (playwright, relay, external):
        profile = Path(tempfile.mkdtemp(prefix="willow-profile-"))
        try:
            with chromium(playwright, profile, external) as context:
                page = open_harness(context, relay.url)
                measured = json.loads(run_python(page, code, encode(wires)))
        finally:
            shutil.rmtree(profile, ignore_errors=True)
    if measured["state"] != native_state:
        raise AssertionError("Pyodide reached a different state than CPython")
    browser_s = float(measured["best_s"])
    notes = [
        f"{n_events} events, state {native_state[:16]} in both",
        f"per event: Pyodide {browser_s / n_events * 1e6:.1f} us "
        f"(rounds {', '.join(f'{t:.2f}' for t in measured['times'])} s), "
        f"CPython {native_s / n_events * 1e6:.1f} us",
    ]
    return report(
        Result("browser-core", browser_s, native_s, "s", browser_s / native_s, "<=", CORE_GOAL),
        notes,
    )


def _load_ms(context: BrowserContext, url: str) -> float:
    """Open ``url`` in a new tab; milliseconds from navigation start to data-ready."""
    from playwright.sync_api import Error as PlaywrightError

    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        page.goto(url)
        try:
            page.wait_for_function(
                "window.__readyAt !== undefined || document.documentElement.dataset.bootError",
                timeout=BOOT_TIMEOUT_MS,
            )
        except PlaywrightError as e:
            raise AssertionError(f"{url} never became ready; console: {console}") from e
        error = page.evaluate("document.documentElement.dataset.bootError")
        if error:
            raise AssertionError(f"{url} failed to start: {error}; console: {console}")
        return float(page.evaluate("window.__readyAt"))
    finally:
        page.close()


def _become_returning_user(context: BrowserContext, url: str) -> bool:
    """Create an identity in the app (its first-run form), so later loads render cached state
    from /persist rather than the welcome screen. Returns whether that state is in place."""
    page = context.new_page()
    page.set_default_timeout(BOOT_TIMEOUT_MS)
    try:
        page.goto(url)
        page.wait_for_function("document.documentElement.dataset.ready === '1'")
        form = page.locator(FIRST_RUN_FORM)
        if form.count() == 0:
            return False
        form.locator("input[name=name]").fill("Bench")
        form.locator("button[type=submit]").click()
        page.wait_for_function(f"!document.querySelector({FIRST_RUN_FORM!r})")
        # The identity is written to /persist and flushed (env.persist) by the worker; a tab
        # opened afterwards shows whether that happened.
        page.wait_for_timeout(PERSIST_GRACE_MS)
    finally:
        page.close()
    check = context.new_page()
    check.set_default_timeout(BOOT_TIMEOUT_MS)
    try:
        check.goto(url)
        check.wait_for_function("document.documentElement.dataset.ready === '1'")
        return check.locator(FIRST_RUN_FORM).count() == 0
    finally:
        check.close()


def browser_start(rounds: int = START_ROUNDS) -> Result:
    """App page to interactive vs bare Pyodide page, cold and warm (goal <= 1.3)."""
    cold: dict[str, list[float]] = {"app": [], "bare": []}
    warm: dict[str, list[float]] = {"app": [], "bare": []}
    returning: list[bool] = []
    with _browser_session(workers=True) as (playwright, relay, external):
        pages = {"app": relay.url, "bare": f"{relay.url}dev/bare.html"}

        def visit(which: str) -> None:
            profile = Path(tempfile.mkdtemp(prefix="willow-profile-"))
            try:
                with chromium(playwright, profile, external) as context:
                    context.add_init_script(READY_PROBE)
                    cold[which].append(_load_ms(context, pages[which]))
                    if which == "app":
                        returning.append(_become_returning_user(context, pages[which]))
                    for _ in range(WARM_LOADS):
                        warm[which].append(_load_ms(context, pages[which]))
            finally:
                shutil.rmtree(profile, ignore_errors=True)

        for _ in range(rounds):  # alternate, so drifting machine load hits both sides
            visit("bare")
            visit("app")

    results: list[tuple[str, float, float]] = []
    notes: list[str] = []
    for label, runs in (("cold", cold), ("warm", warm)):
        app, bare = min(runs["app"]), min(runs["bare"])
        results.append((label, app, bare))
        notes.append(
            f"browser-start {label}: subject={app:.0f}ms baseline={bare:.0f}ms "
            f"ratio={app / bare:.3f} (app runs {_ms(runs['app'])}; bare runs {_ms(runs['bare'])})"
        )
    notes.append(
        f"warm app loads are a returning user's (identity created after the cold load): "
        f"{sum(returning)} of {len(returning)} profiles"
    )
    label, app, bare = max(results, key=lambda r: r[1] / r[2])
    notes.append(f"contract line: the worse of cold and warm ({label})")
    return report(Result("browser-start", app, bare, "ms", app / bare, "<=", START_GOAL), notes)


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


BENCHMARKS: dict[str, Callable[[], Result]] = {
    "browser-core": browser_core,
    "browser-start": browser_start,
}
