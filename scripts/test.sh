#!/usr/bin/env bash
# Sets up (scripts/setup.sh --browser: also Debian's chromium) and runs every check: ruff lint and
# format, mypy --strict (files and options from pyproject's [tool.mypy]), then the whole pytest suite,
# browser tier included (tests/browser: Playwright driving /usr/bin/chromium headless against
# the site build.py makes). Every check runs even when an earlier one fails, so one run shows
# all problems; the exit status is non-zero if any failed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh --browser

failed=()

echo "test: ruff check ."
.venv/bin/ruff check --quiet . || failed+=(ruff)

echo "test: ruff format --check ."
.venv/bin/ruff format --check --quiet . || failed+=(ruff-format)

echo "test: mypy (strict)"
.venv/bin/mypy || failed+=(mypy)

echo "test: pytest"
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test: pytest collected no tests (exit 5); nothing to fail"
    status=0
fi
[ "$status" -eq 0 ] || failed+=(pytest)

if [ "${#failed[@]}" -gt 0 ]; then
    echo "test: FAILED: ${failed[*]}" >&2
    exit 1
fi
