#!/usr/bin/env bash
# The front-view world model (v4 candidate, experiments/front_view/model), on CPU (about 45 minutes on
# the 2-core machine): collect the sim128 dataset from the front view (9 min) -> continue the
# v3 (side view) encoder on its video (1800 steps, 23 min) -> latent cache (5 min) -> AC predictor
# with the shipped recipe (1400 steps, 9 min) -> fp16 export to runs/front_export.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -f data/sim128_front/all.txt ] || VIEW=front bash experiments/default_model/collect.sh
# the v3 model (side view) the encoder starts from: the default model until session 15, now in
# experiments/default_model/model (the same bytes as shipped at commit cd5f73b; INIT=runs/pretrain_xl/final:
# the same encoder in fp32, from ../default_model/train.sh)
INIT=${INIT:-experiments/default_model/model}
"$PY" -m jepa_ac.pretrain_encoder --config experiments/front_view/pretrain.yaml --init-from "$INIT" --resume true
"$PY" -m jepa_ac.encode_dataset --data data/sim128_front/all.txt --checkpoint runs/pretrain_front/final \
  --out runs/front_v1/latents.zarr --no-progress
"$PY" -m jepa_ac.train_predictor --config experiments/front_view/predictor.yaml --resume true
"$PY" -m jepa_ac.convert --checkpoint runs/predictor_front/final --out runs/front_export --dtype float16
