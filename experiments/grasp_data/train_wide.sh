#!/usr/bin/env bash
# The larger predictor (issue 31, session 25): predictor_wide.yaml (192 wide, 6 deep, seed 1; the shipped
# recipe otherwise) on the grasp data's cache (train.sh makes runs/grasp/latents.zarr), about 10 min in
# bf16 on the 2-core AMX host -> runs/wide_export: the shipped encoder with this predictor alone (fp16)
# and the shipped planning.json (plan pick-and-place with --cem ensemble=false: it has no ensemble).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -f runs/grasp/latents.zarr/zarr.json ] || DATA=grasp bash experiments/grasp_data/train.sh
"$PY" -m jepa_ac.train_predictor --config experiments/grasp_data/predictor_wide.yaml --resume true
"$PY" -m jepa_ac.convert --checkpoint runs/predictor_wide_s1/final --out runs/wide_export --dtype float16
cp jepa_ac/assets/default_model/planning.json runs/wide_export/
echo "runs/wide_export: the shipped encoder with the 192 x 6 predictor"
