"""The web app as people use it: three browsers (two desktop, one phone-sized) and a native
peer, through a real relay with the storage and replay workers, built site served by the relay.

Tried as new users would: create identities, found a community, invite by link and by web
address, chat, reply, thread, react, edit, delete, pin, create a channel and a role, grant a
permission, run a governance vote, kick. Then every view must agree (the same state hash in
every browser and in the native peer), a reload must keep everything, and a message sent while
offline must be delivered after reconnecting. No request may leave 127.0.0.1 (the ``external``
fixture). Screenshots of the main screens land in ``artifacts/screenshots``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Playwright, ViewportSize, expect

from bench.browserkit import ExternalRequests, chromium
from bench.stack import Stack
from build import Site
from willow_core.invite import InviteLink
from willow_core.kinds import SetProfile
from willow_core.permissions import Permission

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
BOOT_MS = 120_000
STEP_MS = 20_000
PHONE: ViewportSize = {"width": 390, "height": 844}
# Three Pyodide workers share two cores here: give every expectation the step budget.
expect.set_options(timeout=STEP_MS)


@pytest.fixture(scope="module")
def stack(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("stack"), site.root) as running:
        yield running


class Person:
    """One browser profile with the app open."""

    def __init__(self, context: BrowserContext, url: str, name: str, profile: Path) -> None:
        self.context = context
        self.name = name
        self.profile = profile
        self.page = context.pages[0] if context.pages else context.new_page()
        self.page.set_default_timeout(STEP_MS)
        self.page.goto(url)

    def wait_ready(self) -> None:
        self.page.wait_for_function(
            "document.documentElement.dataset.ready === '1'", timeout=BOOT_MS
        )

    def start(self) -> None:
        self.wait_ready()
        self.page.fill("form[data-action=create-identity] input[name=name]", self.name)
        self.page.click("form[data-action=create-identity] button[type=submit]")
        expect(self.page.locator("#overlay .modal")).to_have_count(0)
        self.online()

    def online(self) -> None:
        expect(self.page.locator("#sidebar .conn-online")).to_have_count(1, timeout=BOOT_MS)

    def inspect(self) -> dict[str, object]:
        return self.page.evaluate("willowInspect()")  # type: ignore[no-any-return]

    def say(self, text: str, *, thread: bool = False) -> None:
        box = "#thread-composer" if thread else "#composer"
        self.page.fill(box, text)
        self.page.press(box, "Enter")

    def message(self, text: str) -> str:
        """The hex id of the (first) message in view whose text contains ``text``."""
        row = self.page.locator("#message-list .msg", has_text=text).first
        expect(row).to_be_visible()
        value = row.get_attribute("data-msg")
        assert value is not None
        return value

    def tool(self, message_id: str, label: str) -> None:
        """Point at a message and click one of its tools, as a person would.

        The toolbar shows only under the pointer. A message arriving between the hover
        and the click scrolls the list, so the row can move away from a pointer that
        stays still; like a person, point at the row again until its tools show.
        """
        row = self.page.locator(f"#message-list #m-{message_id}")
        button = row.get_by_role("button", name=label, exact=True)
        deadline = time.monotonic() + STEP_MS / 1000
        while True:
            row.hover()
            if button.is_visible() or time.monotonic() > deadline:
                break
            self.page.wait_for_timeout(50)
        button.click()

    def settings(self, tab: str) -> None:
        if self.page.locator("#overlay .modal[data-modal=settings]").count() == 0:
            self.page.click("#sidebar .side-head")
        self.page.click(f"#overlay .tab[data-tab={tab}]")

    def close(self) -> None:
        self.page.keyboard.press("Escape")
        expect(self.page.locator("#overlay .modal")).to_have_count(0)

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")


def _hash(person: Person, server: str) -> object:
    communities = person.inspect().get("communities")
    assert isinstance(communities, dict)
    return communities[server]["hash"]


def _decode_qr(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    (result,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(result.text)


def test_people_use_the_app_end_to_end(
    playwright: Playwright, stack: Stack, tmp_path: Path, external: ExternalRequests
) -> None:
    people: list[Person] = []
    contexts = []
    try:
        for name in ("Alice", "Bob", "Carol"):
            context_manager = chromium(playwright, tmp_path / name, external)
            context = context_manager.__enter__()
            contexts.append(context_manager)
            people.append(Person(context, stack.url, name, tmp_path / name))
        alice, bob, carol = people
        carol.page.set_viewport_size(PHONE)
        alice.wait_ready()
        alice.shot("first-run-desktop")
        for person in people:
            person.start()

        # Alice founds a community; it gets #general and both workers serve it.
        alice.page.click("#message-list [data-modal=create]")
        alice.page.fill("form[data-action=create-community] input[name=name]", "Book club")
        alice.page.click("form[data-action=create-community] button[type=submit]")
        expect(alice.page.locator("#sidebar .channel.active")).to_contain_text("general")
        server = next(iter(alice.inspect()["communities"]))  # type: ignore[call-overload]

        # An invite with a use limit; its QR code decodes to the web address shown beside it.
        alice.page.click("#sidebar .invite-btn")
        alice.page.select_option("form[data-action=create-invite] select[name=max_uses]", "10")
        alice.page.click("form[data-action=create-invite] button[type=submit]")
        link = alice.page.input_value("#overlay .invite-link")
        address = alice.page.input_value("#overlay .invite-url")
        assert address.endswith("#" + link)
        assert _decode_qr(alice.page.locator("#overlay .qr svg").screenshot()) == address
        alice.shot("invite-desktop")
        alice.close()

        # Bob pastes the link; Carol (phone) opens the web address; Dave is a native peer.
        bob.page.click("#rail [data-modal=join]")
        bob.page.fill("form[data-action=join] textarea[name=link]", link)
        bob.page.click("form[data-action=join] button[type=submit]")
        carol.page.goto(address)
        carol.wait_ready()
        carol.page.click("form[data-action=join] button[type=submit]")
        parsed = InviteLink.parse(link)
        stack.call(lambda: stack.native.request_sync(parsed.server))
        stack.wait(lambda: parsed.invite in stack.native.open(parsed.server).dag, "invite at Dave")
        stack.call(lambda: stack.native.join(parsed, _now()))
        stack.call(lambda: stack.native.author(parsed.server, SetProfile("Dave"), _now()))
        for person in (bob, carol):
            expect(person.page.locator("#composer")).to_be_enabled(timeout=BOOT_MS)

        # chat, reply, mention
        alice.say("Hello everyone, **welcome**!")
        hello = bob.message("Hello everyone")
        bob.tool(hello, "Reply")
        bob.say("Hi @Alice")
        expect(alice.page.locator("#message-list .mention.me")).to_have_count(1)
        expect(carol.page.locator("#message-list .reply-ref")).to_contain_text("Hello everyone")
        reply = alice.message("Hi")

        # react with the picker; thread; edit; delete; pin
        carol.tool(hello, "Add reaction")
        carol.page.locator(f"#m-{hello} .picker .pick[title=':tada:']").click()
        expect(alice.page.locator(f"#m-{hello} .reaction")).to_contain_text("🎉1")
        bob.tool(hello, "Create thread")
        bob.page.fill("form[data-action=create-thread] input[name=name]", "Planning")
        bob.page.click("form[data-action=create-thread] button[type=submit]")
        bob.say("First thread reply", thread=True)
        alice.page.locator(f"#m-{hello} .thread-chip").click()
        expect(alice.page.locator("#thread")).to_contain_text("First thread reply")
        alice.shot("thread-desktop")
        alice.page.click("#thread [data-action=close-thread]")
        alice.tool(hello, "Edit")
        alice.page.fill(f"#m-{hello} .edit-input", "Hello everyone, welcome! (edited)")
        alice.page.press(f"#m-{hello} .edit-input", "Enter")
        expect(carol.page.locator(f"#m-{hello} .content")).to_contain_text("(edited)")
        bob.tool(reply, "Delete")
        bob.page.click("#overlay [data-action=confirm-delete]")
        expect(alice.page.locator(f"#m-{reply}")).to_contain_text("This message was deleted.")
        alice.tool(hello, "Pin")
        bob.page.click("#chat-header [data-action=toggle-pins]")
        expect(bob.page.locator("#chat-header .pins-panel")).to_contain_text("welcome")
        bob.page.click("#chat-header [data-action=toggle-pins]")

        # a channel and a role with a granted permission; Bob gets it
        alice.settings("channels")
        alice.page.fill("form[data-action=create-channel] input[name=name]", "off-topic")
        alice.page.click("form[data-action=create-channel] button[type=submit]")
        alice.settings("roles")
        alice.page.fill("form[data-action=create-role] input[name=name]", "Mods")
        alice.page.click("form[data-action=create-role] button[type=submit]")
        alice.page.locator(
            f"#overlay .switch[data-perm='{int(Permission.MANAGE_MESSAGES)}']"
        ).click()
        expect(
            alice.page.locator(
                f"#overlay .switch.on[data-perm='{int(Permission.MANAGE_MESSAGES)}']"
            )
        ).to_have_count(1)
        alice.shot("settings-roles-desktop")
        alice.settings("members")
        bob_key = bob.inspect()["me"]
        alice.page.locator(f"#overlay .member-row[data-peer='{bob_key}'] .toggle-chip").click()
        expect(bob.page.locator("#sidebar .channel")).to_have_count(2)
        expect(
            bob.page.locator("#members .member", has_text="Bob").locator(".role-chip")
        ).to_contain_text("Mods")

        # governance: Bob made admin (the founder's proposal applies at once); Bob proposes to
        # kick Carol; it passes when Alice votes yes.
        alice.page.locator(
            f"#overlay .member-row[data-peer='{bob_key}'] [data-kind=grant-admin]"
        ).click()
        alice.close()
        expect(bob.page.locator("#members")).to_contain_text("Admins — 2")
        carol_key = carol.inspect()["me"]
        bob.settings("members")
        bob.page.locator(f"#overlay .member-row[data-peer='{carol_key}'] [data-kind=kick]").click()
        bob.close()
        alice.settings("governance")
        proposal = alice.page.locator("#overlay .proposal")
        expect(proposal).to_contain_text("Kick Carol")
        alice.shot("governance-desktop")
        proposal.locator("[data-accept='1']").click()
        alice.close()
        expect(carol.page.locator("#composer")).to_be_disabled()
        expect(alice.page.locator("#members")).not_to_contain_text("Carol")

        # the native peer speaks in the sealed channel; members read it, the kicked browser
        # (still receiving every event) shows why it cannot
        state = stack.call(lambda: stack.native.communities[parsed.server].state)
        channel = next(c for c, ch in state.channels.items() if ch.name == "general")
        assert state.channels[channel].sealed
        _eventually(lambda: _dave_sends(stack, parsed.server, channel, "Dave here"), "Dave sends")
        for person in people:
            if person is carol:
                carol.page.click("#nav-toggle")
            person.page.locator("#sidebar .channel", has_text="general").click()
            if person is carol:
                expect(
                    carol.page.locator("#message-list .undecryptable[data-reason=not_a_reader]")
                ).not_to_have_count(0)
                expect(carol.page.locator("#message-list")).not_to_contain_text("Dave here")
            else:
                expect(person.page.locator("#message-list")).to_contain_text("Dave here")
        carol.shot("chat-phone")
        carol.page.click("#nav-toggle")
        carol.shot("drawer-phone")
        alice.shot("chat-desktop")

        # every view agrees: the same state in all three browsers and the native peer
        def native_hash() -> str:
            return stack.call(lambda: stack.native.communities[parsed.server].state_hash().hex())

        # Key work (shares for newcomers, rotations after the kick) settles within a few ticks.
        _eventually(
            lambda: {native_hash(), *(str(_hash(p, server)) for p in people)} == {native_hash()},
            "every browser and the native peer hold one state",
            limit_s=60.0,
        )

        # a reload shows everything from the local store, then resumes
        bob.page.reload()
        bob.wait_ready()
        expect(bob.page.locator("#message-list")).to_contain_text("Dave here")  # keys kept
        _eventually(lambda: _hash(bob, server) == native_hash(), "Bob agrees after reload")
        bob.online()

        # offline: Bob's message waits, then is delivered when the network returns
        bob.context.set_offline(True)
        expect(bob.page.locator("#banner .offline")).to_have_count(1, timeout=BOOT_MS)
        bob.say("sent while offline")
        expect(alice.page.locator("#message-list")).not_to_contain_text("sent while offline")
        bob.context.set_offline(False)
        bob.page.evaluate("window.dispatchEvent(new Event('online'))")
        expect(alice.page.locator("#message-list")).to_contain_text(
            "sent while offline", timeout=BOOT_MS
        )
        _eventually(
            lambda: "sent while offline" in _dave_reads(stack, parsed.server),
            "Dave reads the offline message",
            limit_s=60.0,
        )
    finally:
        for context_manager in contexts:
            context_manager.__exit__(None, None, None)


def _dave_sends(stack: Stack, server: bytes, channel: bytes, text: str) -> bool:
    """The native peer seals and sends ``text``; False while its key is not shared yet."""
    import os

    from willow_core.errors import LocalError
    from willow_core.kinds import SealedMessage

    def send() -> bool:
        node = stack.native
        community = node.communities[server]
        node.publish(server, community.key_work(_now(), os.urandom))
        try:
            events, sealed = community.seal(channel, text, "message", _now(), os.urandom)
        except LocalError:
            return False
        node.publish(server, events)
        node.author(server, SealedMessage(channel, sealed), _now())
        return True

    return stack.call(send)


def _dave_reads(stack: Stack, server: bytes) -> list[str]:
    def read() -> list[str]:
        community = stack.native.communities[server]
        state = community.state
        return [
            opened.text
            for m in state.messages.values()
            if (opened := community.keyring.open_message(state, m)).text is not None
        ]

    return stack.call(read)


def _now() -> int:
    import time

    return int(time.time() * 1000)


def _eventually(condition: object, what: str, limit_s: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + limit_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.2)
