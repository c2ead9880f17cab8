"""willow_core stays pure (ARCHITECTURE.md section 1): no I/O, clock or randomness of its own.

The same core runs in CPython and in Pyodide inside a Web Worker, and every peer must replay to
the same state; a hidden socket, clock read or random draw would break one or the other. Two
checks: a static scan of every module's imports and clock calls, and a fresh interpreter that
imports the whole package and looks at what ended up loaded (which also catches a third-party
dependency dragging something in).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import willow_core

CORE = Path(willow_core.__file__).parent
#: The one module allowed to be impure-looking: deterministic helpers for tests (hash-derived).
EXEMPT = {CORE / "testing.py"}

FORBIDDEN_IMPORTS = frozenset(
    {
        "asyncio",
        "socket",
        "ssl",
        "select",
        "selectors",
        "sqlite3",
        "subprocess",
        "threading",
        "multiprocessing",
        "random",
        "secrets",
        "uuid",
        "time",
        "datetime",
        "os",
        "io",
        "pathlib",
        "shutil",
        "tempfile",
        "logging",
        "urllib",
        "http",
        "websockets",
        "aiohttp",
    }
)
#: ``owner.attr(...)`` calls that read a clock, whatever way the owner was obtained.
FORBIDDEN_CALLS = frozenset(
    {
        ("time", "time"),
        ("time", "time_ns"),
        ("time", "monotonic"),
        ("time", "perf_counter"),
        ("datetime", "now"),
        ("datetime", "utcnow"),
        ("datetime", "today"),
        ("date", "today"),
    }
)
FORBIDDEN_LOADED = (
    "asyncio",
    "socket",
    "sqlite3",
    "subprocess",
    "threading",
    "ssl",
    "select",
    "selectors",
)


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def violations(source: str, filename: str = "<string>") -> list[str]:
    """Every forbidden import or clock call in ``source``, as ``file:line: what``."""
    found: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _top(alias.name) in FORBIDDEN_IMPORTS:
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and _top(node.module) in FORBIDDEN_IMPORTS:
                flag(node, f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                owner = func.value
                owner_name = (
                    owner.id
                    if isinstance(owner, ast.Name)
                    else owner.attr
                    if isinstance(owner, ast.Attribute)
                    else None
                )
                if (owner_name, func.attr) in FORBIDDEN_CALLS:
                    flag(node, f"call {owner_name}.{func.attr}()")
            # Dynamic imports: __import__("os"), importlib.import_module("socket").
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if (
                name in {"__import__", "import_module"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and _top(node.args[0].value) in FORBIDDEN_IMPORTS
            ):
                flag(node, f"dynamic import of {node.args[0].value}")
    return found


def core_sources() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if p not in EXEMPT)


def test_scanner_catches_what_it_should() -> None:
    bad = """
import os
import os.path as osp
from time import monotonic
from urllib.parse import quote
import asyncio, hashlib
clock.time.time()
datetime.datetime.now()
__import__("socket")
importlib.import_module("random")
"""
    hits = violations(bad)
    assert len(hits) == 9, hits
    good = "import hashlib\nfrom . import crypto\nfrom .time_utils import x\nself.clock.now(1)\n"
    assert violations(good) == []


def test_core_sources_have_no_io_clock_or_randomness() -> None:
    sources = core_sources()
    assert len(sources) > 10, "the scan found almost no core modules; is CORE right?"
    found = [
        hit
        for path in sources
        for hit in violations(path.read_text(encoding="utf-8"), str(path.relative_to(CORE)))
    ]
    assert found == [], "willow_core must stay pure; pass these in from the shell:\n" + "\n".join(
        found
    )


# Runs in a fresh interpreter: records who first imported each forbidden module, so a failure
# names the culprit (a core module or a third-party dependency) instead of just the module.
_PROBE = """
import importlib, json, pkgutil, sys, traceback

WATCH = set(sys.argv[1:])
culprits = {}
preloaded = sorted(WATCH & set(sys.modules))

class Spy:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in WATCH and name not in culprits:
            frames = [
                f"{f.filename}:{f.lineno}"
                for f in traceback.extract_stack()
                if "importlib" not in f.filename and "<frozen" not in f.filename
            ]
            culprits[name] = frames[-3:]
        return None

sys.meta_path.insert(0, Spy)
import willow_core
for info in pkgutil.walk_packages(willow_core.__path__, "willow_core."):
    importlib.import_module(info.name)
sys.meta_path.remove(Spy)
loaded = sorted(WATCH & set(sys.modules))
print(json.dumps({"preloaded": preloaded, "loaded": loaded, "culprits": culprits}))
"""


def test_importing_the_core_loads_no_io_modules() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *FORBIDDEN_LOADED],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if report["preloaded"]:
        pytest.fail(f"the interpreter loads {report['preloaded']} before willow_core; cannot judge")
    assert report["loaded"] == [], (
        "importing willow_core loaded I/O modules; first importer of each:\n"
        + json.dumps(report["culprits"], indent=2)
    )
