"""The relay's pure parts, without sockets: token buckets, limits, the bus, per-key access."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from relay.access import Access
from relay.bus import Bus
from relay.codes import CLOSING, ErrorCode, ws_close_code
from relay.limits import MAX_FRAME_BYTES, Limits, TokenBucket
from willow_core.testing import identity
from willow_core.wire import community_topic, inbox_topic

# --- token buckets and limits -----------------------------------------------------------------


def test_token_bucket_spends_refills_and_caps() -> None:
    bucket = TokenBucket(rate=2, burst=4, now=0.0)
    assert [bucket.take(0.0) for _ in range(5)] == [True] * 4 + [False]
    assert bucket.take(0.5)  # one token back after half a second at 2/s
    assert not bucket.take(0.5)
    assert bucket.full(100.0)
    assert bucket.tokens == 4  # never above the burst
    assert not bucket.take(100.0, cost=5)
    assert bucket.tokens == 4  # a refused take spends nothing
    assert bucket.take(99.0)  # a clock going back adds nothing
    assert bucket.tokens == 3


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(max_topics=0)
    with pytest.raises(ValueError, match="maximum-size frame"):
        Limits(key_byte_burst=MAX_FRAME_BYTES - 1)
    with pytest.raises(ValueError, match="known_inboxes"):
        Limits(max_connections=10, known_inboxes=10)
    document = Limits().document()
    assert all(type(v) is int for v in document.values())  # CBOR-safe: no floats


def test_error_codes() -> None:
    assert ErrorCode.SLOW_CONSUMER in CLOSING
    assert ErrorCode.RATE_LIMITED not in CLOSING
    assert ws_close_code(ErrorCode.SLOW_CONSUMER) == 4008
    assert all(4000 <= ws_close_code(c) < 5000 for c in ErrorCode)


# --- the bus ----------------------------------------------------------------------------------


class Spy:
    """A fake transport's fan-out: logs (sink, frame) and how many sinks each call had."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.calls: list[int] = []

    def __call__(self, sinks: Sequence[Any], frame: bytes) -> None:
        self.calls.append(len(sinks))
        LOG.extend((sink, frame) for sink in sinks)


LOG: list[tuple[str, bytes]] = []
SPIES = {"a": Spy("a"), "b": Spy("b")}


class Recorder:
    """A bus member whose sink is just its name."""

    def __init__(self, name: str, group: str = "a") -> None:
        self.sink = name
        self.fan_out: Any = SPIES[group]


@pytest.fixture(autouse=True)
def _clean_log() -> None:
    LOG.clear()
    for spy in SPIES.values():
        spy.calls.clear()


T1, T2 = b"\x01" * 32, b"\x02" * 32


def test_bus_fans_out_once_per_transport_group_and_skips_the_origin() -> None:
    bus: Bus[Recorder] = Bus()
    a1, a2, b1 = Recorder("a1"), Recorder("a2"), Recorder("b1", "b")
    for member in (a1, a2, b1):
        bus.subscribe(member, [T1])
    assert bus.publish(T1, b"f1") == 3
    assert sorted(LOG) == [("a1", b"f1"), ("a2", b"f1"), ("b1", b"f1")]
    assert SPIES["a"].calls == [2]  # one call for both "a" members
    assert SPIES["b"].calls == [1]
    LOG.clear()
    assert bus.publish(T1, b"f2", origin=a1) == 2
    assert sorted(LOG) == [("a2", b"f2"), ("b1", b"f2")]
    LOG.clear()
    assert bus.publish(T1, b"f3", origin=a1) == 2  # cached plan without a1, same answer
    assert sorted(LOG) == [("a2", b"f3"), ("b1", b"f3")]
    assert bus.publish(T2, b"nobody") == 0
    assert bus.deliveries == 7


def test_bus_membership_changes_invalidate_cached_plans() -> None:
    bus: Bus[Recorder] = Bus()
    a1, a2 = Recorder("a1"), Recorder("a2")
    bus.subscribe(a1, [T1, T2])
    bus.publish(T1, b"x", origin=a2)
    bus.subscribe(a2, [T1])
    bus.publish(T1, b"y", origin=a1)
    assert LOG == [("a1", b"x"), ("a2", b"y")]
    bus.unsubscribe(a2, [T1])
    LOG.clear()
    bus.publish(T1, b"z", origin=a1)
    assert LOG == []
    bus.drop(a1)
    assert bus.topic_count == 0
    assert bus.topics_of(a1) == frozenset()
    bus.unsubscribe(a1, [T1])  # unknown member: harmless


def test_a_member_dropped_during_fan_out_does_not_disturb_the_broadcast() -> None:
    bus: Bus[Recorder] = Bus()
    members = [Recorder(f"m{i}") for i in range(5)]
    for member in members:
        bus.subscribe(member, [T1])

    def dropping(sinks: Sequence[Any], frame: bytes) -> None:
        for sink in sinks:
            LOG.append((sink, frame))
            if sink == "m1":
                bus.drop(members[3])  # e.g. a slow consumer detected mid-broadcast

    for member in members:
        member.fan_out = dropping
    bus.drop(members[0])
    bus.subscribe(members[0], [T1])  # force a fresh plan with the new fan-out
    bus.publish(T1, b"f")
    assert len(LOG) == 5  # the snapshot being broadcast is unaffected
    LOG.clear()
    bus.publish(T1, b"g")
    assert ("m3", b"g") not in LOG
    assert len(LOG) == 4


# --- access -----------------------------------------------------------------------------------

RELAY = identity("relay").public_key
ALICE = identity("alice").public_key
BOB = identity("bob").public_key


def test_inbox_rule_and_relay_inbox() -> None:
    access = Access(Limits(), RELAY)
    assert not access.may_subscribe(ALICE, inbox_topic(BOB))  # even before bob ever connects
    assert not access.may_subscribe(ALICE, inbox_topic(RELAY))
    assert access.may_subscribe(ALICE, community_topic(BOB))
    assert not access.may_subscribe(ALICE, b"\x07" + bytes(31))  # an unknown topic type
    assert access.acquire(BOB, 0.0)
    assert not access.may_subscribe(ALICE, inbox_topic(BOB))
    assert access.may_subscribe(BOB, inbox_topic(BOB))
    access.release(BOB, 0.0)
    assert not access.may_subscribe(ALICE, inbox_topic(BOB))  # and after leaving


def test_connections_per_key_and_budget_lifetime() -> None:
    limits = Limits(max_connections_per_key=2, key_publishes_per_s=1, key_publish_burst=2)
    access = Access(limits, RELAY)
    assert access.acquire(ALICE, 0.0)
    assert access.acquire(ALICE, 0.0)
    assert not access.acquire(ALICE, 0.0)
    assert access.connections(ALICE) == 2
    budget = access.budget(ALICE)
    assert budget.take(0.0, 10)
    assert budget.take(0.0, 10)
    assert not budget.take(0.0, 10)
    access.release(ALICE, 0.0)
    access.release(ALICE, 0.0)
    assert access.tracked_budgets == 1  # spent budget outlives the connections...
    assert access.acquire(ALICE, 0.5)
    assert not access.budget(ALICE).take(0.5, 10)  # ...so reconnecting does not reset it
    access.release(ALICE, 0.5)
    assert access.acquire(BOB, 10.0)  # later: alice's budget has refilled and is forgotten
    assert access.tracked_budgets == 1


def test_a_byte_overdraft_refunds_the_publish_token() -> None:
    limits = Limits(key_publish_burst=10, key_byte_burst=MAX_FRAME_BYTES, key_bytes_per_s=1)
    access = Access(limits, RELAY)
    access.acquire(ALICE, 0.0)
    budget = access.budget(ALICE)
    assert not budget.take(0.0, MAX_FRAME_BYTES + 1)
    assert budget.publishes.tokens == 10
