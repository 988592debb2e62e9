#!/usr/bin/env bash
# Export the trained v3 world model (side view; encoder + AC predictor) as fp16 into
# experiments/default_model/model, keeping the planning defaults (planning.json) and the model card
# that live beside the weights. v3 was the shipped default until session 15; OUT= exports elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SRC=${SRC:-runs/predictor_v3/final}
OUT=${OUT:-experiments/default_model/model}
"$PY" -m jepa_ac.convert --checkpoint "$SRC" --out runs/default_export --dtype float16
mkdir -p "$OUT"
cp runs/default_export/config.json runs/default_export/model.safetensors "$OUT/"
du -sh "$OUT"
