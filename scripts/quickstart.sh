#!/usr/bin/env bash
# Quick start: install dependencies, build, ingest the bundled sample corpus into ./.quarry, answer a question.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir="${npm_config_nodedir:-/usr}"   # node-gyp builds better-sqlite3 against local headers
export ONNXRUNTIME_NODE_INSTALL=skip   # onnxruntime-node: use the bundled CPU binaries, download nothing
# Install exactly the lockfile when node_modules is missing or older than it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
node bin/quarry.js ingest samples/docs
node bin/quarry.js ask "How does Quarry keep the store consistent when a process is killed during ingest?"
