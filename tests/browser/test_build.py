"""build.py: a reproducible, self-contained static site with content-named assets."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import zipfile
from base64 import urlsafe_b64encode
from pathlib import Path

import pytest
from project_copy import copy_project

import build
from build import BuildError, Site, build_site, own_wheel

MANIFEST = re.compile(r'<script type="application/json" id="willow-manifest">(.*?)</script>')


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def page_manifest(page: Path) -> dict[str, object]:
    match = MANIFEST.search(page.read_text())
    assert match is not None, f"no manifest in {page}"
    return dict(json.loads(match.group(1)))


def test_same_inputs_give_a_byte_identical_site(tmp_path: Path) -> None:
    # A snapshot of the inputs, so edits to the working tree during the run cannot interfere.
    root = copy_project(tmp_path / "project")
    first = build_site(tmp_path / "first", root=root)
    again = build_site(tmp_path / "again", root=root)
    assert files_of(again.root) == files_of(first.root)
    assert again.manifest == first.manifest
    assert len(files_of(first.root)) > len(build.PYODIDE_FILES)


def test_manifest_names_files_that_exist(site: Site) -> None:
    m = site.manifest
    wheels = m["wheels"]
    assert isinstance(wheels, list)
    names = [Path(w).name for w in wheels]
    # Load order: dependencies first, our own wheel (which imports them) last.
    assert names[0] == build.CBOR2_WHEEL
    assert names[-1] == "willow_client-0.1.0-py3-none-any.whl"
    assert len(set(names)) == len(names)
    for key in ("worker", "sodium", "idiomorph", "css", "main"):
        assert (site.root / str(m[key])).is_file(), key
    for wheel in wheels:
        assert (site.root / wheel).is_file()
    for name in build.PYODIDE_FILES:
        assert (site.root / str(m["pyodide"]) / name).is_file()


def test_pages_carry_the_manifest_and_hashed_references(site: Site) -> None:
    index = site.root / "index.html"
    assert page_manifest(index) == {**site.manifest, "root": "./"}
    assert page_manifest(site.root / "dev" / "harness.html") == {**site.manifest, "root": "../"}
    text = index.read_text()
    assert f'href="{site.manifest["css"]}"' in text
    assert f'src="{site.manifest["main"]}"' in text
    assert 'href="app.css"' not in text
    assert 'src="main.mjs"' not in text
    harness = (site.root / "dev" / "harness.html").read_text()
    assert re.search(r'src="\.\./app/[0-9a-f]{16}/dev/harness\.mjs"', harness)


def test_every_asset_is_content_named(site: Site) -> None:
    hashed = re.compile(r"(?:^|[/.])[0-9a-f]{16}[/.]")
    pages = {"index.html", "dev/harness.html", "dev/bare.html", build.SITE_MARKER}
    for name in files_of(site.root):
        assert name in pages or hashed.search(name), name
    # The relay applies the same rule when it decides what may be cached forever.
    from relay.http import HASHED_ASSET

    assert HASHED_ASSET.pattern == hashed.pattern


def test_sodium_import_is_rewritten_to_a_relative_one(site: Site) -> None:
    wrappers = (site.root / str(site.manifest["sodium"])).read_text()
    assert 'from"./libsodium-sumo.mjs"' in wrappers
    assert not re.search(r"""from\s*["']libsodium-sumo["']""", wrappers)
    assert (site.root / str(site.manifest["sodium"])).with_name("libsodium-sumo.mjs").is_file()


def test_runtime_module_carries_the_manifest_urls(site: Site) -> None:
    # The worker starts loading from these before the page's boot message arrives; they must
    # be the very URLs the manifest names, relative to the module's own directory.
    worker = str(site.manifest["worker"])
    runtime = site.root / worker.rsplit("/", 1)[0] / build.RUNTIME_MODULE
    text = runtime.read_text()
    assert build.RUNTIME_URLS_MARKER not in text
    match = re.search(r"const BUILT = (\{.*?\});", text)
    assert match is not None
    built = json.loads(match.group(1))
    base = runtime.parent

    def resolve(url: str) -> Path:
        return (base / str(built["root"]) / url).resolve()

    assert resolve(built["pyodide"]) == (site.root / str(site.manifest["pyodide"])).resolve()
    assert resolve(built["sodium"]) == (site.root / str(site.manifest["sodium"])).resolve()
    wheels = site.manifest["wheels"]
    assert isinstance(wheels, list)
    assert [resolve(w) for w in built["wheels"]] == [(site.root / w).resolve() for w in wheels]


def test_own_wheel_is_deterministic_and_well_formed() -> None:
    name, data = own_wheel()
    assert own_wheel() == (name, data)
    assert name == "willow_client-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        tops = {n.split("/")[0] for n in names}
        assert tops == {"willow_core", "willow_web", "willow_client-0.1.0.dist-info"}
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        assert all(i.date_time == build.ZIP_EPOCH for i in infos)
        assert names[-1] == "willow_client-0.1.0.dist-info/RECORD"
        sources = [n for n in names if not n.startswith("willow_client")]
        assert sources == sorted(sources)
        for source in sources:
            assert zf.read(source) == (build.ROOT / source).read_bytes()
        assert "willow_core/crypto/__init__.py" in names
        assert "willow_web/sodium_backend.py" in names
        metadata = zf.read("willow_client-0.1.0.dist-info/METADATA").decode()
        assert "Name: willow-client\n" in metadata
        wheel_meta = zf.read("willow_client-0.1.0.dist-info/WHEEL").decode()
        assert "Tag: py3-none-any\n" in wheel_meta
        record = zf.read(names[-1]).decode().splitlines()
        assert len(record) == len(names)
        for line in record[:-1]:
            path, digest, size = line.split(",")
            body = zf.read(path)
            expected = urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(body)), path
        assert record[-1] == "willow_client-0.1.0.dist-info/RECORD,,"


def test_site_wheel_carries_pyodide_bytecode_for_every_module(site: Site) -> None:
    wheels = site.manifest["wheels"]
    assert isinstance(wheels, list)
    with zipfile.ZipFile(site.root / wheels[-1]) as zf:
        names = set(zf.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert sources
        for source in sources:
            directory, _, file = source.rpartition("/")
            pyc = f"{directory}/__pycache__/{file[:-3]}.{build.PYODIDE_CACHE_TAG}.pyc"
            assert pyc in names, source
            header = zf.read(pyc)[:8]
            # Pyodide's magic number, not this interpreter's; flags 1 = unchecked hash-based.
            assert header[:4] != importlib.util.MAGIC_NUMBER
            assert int.from_bytes(header[4:8], "little") == 1
        assert len([n for n in names if n.endswith(".pyc")]) == len(sources)


def test_changing_one_input_renames_only_what_it_touches(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    base = build_site(tmp_path / "site", root=root).manifest
    css = root / "web" / "app.css"
    css.write_text(css.read_text() + "\n/* changed */\n")
    changed = build_site(tmp_path / "site", root=root).manifest
    assert changed["css"] != base["css"]
    assert changed["worker"] != base["worker"]  # the app directory moved as a whole
    for same in ("pyodide", "sodium", "idiomorph", "wheels"):
        assert changed[same] == base[same], same

    module = root / "willow_core" / "hlc.py"
    module.write_text(module.read_text() + "\n# changed\n")
    rebuilt = build_site(tmp_path / "site", root=root).manifest
    assert isinstance(rebuilt["wheels"], list)
    assert isinstance(base["wheels"], list)
    assert rebuilt["wheels"][:-1] == base["wheels"][:-1]  # pinned wheels keep their URLs
    assert rebuilt["wheels"][-1] != base["wheels"][-1]  # ours is renamed
    # runtime.mjs names the wheels, so the app directory follows our wheel's new name.
    assert rebuilt["worker"] != changed["worker"]
    assert rebuilt["pyodide"] == changed["pyodide"]


def test_a_folder_that_is_not_a_site_is_never_replaced(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BuildError, match="not a built site"):
        build_site(precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_a_tampered_cbor2_wheel_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "wheels" / build.CBOR2_WHEEL
    wheel.parent.mkdir()
    wheel.write_bytes(b"not the pinned wheel")
    with pytest.raises(BuildError, match="sha256"):
        build.ensure_cbor2_wheel(tmp_path)
