"""The browser store: rows survive a reload, moved events keep their last depth, a torn write
at the end of a segment loses only the row being written."""

from __future__ import annotations

from pathlib import Path

from willow_web import store as store_module
from willow_web.store import Store


def _row(i: int, depth: int) -> tuple[bytes, int, bytes, bytes]:
    return (i.to_bytes(32, "big"), depth, b"signable-%d" % i, b"s" * 64)


def test_rows_reload_in_order_and_last_depth_wins(tmp_path: Path) -> None:
    server = b"\x01" * 32
    s = Store(tmp_path)
    s.append_rows(server, [_row(i, i) for i in range(10)])
    s.append_rows(server, [_row(3, 20)])  # event 3 moved after a removal
    rows = Store(tmp_path).load_rows(server)
    assert [r[0] for r in rows] == [_row(i, 0)[0] for i in (0, 1, 2, 4, 5, 6, 7, 8, 9, 3)]
    assert rows[-1][1] == 20
    assert Store(tmp_path).communities() == [server]


def test_segments_roll_over(tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setattr(store_module, "SEGMENT_BYTES", 1024)
    try:
        server = b"\x02" * 32
        s = Store(tmp_path)
        for i in range(50):
            s.append_rows(server, [_row(i, i)])
        segments = list((tmp_path / "c" / server.hex()).iterdir())
        assert len(segments) > 3
        assert len(Store(tmp_path).load_rows(server)) == 50
    finally:
        mp.undo()


def test_torn_tail_loses_only_the_torn_row(tmp_path: Path) -> None:
    server = b"\x03" * 32
    s = Store(tmp_path)
    s.append_rows(server, [_row(i, i) for i in range(5)])
    (segment,) = (tmp_path / "c" / server.hex()).iterdir()
    data = segment.read_bytes()
    segment.write_bytes(data[:-7])
    fresh = Store(tmp_path)
    assert len(fresh.load_rows(server)) == 4
    fresh.append_rows(server, [_row(9, 9)])  # appends go after the last whole row
    ids = [r[0] for r in Store(tmp_path).load_rows(server)]
    assert ids == [_row(i, 0)[0] for i in (0, 1, 2, 3, 9)]


def test_profile_and_ui_round_trip(tmp_path: Path) -> None:
    s = Store(tmp_path)
    assert s.load_profile() is None
    s.save_profile(b"\x07" * 32, "Zoë")
    s.save_ui({"community": b"\x01" * 32})
    assert Store(tmp_path).load_profile() == (b"\x07" * 32, "Zoë")
    assert Store(tmp_path).load_ui() == {"community": b"\x01" * 32}
    (tmp_path / "ui.cbor").write_bytes(b"\xff\x00garbage")
    assert Store(tmp_path).load_ui() == {}
