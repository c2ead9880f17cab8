#!/usr/bin/env bash
# The one command that sets up a fresh machine and runs the whole Willow stack.
# Today only the core exists, so "the stack" is the in-process demo: three replicas of one
# community, an in-memory relay, and proof that they converge. Later issues make this start
# the relay, the replay and storage workers and the web app on localhost, and print its URL.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh
exec .venv/bin/python -m relay.demo
