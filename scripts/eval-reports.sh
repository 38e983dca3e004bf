#!/usr/bin/env bash
# The committed example eval reports (docs/eval/): every shared dataset with the default pipeline, retrieval
# and answers, as JSON and self-contained HTML, plus the SQuAD near-miss set; prints each run's wall time.
# Needs the datasets beside the repository (../shared/datasets) and a build (node scripts/build.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${QUARRY_DATASETS:-../shared/datasets}"
mkdir -p docs/eval
run() {
  local name="$1"; shift
  local t0=$SECONDS
  node bin/quarry.js eval "$@" --out "docs/eval/$name.json" --html "docs/eval/$name.html" > "docs/eval/$name.txt"
  echo "$name: $((SECONDS - t0)) s wall — node bin/quarry.js eval $* --out docs/eval/$name.json --html docs/eval/$name.html"
}
for set in scifact nfcorpus cranfield squad-v1.1-dev; do
  if [ ! -d "$DATA/$set" ]; then echo "skipping $set: $DATA/$set is absent"; continue; fi
  run "$set" "$DATA/$set" --answers
done
if [ -d "$DATA/squad-v1.1-dev" ]; then run squad-unanswerable "$DATA/squad-v1.1-dev" --unanswerable 0.1; fi
