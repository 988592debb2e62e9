#!/usr/bin/env bash
# Train the shipped default world model end to end on CPU (about 1.5 hours on the 2-core machine):
# collect (collect.sh) -> V-JEPA pretraining -> latent cache -> AC predictor -> fp16 export.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -f data/sim128/all.txt ] || bash experiments/default_model/collect.sh
"$PY" -m jepa_ac.pretrain_encoder --config experiments/default_model/pretrain.yaml --resume true
"$PY" -m jepa_ac.encode_dataset --data data/sim128/all.txt --checkpoint runs/pretrain_long/final \
  --out runs/default_v2/latents.zarr --no-progress
"$PY" -m jepa_ac.train_predictor --config experiments/default_model/predictor.yaml --resume true
bash experiments/default_model/export.sh
