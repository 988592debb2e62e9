#!/usr/bin/env bash
# Pick-and-place with the wrist view (issue 31, session 25): the front+wrist folder (train.sh) with every
# shipped planning setting, only env.exterior_view "front" -> "front+wrist"; two episodes at a time with
# one torch thread each (--workers 2), bf16. Seeds 0 (the selection set: first 20, then 50), then fresh
# seeds 1 (50). --resume continues an interrupted run. Then experiments/paired.py pairs each episode with the
# front view alone on the same seeds.
#   bash experiments/wrist_view/run.sh [EPISODES_SEEDS0]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=experiments/wrist_view
CKPT=${CKPT:-runs/front_wrist}
EV() { "$PY" -m jepa_ac.evaluate --policy planner --workers 2 --threads 1 --no-progress --resume \
    --checkpoint "$CKPT" --exterior-view front+wrist "$@"; }
EV --env pickplace --episodes "${1:-50}" --seed 0 --out "$OUT/pickplace_seeds0"
[ "${1:-50}" = 50 ] && EV --env pickplace --episodes 50 --seed 1 --out "$OUT/pickplace_seeds1"
"$PY" experiments/paired.py "$OUT" --name "front + wrist" --title "Pick-and-place: front + wrist views vs the front view alone, the same episodes (bf16)" || true
