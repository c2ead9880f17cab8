"""Every willow_core module declares its public API in ``__all__``, and every name in it exists."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import willow_core


def core_modules() -> list[str]:
    names = ["willow_core"]
    names += [m.name for m in pkgutil.walk_packages(willow_core.__path__, "willow_core.")]
    return sorted(names)


def test_the_walk_finds_the_core() -> None:
    names = core_modules()
    assert "willow_core.client" in names
    assert "willow_core.apply.messages" in names  # subpackages are walked too


@pytest.mark.parametrize("name", core_modules())
def test_module_declares_all_and_every_name_exists(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert isinstance(exported, list | tuple), f"{name}.__all__ is a {type(exported).__name__}"
    assert all(isinstance(n, str) for n in exported), f"{name}.__all__ holds a non-string"
    duplicates = sorted({n for n in exported if exported.count(n) > 1})
    assert duplicates == [], f"{name}.__all__ repeats {duplicates}"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it does not define: {missing}"


def test_package_exports_resolve() -> None:
    namespace: dict[str, object] = {}
    exec("from willow_core import *", namespace)
    for n in willow_core.__all__:
        assert namespace[n] is getattr(willow_core, n)
