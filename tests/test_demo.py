"""The in-process demo (``python -m relay.demo``) converges: three replicas, one in-memory hub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relay import demo
from willow_core.kinds import Message
from willow_core.testing import ByteStream


def ticking_clock(start: int = 1_700_000_000_000) -> Iterator[int]:
    now = start
    while True:
        now += 7
        yield now


def seeded_run(label: str = "demo") -> demo.DemoResult:
    ticks = ticking_clock()
    return demo.run(clock=lambda: next(ticks), entropy=ByteStream(label))


def test_main_reports_convergence(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "converged: all replicas hold the same state" in out
    hashes = {line.split("state=")[1] for line in out.splitlines() if "state=" in line}
    assert len(hashes) == 1


def test_replicas_converge_whatever_the_arrival_order() -> None:
    result = seeded_run()
    assert {r.arrival for r in result.replicas} == set(demo.ARRIVAL_ORDERS)
    assert result.converged
    hashes = {r.community.state_hash() for r in result.replicas}
    assert len(hashes) == 1
    for replica in result.replicas:
        assert len(replica.community.dag.events) == len(result.hub.log)
        assert len(replica.community.managed.pending) == 0
        assert replica.community.state.rejected == {}


def test_the_conversation_took_effect() -> None:
    result = seeded_run()
    state = result.replicas[1].community.state
    assert len(state.members) == 3
    assert state.rejected == {}
    msgs = result.messages
    assert state.messages[msgs["carol_hi"]].body == "hello from carol"
    assert state.messages[msgs["carol_hi"]].edited
    assert len(state.messages[msgs["welcome"]].reactions["👋"]) == 2
    assert state.messages[msgs["reply"]].reply_to == msgs["carol_hi"]
    lines = demo.transcript(state)
    assert lines[0] == "#general (say hi)"
    assert "  <Carol> hello from carol  (edited)" in lines


def test_same_inputs_same_state() -> None:
    a, b = seeded_run(), seeded_run()
    assert a.replicas[0].community.state_hash() == b.replicas[0].community.state_hash()


def test_divergence_is_detected() -> None:
    result = seeded_run()
    alice = result.replicas[0]
    channel = next(iter(alice.community.state.channels))
    alice.author(result.hub, Message(channel, "not yet synced"), 1_800_000_000_000)
    assert not result.converged
