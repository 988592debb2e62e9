#!/usr/bin/env bash
# The longer front-view world model (v5 candidate), on CPU (about 55 minutes on the 2-core machine):
# the v4 candidate's encoder (model/) continued for 3000 more steps on the front-view video (36 min)
# -> latent cache (5 min) -> AC predictor with the shipped recipe (1400 steps, 10 min) -> fp16 export
# to runs/front_long_export (committed as experiments/front_view/long/model, with model/planning.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -f data/sim128_front/all.txt ] || VIEW=front bash experiments/default_model/collect.sh
"$PY" -m jepa_ac.pretrain_encoder --config experiments/front_view/pretrain_long.yaml --resume true
"$PY" -m jepa_ac.encode_dataset --data data/sim128_front/all.txt --checkpoint runs/pretrain_front_long/final \
  --out runs/front_long/latents.zarr --no-progress
"$PY" -m jepa_ac.train_predictor --config experiments/front_view/predictor_long.yaml --resume true
"$PY" -m jepa_ac.convert --checkpoint runs/predictor_front_long/final --out runs/front_long_export --dtype float16
