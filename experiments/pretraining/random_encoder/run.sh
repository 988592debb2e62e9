#!/usr/bin/env bash
# Does V-JEPA pretraining help the planner? The shipped recipe (latent cache -> 1400-step AC
# predictor -> fp16 export -> closed-loop evaluate) on a randomly initialised encoder of the shipped
# architecture, compared with the shipped model on the same seeds. About 1.5 hours on one core.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
HERE=experiments/pretraining/random_encoder
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -d runs/random_encoder/final ] || "$PY" $HERE/make_random_encoder.py runs/pretrain_xl/final runs/random_encoder/final
"$PY" -m jepa_ac.encode_dataset --data data/sim128/all.txt --checkpoint runs/random_encoder/final \
  --out runs/random_encoder/latents.zarr --no-progress
# the shipped predictor recipe, only the latent space differs
sed -e 's#runs/default_v3/latents.zarr#runs/random_encoder/latents.zarr#' \
    -e 's#runs/pretrain_xl/final#runs/random_encoder/final#' \
    -e 's#out: runs/predictor_v3#out: runs/predictor_random#' \
    experiments/default_model/predictor.yaml > runs/predictor_random.yaml
"$PY" -m jepa_ac.train_predictor --config runs/predictor_random.yaml --resume true
"$PY" -m jepa_ac.convert --checkpoint runs/predictor_random/final --out runs/random_export --dtype float16
cp jepa_ac/assets/default_model/planning.json runs/random_export/
"$PY" -m jepa_ac.evaluate --env reach --episodes 50 --checkpoint runs/random_export --threads 1 \
  --out $HERE/evaluate/reach50 --no-progress
"$PY" -m jepa_ac.evaluate --env push --episodes 50 --checkpoint runs/random_export --threads 1 \
  --out $HERE/evaluate/push50 --no-progress
"$PY" -m jepa_ac.bench action_inference --env push --states 40 --checkpoint jepa_ac/assets/default_model \
  --compare runs/random_export --out $HERE/action_inference
