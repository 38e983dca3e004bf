#!/usr/bin/env bash
# Quick start: install dependencies, ingest the bundled sample corpus into ./.quarry, answer a question.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir="${npm_config_nodedir:-/usr}"   # node-gyp builds better-sqlite3 against local headers
export ONNXRUNTIME_NODE_INSTALL=skip   # onnxruntime-node: use the bundled CPU binaries, download nothing
# Install when node_modules is missing or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # (npm install from the lockfile: see .ci/run for why not npm ci)
  npm install --no-audit --no-fund
fi
node bin/quarry.js ingest samples/docs
node bin/quarry.js ask "How does Quarry keep the store consistent when a process is killed during ingest?"
