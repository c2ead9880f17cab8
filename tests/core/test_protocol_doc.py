"""``docs/protocol.md`` cannot drift from the code: its generated tables and golden vector are
recomputed here and must appear in it verbatim."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import textwrap
import types
from collections.abc import Callable
from pathlib import Path

# willow_core from this checkout, however pytest was started (the package is not installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from willow_core import kinds
from willow_core.apply import RULES
from willow_core.kinds import PAYLOAD_SPECS, Kind
from willow_core.results import RejectReason

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "protocol.md"
EVENTS = ROOT / "tests" / "vectors" / "events.json"


def _load_generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "willow_docs_gen_kinds_table", ROOT / "docs" / "gen_kinds_table.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
BLOCKS: dict[str, Callable[[], str]] = GEN.BLOCKS
DOC = PROTOCOL.read_text(encoding="utf-8")
FIX = "run: python docs/gen_kinds_table.py --write"


def _block(name: str) -> str:
    match = re.search(
        rf"<!-- {re.escape(name)}:start -->\n(.*?)\n<!-- {re.escape(name)}:end -->", DOC, re.S
    )
    assert match is not None, f"protocol.md lacks the {name} markers"
    return match.group(1)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_generated_block_is_current(name: str) -> None:
    generated = BLOCKS[name]()
    assert generated in DOC, f"the {name} table in protocol.md is stale; {FIX}"
    assert _block(name) == generated, f"the {name} block in protocol.md is stale; {FIX}"


def test_rewriting_the_document_changes_nothing() -> None:
    replace: Callable[[str], str] = GEN.replace_blocks
    assert replace(DOC) == DOC


def test_kinds_table_lists_every_kind_once() -> None:
    table = BLOCKS["kinds"]()
    assert table.startswith(f"{len(Kind)} kinds.")
    for kind in Kind:
        row = f"| {int(kind)} | `{kind.name}` | `{PAYLOAD_SPECS[kind].name}` |"
        assert table.count(row) == 1, kind
        assert row in DOC
    assert len(Kind) == len(PAYLOAD_SPECS) == len(RULES)


def _row(table: str, kind: Kind) -> str:
    return next(row for row in table.splitlines() if row.startswith(f"| {int(kind)} | "))


def test_kinds_table_shows_each_gate() -> None:
    table = BLOCKS["kinds"]()
    for kind, (gate, _) in RULES.items():
        assert _row(table, kind).endswith(f"| {gate.value} |"), kind


def test_kinds_table_has_the_payload_fields_in_order() -> None:
    table = BLOCKS["kinds"]()
    for kind, spec in PAYLOAD_SPECS.items():
        record = vars(kinds)[spec.name]
        assert re.findall(r"\d+\. `(\w+)`", _row(table, kind)) == list(record._fields), kind


def test_reject_reasons_are_all_listed() -> None:
    table = BLOCKS["reject-reasons"]()
    for reason in RejectReason:
        assert f"| {int(reason)} | `{reason.name}` |" in table


def test_generator_refuses_a_document_without_markers() -> None:
    replace: Callable[[str], str] = GEN.replace_blocks
    with pytest.raises(RuntimeError, match="kinds"):
        replace("# no markers here\n")


def test_golden_genesis_vector_is_in_the_document() -> None:
    genesis = json.loads(EVENTS.read_text(encoding="utf-8"))["vectors"][0]
    assert genesis["name"] == "genesis"
    lines = DOC.splitlines()
    for chunk in textwrap.wrap(genesis["wire_hex"], 64):
        assert chunk in lines, "the genesis wire hex in protocol.md is stale"
    assert genesis["id_hex"] in lines
    assert genesis["author_hex"] in DOC
    assert f"{len(bytes.fromhex(genesis['wire_hex']))}-byte wire form" in DOC
    assert f"{len(bytes.fromhex(genesis['signable_hex']))} signable bytes" in DOC
    assert str(genesis["ts"]) in DOC


def test_document_names_every_insert_error_reason() -> None:
    source = (ROOT / "willow_core" / "dag.py").read_text(encoding="utf-8")
    reasons = set(re.findall(r'InsertError\(\s*"([a-z-]+)"', source))
    assert reasons
    for reason in reasons:
        assert f"`{reason}`" in DOC, reason
