"""Build the Willow web app into one static folder: ``python build.py [--out site]``.

The folder works from any static host (no special headers: no COOP/COEP) and from the relay's
HTTP side. Everything the page needs is in it, so the app runs fully offline (D12):

- ``index.html`` (from ``web/index.html``, a template) with an inline
  ``<script type="application/json" id="willow-manifest">`` naming every runtime URL;
- ``app/<hash>/``: the frontend files of ``web/`` (main.mjs, worker.mjs, app.css, ...);
- ``pyodide/<hash>/``: the five Pyodide runtime files (npm ``pyodide``, pinned);
- ``vendor/sodium/<hash>/``: libsodium.js as ESM, its bare import rewritten to a relative one
  (workers do not see a page's import map);
- ``vendor/idiomorph.<hash>.mjs``: the DOM-morphing library's ESM build;
- ``wheels/<hash>/``: the pinned cbor2 wasm wheel and our own ``willow_client`` wheel
  (``willow_core`` + ``willow_web``), built here deterministically, with bytecode compiled by
  Pyodide's own Python (under node) so the browser imports modules without compiling them;
- ``dev/``: the test harness page and the bare-Pyodide baseline page.

Every asset URL carries a content hash (a hashed directory where a file name must stay fixed,
as Pyodide's and a wheel's do), so hosts may cache them forever; only the HTML pages change in
place. Manifest URLs are relative to the site root (the directory of ``index.html``).

Network is used only on the first build: ``npm ci`` (when ``web/node_modules`` is missing or
older than ``web/package-lock.json``) and ``pip download`` of the cbor2 wheel into
``.build-cache/``; both are pinned and checked. Compiled bytecode is cached there too. The
same inputs give a byte-identical folder.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import io
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BuildError", "Site", "build_site", "own_wheel", "main"]

ROOT = Path(__file__).resolve().parent
WEB = ROOT / "web"
CACHE = ROOT / ".build-cache"
DEFAULT_OUT = ROOT / "site"

#: Hex digits of SHA-256 kept in hashed names: 64 bits, ample against accidental collisions.
HASH_CHARS = 16
#: Zip timestamps must be constant for a reproducible wheel; 1980-01-01 is zip's epoch.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: Deflate level for our wheel (zlib's output is a pure function of input and level).
ZIP_LEVEL = 9
#: Unix mode recorded for every wheel entry (a regular, world-readable file).
ZIP_FILE_MODE = 0o100644
#: ``create_system`` 3 is Unix: the mode above is then meaningful to unzip tools.
ZIP_UNIX = 3

#: The Pyodide runtime files loadPyodide fetches (the npm package ships no package wheels).
PYODIDE_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
SODIUM_WRAPPERS = "libsodium-wrappers-sumo/dist/modules-sumo-esm/libsodium-wrappers.mjs"
SODIUM_CORE = "libsodium-sumo/dist/modules-sumo-esm/libsodium-sumo.mjs"
#: The one bare specifier in the wrappers' ESM build, and what it becomes in the site.
SODIUM_BARE_IMPORT = re.compile(r"""from\s*(["'])libsodium-sumo\1""")
SODIUM_LOCAL_IMPORT = 'from"./libsodium-sumo.mjs"'
IDIOMORPH_ESM = "idiomorph/dist/idiomorph.esm.js"

#: cbor2 >= 6 is a Rust extension: the browser needs its Pyodide 314 (ABI 2026_0) wheel.
CBOR2_REQUIREMENT = "cbor2==6.2.1"
CBOR2_WHEEL = "cbor2-6.2.1-cp314-cp314-pyemscripten_2026_0_wasm32.whl"
CBOR2_SHA256 = "ce6f9135a62b4aa427bd0104526c75fc1e95ad97409083e377797b6d69a7478d"
PYODIDE_PLATFORM = "pyemscripten_2026_0_wasm32"
PYODIDE_PYTHON = "3.14"

#: Our wheel: the pure core and the browser app, nothing native.
DIST_NAME = "willow_client"
OWN_PACKAGES = ("willow_core", "willow_web")
OWN_SUMMARY = "Willow's browser client: the pure core and the app that runs in Pyodide."

#: Frontend assets go to ``app/<hash>/``: this many directories below the site root.
APP_DIR = "app"
APP_DEPTH = 2
#: runtime.mjs holds this placeholder; the build puts the runtime URLs there (see _built_urls).
RUNTIME_MODULE = "runtime.mjs"
RUNTIME_URLS_MARKER = "/*@willow-runtime-urls@*/ null"
#: Pyodide's site-packages, where loadPackage unpacks our wheel: the bytecode we ship names
#: its sources there, so tracebacks point at real files.
PYODIDE_SITE_PACKAGES = "/lib/python3.14/site-packages"
#: Compiles our modules with Pyodide's own CPython (under node), so the browser imports
#: bytecode instead of compiling every module at each start. Unchecked-hash pycs: the wheel's
#: sources never change under them. Request and answer are JSON files named on the command line.
PYC_COMPILER = r"""
import { readFileSync, writeFileSync } from "node:fs";
const [pyodideDir, requestPath, answerPath] = process.argv.slice(2);
const { loadPyodide } = await import(pyodideDir + "/pyodide.mjs");
const pyodide = await loadPyodide({ indexURL: pyodideDir + "/", packages: [] });
pyodide.globals.set("REQUEST", readFileSync(requestPath, "utf8"));
writeFileSync(answerPath, pyodide.runPython(`
import base64, importlib.util, json, sys
from importlib._bootstrap_external import _code_to_hash_pyc
request = json.loads(REQUEST)
compiled = {}
for name in sorted(request["sources"]):
    source = request["sources"][name].encode()
    code = compile(source, request["prefix"] + name, "exec", dont_inherit=True)
    pyc = _code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)
    compiled[name] = base64.b64encode(bytes(pyc)).decode()
    del code
json.dumps({"tag": sys.implementation.cache_tag, "pyc": compiled})
`));
"""
#: The interpreter tag of Pyodide 314's CPython, as in ``__pycache__/x.cpython-314.pyc``.
PYODIDE_CACHE_TAG = "cpython-314"
#: Files of ``web/`` that are inputs to the build, not frontend assets.
NOT_ASSETS = frozenset({"package.json", "package-lock.json"})
#: HTML templates: the app page and the developer pages (harness, bare baseline).
TEMPLATES = ("index.html", "dev/harness.html", "dev/bare.html")
MANIFEST_ID = "willow-manifest"
#: Written into every output folder; a folder without it is never deleted by a rebuild.
SITE_MARKER = ".willow-site"
NPM_STAMP = ".willow-lock-sha256"


class BuildError(Exception):
    """The site cannot be built (a missing tool, input or a pinned file that does not match)."""


@dataclass(frozen=True, slots=True)
class Site:
    """A built site: where it is and the manifest its pages carry."""

    root: Path
    manifest: dict[str, object]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


def _tree_digest(files: Mapping[str, bytes]) -> str:
    """One hash over named contents: a directory's name changes whenever any file does."""
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:HASH_CHARS]


# --- inputs: npm packages and the cbor2 wheel --------------------------------------------------


def ensure_node_modules(web: Path = WEB) -> Path:
    """Run ``npm ci`` when node_modules is missing or was installed from another lock file."""
    lock = web / "package-lock.json"
    if not lock.is_file():
        raise BuildError(f"{lock} is missing; it is committed with package.json")
    modules = web / "node_modules"
    want = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = modules / NPM_STAMP
    if stamp.is_file() and stamp.read_text().strip() == want:
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is not installed (Debian: apt-get install -y npm)")
    print("build: npm ci (web/package-lock.json)", file=sys.stderr)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefer-offline"],
        cwd=web,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BuildError(f"npm ci failed:\n{done.stdout}\n{done.stderr}")
    stamp.write_text(want + "\n")
    return modules


#: Pure-Python wheels the app needs in Pyodide: (file, requirement, sha256). segno draws the
#: invite QR codes.
PURE_WHEELS = (
    (
        "segno-1.6.6-py3-none-any.whl",
        "segno==1.6.6",
        "28c7d081ed0cf935e0411293a465efd4d500704072cdb039778a2ab8736190c7",
    ),
)


def _pinned_wheel(
    name: str, requirement: str, sha256: str, cache: Path, pip_args: tuple[str, ...] = ()
) -> Path:
    """Wheel ``name`` of ``requirement``, downloaded once with pip (``pip_args``: a platform
    other than this one) and checked against its hash."""
    target = cache / "wheels" / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        platform = f" ({pip_args[pip_args.index('--platform') + 1]})" if pip_args else ""
        print(f"build: pip download {requirement}{platform}", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            done = subprocess.run(
                [
                    sys.executable,
                    *("-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"),
                    *pip_args,
                    *("--dest", scratch, requirement),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            fetched = Path(scratch) / name
            if done.returncode != 0 or not fetched.is_file():
                raise BuildError(f"pip download {requirement} failed:\n{done.stderr}")
            fetched.replace(target)
    actual = hashlib.sha256(target.read_bytes()).hexdigest()
    if actual != sha256:
        raise BuildError(f"{target} has sha256 {actual}, expected {sha256}")
    return target


def ensure_pure_wheel(name: str, requirement: str, sha256: str, cache: Path = CACHE) -> Path:
    """A pinned py3-none-any wheel, downloaded once with pip and checked against its hash."""
    return _pinned_wheel(name, requirement, sha256, cache)


def ensure_cbor2_wheel(cache: Path = CACHE) -> Path:
    """The pinned cbor2 wasm wheel, downloaded once with pip and checked against its hash."""
    wasm = ("--platform", PYODIDE_PLATFORM, "--python-version", PYODIDE_PYTHON)
    abi = ("--implementation", "cp", "--abi", "cp314")
    return _pinned_wheel(CBOR2_WHEEL, CBOR2_REQUIREMENT, CBOR2_SHA256, cache, wasm + abi)


# --- our own wheel -----------------------------------------------------------------------------


def _project_version(root: Path) -> str:
    with (root / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def _package_files(root: Path, packages: Iterable[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for package in packages:
        base = root / package
        if not (base / "__init__.py").is_file():
            raise BuildError(f"package {package} not found under {root}")
        for path in base.rglob("*"):
            rel = path.relative_to(root)
            if not path.is_file() or any(
                part == "__pycache__" or part.startswith(".") for part in rel.parts
            ):
                continue
            if path.suffix in (".pyc", ".pyo"):
                continue
            files[rel.as_posix()] = path.read_bytes()
    return files


def _record_hash(data: bytes) -> str:
    raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + raw.decode()


def pyodide_bytecode(
    sources: Mapping[str, bytes], modules: Path, cache: Path = CACHE
) -> dict[str, bytes]:
    """``__pycache__`` entries for every ``.py`` in ``sources``, compiled by Pyodide's Python.

    Each result is cached under ``.build-cache/pyc/`` by a hash of the runtime and the source,
    so only changed modules pay for booting Pyodide under node (a few seconds).
    """
    runtime = hashlib.sha256((modules / "pyodide" / "pyodide-lock.json").read_bytes()).digest()
    store = cache / "pyc"
    wanted: dict[str, Path] = {}
    for name, source in sources.items():
        if name.endswith(".py"):
            key = hashlib.sha256(runtime + name.encode() + b"\0" + source).hexdigest()
            wanted[name] = store / f"{key}.pyc"
    missing = {name: sources[name] for name, path in wanted.items() if not path.is_file()}
    if missing:
        for name, pyc in _compile_with_pyodide(missing, modules).items():
            store.mkdir(parents=True, exist_ok=True)
            path = wanted[name]
            scratch = path.with_suffix(f".{os.getpid()}.tmp")
            scratch.write_bytes(pyc)
            scratch.replace(path)
    out: dict[str, bytes] = {}
    for name, path in wanted.items():
        directory, _, file = name.rpartition("/")
        stem = file.removesuffix(".py")
        out[f"{directory}/__pycache__/{stem}.{PYODIDE_CACHE_TAG}.pyc"] = path.read_bytes()
    return out


def _compile_with_pyodide(sources: Mapping[str, bytes], modules: Path) -> dict[str, bytes]:
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not installed (Debian: apt-get install -y nodejs)")
    print(f"build: compiling {len(sources)} modules with Pyodide", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        script, request, answer = (Path(scratch) / n for n in ("c.mjs", "req.json", "ans.json"))
        script.write_text(PYC_COMPILER)
        request.write_text(
            json.dumps(
                {
                    "prefix": PYODIDE_SITE_PACKAGES + "/",
                    "sources": {name: data.decode() for name, data in sources.items()},
                }
            )
        )
        pyodide_dir = (modules / "pyodide").resolve().as_posix()
        done = subprocess.run(
            [node, str(script), pyodide_dir, str(request), str(answer)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not answer.is_file():
            raise BuildError(f"compiling with Pyodide failed:\n{done.stdout}\n{done.stderr}")
        result = json.loads(answer.read_text())
    if result["tag"] != PYODIDE_CACHE_TAG:
        raise BuildError(f"Pyodide's cache tag is {result['tag']}, expected {PYODIDE_CACHE_TAG}")
    return {name: base64.b64decode(data) for name, data in result["pyc"].items()}


def own_wheel(
    root: Path = ROOT, *, modules: Path | None = None, cache: Path = CACHE
) -> tuple[str, bytes]:
    """Our py3-none-any wheel as ``(file name, bytes)``, byte-identical for the same sources.

    Written with zipfile rather than a build backend so that nothing varies: entries sorted,
    timestamps and modes fixed, dist-info last with RECORD at the very end. With ``modules``
    (web/node_modules), it also carries Pyodide bytecode for every module (CPython ignores it:
    its cache tag differs).
    """
    version = _project_version(root)
    files = _package_files(root, OWN_PACKAGES)
    if modules is not None:
        files.update(pyodide_bytecode(files, modules, cache))
    info = f"{DIST_NAME}-{version}.dist-info"
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {DIST_NAME.replace('_', '-')}\n"
        f"Version: {version}\n"
        f"Summary: {OWN_SUMMARY}\n"
        "Requires-Python: >=3.11\n"
        f"Requires-Dist: {CBOR2_REQUIREMENT}\n"
    )
    wheel_meta = (
        "Wheel-Version: 1.0\nGenerator: willow-build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    entries = sorted(files.items())
    entries += [
        (f"{info}/METADATA", metadata.encode()),
        (f"{info}/WHEEL", wheel_meta.encode()),
        (f"{info}/top_level.txt", "".join(f"{p}\n" for p in OWN_PACKAGES).encode()),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    entries.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries:
            entry = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            entry.external_attr = ZIP_FILE_MODE << 16
            entry.create_system = ZIP_UNIX
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data, compresslevel=ZIP_LEVEL)
    return f"{DIST_NAME}-{version}-py3-none-any.whl", out.getvalue()


# --- the site ----------------------------------------------------------------------------------


class _Out:
    """Files of the site being built, by POSIX path relative to its root."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def add(self, path: str, data: bytes) -> str:
        if path in self.files:
            raise BuildError(f"two outputs at {path}")
        self.files[path] = data
        return path

    def add_hashed_dir(self, prefix: str, files: Mapping[str, bytes]) -> str:
        """Put ``files`` under ``prefix/<hash of them all>/``; returns that directory."""
        directory = f"{prefix}/{_tree_digest(files)}"
        for name, data in sorted(files.items()):
            self.add(f"{directory}/{name}", data)
        return directory

    def add_hashed_file(self, directory: str, stem: str, suffix: str, data: bytes) -> str:
        return self.add(f"{directory}/{stem}.{_digest(data)}{suffix}", data)


def _frontend_files(web: Path) -> dict[str, bytes]:
    """Every asset of ``web/``: not the templates, npm's files, or anything hidden."""
    files: dict[str, bytes] = {}
    for path in web.rglob("*"):
        rel = path.relative_to(web)
        if not path.is_file() or rel.parts[0] == "node_modules":
            continue
        name = rel.as_posix()
        if name in NOT_ASSETS or name in TEMPLATES or any(p.startswith(".") for p in rel.parts):
            continue
        files[name] = path.read_bytes()
    return files


_URL_ATTRIBUTE = re.compile(r"""(\s(?:src|href)\s*=\s*)(["'])([^"']+)\2""")


def _render_page(
    template: str, text: str, assets: Mapping[str, str], manifest: Mapping[str, object]
) -> bytes:
    """Inject the manifest and point ``src``/``href`` at the hashed copies of web/ files.

    ``assets`` maps a web/-relative path to its site-relative path; attribute values are
    resolved against the template's own directory, so ``dev/x.html`` may say ``src="x.mjs"``.
    """
    page_dir = posixpath.dirname(template)
    root = posixpath.relpath(".", page_dir or ".") if page_dir else "."
    page_manifest = {**manifest, "root": root + "/"}

    def rewrite(match: re.Match[str]) -> str:
        value = html.unescape(match.group(3))
        if "://" in value or value.startswith(("/", "#", "data:")):
            return match.group(0)
        key = posixpath.normpath(posixpath.join(page_dir, value.split("?")[0]))
        if key not in assets:
            return match.group(0)
        target = posixpath.relpath(assets[key], page_dir or ".")
        return f"{match.group(1)}{match.group(2)}{html.escape(target)}{match.group(2)}"

    text = _URL_ATTRIBUTE.sub(rewrite, text)
    payload = json.dumps(page_manifest, sort_keys=True, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")  # never closes the script element early
    tag = f'<script type="application/json" id="{MANIFEST_ID}">{payload}</script>'
    existing = re.compile(
        rf"""<script[^>]*\bid=["']{MANIFEST_ID}["'][^>]*>.*?</script>""", re.DOTALL
    )
    head = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
    if existing.search(text):
        text = existing.sub(lambda _: tag, text, count=1)
    elif head.search(text):
        # First in <head>: before any script, so even a classic inline script can read it.
        text = head.sub(lambda m: f"{m.group(0)}\n{tag}", text, count=1)
    else:
        raise BuildError(f"web/{template} has no <head> to put the manifest in")
    return text.encode()


def _built_urls(module: bytes, pyodide: str, sodium: str, wheels: list[str]) -> bytes:
    """Write the runtime URLs into runtime.mjs, so the worker starts loading as it is evaluated.

    They are relative to the site root, given as a path relative to the module itself; none of
    them depends on the app directory's hash, which this content then feeds (no cycle).
    """
    urls = {"root": "../" * APP_DEPTH, "pyodide": pyodide, "sodium": sodium, "wheels": wheels}
    text = module.decode()
    if text.count(RUNTIME_URLS_MARKER) != 1:
        raise BuildError(f"web/{RUNTIME_MODULE} must hold {RUNTIME_URLS_MARKER!r} exactly once")
    payload = json.dumps(urls, sort_keys=True, separators=(",", ":"))
    return text.replace(RUNTIME_URLS_MARKER, payload).encode()


def _collect(
    root: Path, web: Path, modules: Path, cbor2_wheel: Path, cache: Path
) -> tuple[_Out, dict[str, object]]:
    out = _Out()

    runtime: dict[str, bytes] = {}
    for name in PYODIDE_FILES:
        path = modules / "pyodide" / name
        if not path.is_file():
            raise BuildError(f"{path} is missing: is web/node_modules complete?")
        runtime[name] = path.read_bytes()
    pyodide_dir = out.add_hashed_dir("pyodide", runtime)

    wrappers = (modules / SODIUM_WRAPPERS).read_text()
    rewritten, count = SODIUM_BARE_IMPORT.subn(SODIUM_LOCAL_IMPORT, wrappers)
    if count != 1:
        raise BuildError(f"{SODIUM_WRAPPERS}: expected one bare libsodium-sumo import, saw {count}")
    sodium_dir = out.add_hashed_dir(
        "vendor/sodium",
        {
            "libsodium-wrappers.mjs": rewritten.encode(),
            "libsodium-sumo.mjs": (modules / SODIUM_CORE).read_bytes(),
        },
    )
    idiomorph = out.add_hashed_file(
        "vendor", "idiomorph", ".mjs", (modules / IDIOMORPH_ESM).read_bytes()
    )

    wheel_name, wheel_bytes = own_wheel(root, modules=modules, cache=cache)
    wheels = [
        out.add_hashed_dir("wheels", {CBOR2_WHEEL: cbor2_wheel.read_bytes()}) + "/" + CBOR2_WHEEL,
        *(
            out.add_hashed_dir("wheels", {name: ensure_pure_wheel(name, req, sha).read_bytes()})
            + "/"
            + name
            for name, req, sha in PURE_WHEELS
        ),
        out.add_hashed_dir("wheels", {wheel_name: wheel_bytes}) + "/" + wheel_name,
    ]

    frontend = _frontend_files(web)
    if "worker.mjs" not in frontend:
        raise BuildError("web/worker.mjs is missing")
    if RUNTIME_MODULE in frontend:
        sodium = f"{sodium_dir}/libsodium-wrappers.mjs"
        frontend[RUNTIME_MODULE] = _built_urls(
            frontend[RUNTIME_MODULE], pyodide_dir + "/", sodium, wheels
        )
    app_dir = out.add_hashed_dir(APP_DIR, frontend)
    assets = {name: f"{app_dir}/{name}" for name in frontend}

    manifest: dict[str, object] = {
        "version": 1,
        "worker": assets["worker.mjs"],
        "wheels": wheels,
        "pyodide": pyodide_dir + "/",
        "sodium": f"{sodium_dir}/libsodium-wrappers.mjs",
        "idiomorph": idiomorph,
        "css": assets.get("app.css"),
        "main": assets.get("main.mjs"),
    }
    manifest = {k: v for k, v in manifest.items() if v is not None}
    for template in TEMPLATES:
        source = web / template
        if not source.is_file():
            if template == "index.html":
                raise BuildError("web/index.html is missing")
            continue
        out.add(template, _render_page(template, source.read_text(), assets, manifest))
    out.add(SITE_MARKER, b"A built Willow site (build.py); rebuilt in full each time.\n")
    return out, manifest


def _write(out: _Out, target: Path) -> None:
    """Write the files to a sibling folder, then swap it in (a failed build leaves no half)."""
    if target.exists() and any(target.iterdir()) and not (target / SITE_MARKER).exists():
        raise BuildError(f"{target} exists and is not a built site; refusing to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for name, data in sorted(out.files.items()):
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        os.chmod(staging, 0o755)
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def build_site(out: Path = DEFAULT_OUT, *, root: Path = ROOT, cache: Path = CACHE) -> Site:
    """Build the site into ``out`` (replacing a previous build there) and return its manifest."""
    web = root / "web"
    modules = ensure_node_modules(web)
    cbor2_wheel = ensure_cbor2_wheel(cache)
    files, manifest = _collect(root, web, modules, cbor2_wheel, cache)
    _write(files, out.resolve())
    return Site(out.resolve(), manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (site/)")
    args = parser.parse_args(argv)
    try:
        site = build_site(args.out)
    except BuildError as e:
        print(f"build: {e}", file=sys.stderr)
        return 1
    count = sum(1 for p in site.root.rglob("*") if p.is_file())
    print(f"build: {count} files in {site.root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
