#!/usr/bin/env bash
# Train the shipped default world model end to end on CPU (about 2.5 hours on the 2-core machine):
# collect (collect.sh) -> V-JEPA pretraining (2400 steps, then continued to 4800) -> latent cache ->
# AC predictor -> fp16 export.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -f data/sim128/all.txt ] || bash experiments/default_model/collect.sh
"$PY" -m jepa_ac.pretrain_encoder --config experiments/default_model/pretrain.yaml --resume true
# continue a copy to 4800 steps: the cosine schedule is stretched, so the learning rate restarts at
# about half its peak and decays again (the shipped encoder is this run's target encoder)
[ -d runs/pretrain_xl ] || cp -r runs/pretrain_long runs/pretrain_xl
"$PY" -m jepa_ac.pretrain_encoder --config experiments/default_model/pretrain.yaml --out runs/pretrain_xl \
  --steps 4800 --resume true
"$PY" -m jepa_ac.encode_dataset --data data/sim128/all.txt --checkpoint runs/pretrain_xl/final \
  --out runs/default_v3/latents.zarr --no-progress
"$PY" -m jepa_ac.train_predictor --config experiments/default_model/predictor.yaml --resume true
bash experiments/default_model/export.sh
