#!/usr/bin/env bash
# The one command that sets up a fresh machine and runs the whole Willow stack on localhost:
# a relay (WebSocket, TCP and HTTP endpoints) and both workers (storage and replay), with
# persistent identities and data under .willow/, and the web app: build.py builds it into site/
# (offline after the first run) and the relay's HTTP side serves it, same origin as the relay's
# capability document. It prints where to connect (the "web app" line is the URL to open);
# Ctrl+C stops it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/setup.sh
.venv/bin/python build.py --out site
exec .venv/bin/willow up --data .willow --static site "$@"
