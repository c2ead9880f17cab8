#!/usr/bin/env bash
# The one command that sets up a fresh machine and runs the whole Willow stack on localhost:
# a relay (WebSocket, TCP and HTTP endpoints) and both workers (storage and replay), with
# persistent identities and data under .willow/. It prints where to connect; Ctrl+C stops it.
# The browser app joins this stack in a later issue (served from the relay's HTTP side).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh
exec .venv/bin/willow up --data .willow "$@"
