#!/usr/bin/env bash
# Export the trained default world model (encoder + AC predictor) as fp16 into the package, keeping
# the planning defaults (planning.json) and the model card that live beside the weights.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SRC=${SRC:-runs/predictor_v3/final}
"$PY" -m jepa_ac.convert --checkpoint "$SRC" --out runs/default_export --dtype float16
cp runs/default_export/config.json runs/default_export/model.safetensors jepa_ac/assets/default_model/
du -sh jepa_ac/assets/default_model
