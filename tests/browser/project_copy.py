"""A throwaway copy of the project's build inputs, for tests that change one input and build.

It holds what build.py reads (pyproject.toml, the two packages, web/) with web/node_modules
linked to the real one, so building it needs no network and the real tree is never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import build

__all__ = ["copy_project"]

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")


def copy_project(target: Path) -> Path:
    """Copy the build inputs to ``target`` (created) and return it."""
    target.mkdir(parents=True)
    shutil.copy2(build.ROOT / "pyproject.toml", target / "pyproject.toml")
    for name in (*build.OWN_PACKAGES, "web"):
        shutil.copytree(build.ROOT / name, target / name, ignore=_IGNORED)
    build.ensure_node_modules(build.WEB)
    (target / "web" / "node_modules").symlink_to(build.WEB / "node_modules")
    return target
