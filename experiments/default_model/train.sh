#!/usr/bin/env bash
# Train the shipped default world model end to end on CPU (about 4.5 hours on the 2-core machine):
# 1. v3, side view (2.5 h): collect (collect.sh) -> V-JEPA pretraining (2400 steps, then continued to
#    4800) -> latent cache -> AC predictor -> fp16 export to experiments/default_model/model.
# 2. the front view (experiments/front_view): collect again from the front camera, continue v3's
#    encoder 1800 steps on that video (train.sh, v4), then 3000 more, and train the predictor with
#    seed 1 (train_long.sh) -> runs/front_long_s1_export, copied into jepa_ac/assets/default_model.
# STAGE=side stops after step 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -f data/sim128/all.txt ] || bash experiments/default_model/collect.sh
"$PY" -m jepa_ac.pretrain_encoder --config experiments/default_model/pretrain.yaml --resume true
# continue a copy to 4800 steps: the cosine schedule is stretched, so the learning rate restarts at
# about half its peak and decays again (v3's encoder is this run's target encoder)
[ -d runs/pretrain_xl ] || cp -r runs/pretrain_long runs/pretrain_xl
"$PY" -m jepa_ac.pretrain_encoder --config experiments/default_model/pretrain.yaml --out runs/pretrain_xl \
  --steps 4800 --resume true
"$PY" -m jepa_ac.encode_dataset --data data/sim128/all.txt --checkpoint runs/pretrain_xl/final \
  --out runs/default_v3/latents.zarr --no-progress
"$PY" -m jepa_ac.train_predictor --config experiments/default_model/predictor.yaml --resume true
bash experiments/default_model/export.sh
[ "${STAGE:-all}" = side ] && exit 0
INIT=experiments/default_model/model bash experiments/front_view/train.sh
INIT=runs/front_export SEED=1 bash experiments/front_view/train_long.sh
cp runs/front_long_s1_export/config.json runs/front_long_s1_export/model.safetensors jepa_ac/assets/default_model/
du -sh jepa_ac/assets/default_model
