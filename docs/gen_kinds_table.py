"""Print the generated tables of ``docs/protocol.md`` from the live code.

    python docs/gen_kinds_table.py                  # the kinds block (event kinds, records, enums)
    python docs/gen_kinds_table.py reject-reasons   # the RejectReason block
    python docs/gen_kinds_table.py --write          # rewrite both blocks in docs/protocol.md

Each block sits in ``protocol.md`` between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``;
``tests/core/test_protocol_doc.py`` fails when the document and the code disagree.

How the field types are found: ``kinds.PAYLOAD_SPECS`` holds one compiled ``Spec`` per kind and
does not keep the specs of its fields, so this script executes a private copy of
``willow_core/kinds.py`` with the ``willow_core.schema`` factories (``record``, ``text``, ``enum``,
...) wrapped to note each spec they build and the arguments that built it. Specs that
``kinds.py`` builds itself are described from their ``Spec.name``.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum, IntEnum
from pathlib import Path
from typing import Any

# willow_core from this checkout, however this file was started (the package is not installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from willow_core import kinds, schema
from willow_core.apply import RULES
from willow_core.results import RejectReason

__all__ = ["BLOCKS", "kinds_block", "reject_reasons_block", "replace_blocks", "PROTOCOL"]

PROTOCOL = Path(__file__).resolve().parent / "protocol.md"

_FACTORIES = ("text", "opt_text", "blob", "enum", "enum_set", "list_of", "optional", "record")


class _Catalogue:
    """What the spied factories saw while the copy of ``kinds.py`` ran."""

    def __init__(self) -> None:
        self.described: dict[int, Callable[[], str]] = {
            id(schema.ID): lambda: "bytes(32)",
            id(schema.OPT_ID): lambda: "bytes(32) or null",
            id(schema.SIG): lambda: "bytes(64)",
            id(schema.UINT): lambda: (
                "uint ≤ 2^63-1" if schema.UINT_MAX == 2**63 - 1 else f"uint ≤ {schema.UINT_MAX}"
            ),
            id(schema.BOOL): lambda: "bool",
        }
        #: record class name -> (record class, field specs)
        self.records: dict[str, tuple[type[Any], tuple[schema.Spec[Any], ...]]] = {}
        #: tagged-union name -> {tag: (variant class, record spec)}
        self.unions: dict[str, dict[int, tuple[type[Any], schema.Spec[Any]]]] = {}
        self.enums: dict[str, type[IntEnum]] = {}
        self.keep: list[schema.Spec[Any]] = []  # the copy's specs, kept alive so ids stay unique

    def describe(self, spec: schema.Spec[Any]) -> str:
        known = self.described.get(id(spec))
        if known is not None:
            return known()
        cells = _cells(spec.decode)
        inner = cells.get("inner")
        if spec.name.startswith("keep or ") and isinstance(inner, schema.Spec):
            return f"`[]` keep, or `[v]` with v: {self.describe(inner)}"
        emoji = re.fullmatch(r"emoji<=(\d+)B", spec.name)
        if emoji and isinstance(inner, schema.Spec):
            return f"{self.describe(inner)}, ≤ {emoji.group(1)} UTF-8 bytes"
        bounded = re.fullmatch(r"uint in (\d+)\.\.(\d+)", spec.name)
        if bounded:
            return f"uint {bounded.group(1)}..{bounded.group(2)}"
        return spec.name

    def note(self, factory: str, args: tuple[Any, ...], kw: dict[str, Any], made: Any) -> None:
        self.keep.append(made)
        d = self.describe
        if factory == "text":
            low, high = kw.get("min_chars", 0), args[0]
            text = f"text {low}..{high} chars" if low else f"text ≤ {high} chars"
            if kw.get("max_bytes") is not None:
                text += f", ≤ {kw['max_bytes']} UTF-8 bytes"
            self.described[id(made)] = lambda: text
        elif factory == "opt_text":
            self.described[id(made)] = lambda: f"text ≤ {args[0]} chars or null"
        elif factory == "blob":
            self.described[id(made)] = lambda: f"bytes ≤ {args[0]}"
        elif factory == "enum":
            self.enums[args[0].__name__] = args[0]
            self.described[id(made)] = lambda: f"`{args[0].__name__}`"
        elif factory == "enum_set":
            self.enums[args[0].__name__] = args[0]
            self.described[id(made)] = lambda: f"set of `{args[0].__name__}`"
        elif factory == "list_of":
            self.described[id(made)] = lambda: f"array of ≤ {args[1]} {d(args[0])}"
        elif factory == "optional":
            self.described[id(made)] = lambda: f"{d(args[0])} or null"
        elif factory == "record":
            cls, fields = args
            self.records[cls.__name__] = (cls, tuple(fields))
            self.described[id(made)] = lambda: f"`{cls.__name__}`"
        elif factory == "tagged":
            variants, name = args
            self.unions[name] = dict(variants)
            self.described[id(made)] = lambda: f"`{name}`"


def _cells(function: Callable[..., Any]) -> dict[str, Any]:
    closure = getattr(function, "__closure__", None) or ()
    names = function.__code__.co_freevars if hasattr(function, "__code__") else ()
    return {name: cell.cell_contents for name, cell in zip(names, closure, strict=False)}


@contextmanager
def _spied(catalogue: _Catalogue) -> Iterator[None]:
    namespace = vars(schema)
    originals = {name: namespace[name] for name in (*_FACTORIES, "tagged")}

    def spy(name: str) -> Callable[..., Any]:
        original = originals[name]

        def factory(*args: Any, **kw: Any) -> Any:
            made = original(*args, **kw)
            catalogue.note(name, args, kw, made)
            return made

        return factory

    try:
        for name in originals:
            namespace[name] = spy(name)
        yield
    finally:
        namespace.update(originals)


def _catalogue() -> tuple[_Catalogue, types.ModuleType]:
    """Run a private copy of ``kinds.py`` with the schema factories spied on."""
    catalogue = _Catalogue()
    spec = importlib.util.spec_from_file_location("willow_core._kinds_for_docs", kinds.__file__)
    assert spec is not None
    assert spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    copy.__package__ = "willow_core"
    with _spied(catalogue):
        spec.loader.exec_module(copy)
    return catalogue, copy


def _fields(catalogue: _Catalogue, record: str) -> list[str]:
    cls, specs = catalogue.records[record]
    names: tuple[str, ...] = cls._fields
    return [f"`{n}`: {catalogue.describe(s)}" for n, s in zip(names, specs, strict=True)]


def _cell(items: list[str]) -> str:
    return "<br>".join(f"{i}. {item}" for i, item in enumerate(items)) if items else "(none)"


def kinds_block() -> str:
    """Every event kind with its payload fields and gate, then nested records and enums."""
    catalogue, copy = _catalogue()
    live: dict[Any, schema.Spec[Any]] = kinds.PAYLOAD_SPECS
    copied: dict[Any, schema.Spec[Any]] = copy.PAYLOAD_SPECS
    if [(int(k), s.name) for k, s in live.items()] != [(int(k), s.name) for k, s in copied.items()]:
        raise RuntimeError("the copy of kinds.py disagrees with the live module")
    lines = [
        f"{len(kinds.Kind)} kinds. The payload is the CBOR array of the listed fields, in this "
        "order (numbered from 0); the gate is who may author the kind (see Replay).",
        "",
        "| wire | kind | payload | fields | gate |",
        "|---:|---|---|---|---|",
    ]
    for kind in sorted(kinds.Kind):
        record = live[kind].name
        gate = RULES[kind][0]
        lines.append(
            f"| {int(kind)} | `{kind.name}` | `{record}` | "
            f"{_cell(_fields(catalogue, record))} | {_gate_text(gate)} |"
        )

    payload_records = {s.name for s in live.values()}
    nested = sorted(
        name
        for name in catalogue.records
        if name not in payload_records
        and not any(
            name == cls.__name__ for u in catalogue.unions.values() for cls, _ in u.values()
        )
    )
    lines += [
        "",
        "Records nested in payloads (each is the array of its fields, in order):",
        "",
        "| record | fields |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {_cell(_fields(catalogue, name))} |" for name in nested]

    for union, variants in sorted(catalogue.unions.items()):
        lines += [
            "",
            f"`{union}` is a tagged union: the array `[tag, ...fields]`.",
            "",
            "| tag | variant | fields after the tag |",
            "|---:|---|---|",
        ]
        for tag, (cls, _) in sorted(variants.items()):
            items = _fields(catalogue, cls.__name__)
            cell = "<br>".join(f"{i}. {item}" for i, item in enumerate(items, 1))
            lines.append(f"| {tag} | `{cls.__name__}` | {cell} |")

    lines += [
        "",
        "Enumerations (a uint on the wire; any other value is a decode error):",
        "",
        "| enum | values |",
        "|---|---|",
    ]
    for name, enum_cls in sorted(catalogue.enums.items()):
        members = ", ".join(f"{int(m)} `{m.name}`" for m in enum_cls)
        lines.append(f"| `{name}` | {members} |")
    return "\n".join(lines)


def _gate_text(gate: Enum) -> str:
    return str(gate.value)


def reject_reasons_block() -> str:
    lines = ["| value | reason |", "|---:|---|"]
    lines += [f"| {int(r)} | `{r.name}` |" for r in RejectReason]
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {
    "kinds": kinds_block,
    "reject-reasons": reject_reasons_block,
}


def replace_blocks(document: str) -> str:
    """``document`` with every generated block replaced by its current text."""
    for name, render in BLOCKS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        before, found, rest = document.partition(start)
        _, found_end, after = rest.partition(end)
        if not (found and found_end):
            raise RuntimeError(f"protocol.md has no {start} ... {end} block")
        document = f"{before}{start}\n{render()}\n{end}{after}"
    return document


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        PROTOCOL.write_text(replace_blocks(PROTOCOL.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"updated {PROTOCOL}")
        return 0
    name = argv[0] if argv else "kinds"
    if len(argv) > 1 or name not in BLOCKS:
        print(f"usage: gen_kinds_table.py [{' | '.join(BLOCKS)} | --write]", file=sys.stderr)
        return 2
    print(BLOCKS[name]())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
