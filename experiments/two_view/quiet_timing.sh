#!/usr/bin/env bash
# Time per planning step of the shipped model with both views and with the front view alone (the
# same folder: a one-view frame plans with the front model alone), on the same episodes, 2 torch
# threads, nothing else running (bf16 where the CPU has it).
#   bash experiments/two_view/quiet_timing.sh     # ~5 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=experiments/two_view/quiet_timing
for task in reach push pickplace; do
  "$PY" -m jepa_ac.evaluate --env "$task" --episodes 2 --threads 2 --no-progress --out "$OUT/two_views"
  "$PY" -m jepa_ac.evaluate --env "$task" --episodes 2 --threads 2 --no-progress --exterior-view front --out "$OUT/front_only"
done
