#!/usr/bin/env bash
# Pick-and-place with predictors trained with the grasp data (train.sh: runs/grasp_model, or CKPT=): every
# shipped planning setting; two episodes at a time with one torch thread each (--workers 2), bf16.
# Seeds 0 (the selection set: the first 20, then 50), then fresh seeds 1 (50). --resume continues an
# interrupted run. Then experiments/paired.py pairs each episode with the shipped model's on the same seeds.
#   bash experiments/grasp_data/run.sh [EPISODES_SEEDS0]      OUT=experiments/grasp_data/control for DATA=base
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-experiments/grasp_data}
CKPT=${CKPT:-runs/grasp_model}
EV() { "$PY" -m jepa_ac.evaluate --env pickplace --policy planner --workers 2 --threads 1 --no-progress --resume \
    --checkpoint "$CKPT" "$@"; }
EV --episodes "${1:-50}" --seed 0 --out "$OUT/pickplace_seeds0"
[ "${1:-50}" = 50 ] && EV --episodes 50 --seed 1 --out "$OUT/pickplace_seeds1"
"$PY" experiments/paired.py "$OUT" --name "with grasp data" --title "Pick-and-place: predictors with grasp data vs the shipped ones, the same episodes (bf16)" || true
