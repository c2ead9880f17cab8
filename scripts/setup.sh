#!/usr/bin/env bash
# Sets up a fresh Debian machine for Willow: a virtualenv in .venv with the project installed in
# editable mode plus its dev tools, and Node's npm (build.py fetches the web app's pinned npm
# packages with it). With --browser it also installs Debian's chromium, which the browser tests
# drive through Playwright (Playwright's own browser download cannot work here). Idempotent: a
# second run only re-installs when pyproject.toml changed. Needs python3 >= 3.11; works from any
# directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf 'setup: %s\n' "$*"; }

browser=0
for arg in "$@"; do
    case "$arg" in
        --browser) browser=1 ;;
        *) echo "setup: unknown option $arg (known: --browser)" >&2; exit 2 ;;
    esac
done

apt_updated=0
# Installs Debian packages as root (CI and fresh machines run as root); otherwise says how.
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: missing $*; run: sudo apt-get install -y $*" >&2
        exit 1
    fi
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    say "installing $* (Debian)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
if [ "$browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "setup: python3 not found; install it first (apt-get install python3 python3-venv)" >&2
    exit 1
fi
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: python3 >= 3.11 is required, found $(python3 --version 2>&1)" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    # Debian splits venv/ensurepip into python3-venv; install it when we can.
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    say "creating virtualenv in $root/.venv"
    python3 -m venv .venv
fi

# Re-install only when the dependency declaration changed (or nothing was installed yet).
stamp=.venv/.willow-setup-stamp
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && .venv/bin/python -c 'import importlib.metadata as m; [m.version(d) for d in ("willow", "pytest", "mypy", "ruff", "playwright")]' >/dev/null 2>&1; then
    say "environment up to date ($(.venv/bin/python --version))"
    exit 0
fi

# pip's chatter goes to a log that is shown only when a step fails.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
pip_quiet() {
    if ! .venv/bin/python -m pip install --quiet "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: pip install $* failed" >&2
        exit 1
    fi
}
say "upgrading pip"
pip_quiet --upgrade pip
say "installing willow (editable) with dev tools"
pip_quiet -e '.[dev]'
printf '%s\n' "$want" >"$stamp"
say "done: $(.venv/bin/python --version), tools in .venv/bin"
