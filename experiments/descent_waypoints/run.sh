#!/usr/bin/env bash
# Pick-and-place with one more way-point image on the way down to the grasp (env.kwargs.descent_waypoints=1:
# open, straight above the cube, half way between "above" and "around" it), issue 31, session 25; the
# shipped model and planning otherwise, 70 steps instead of 60 for the extra goal. Two episodes at a
# time with one torch thread each (--workers 2), bf16. Seeds 0 (the selection set: the first 20, then
# 50), then fresh seeds 1 (50); --resume continues. experiments/paired.py pairs each episode with the shipped run.
#   bash experiments/descent_waypoints/run.sh [EPISODES_SEEDS0]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=experiments/descent_waypoints
EV() { "$PY" -m jepa_ac.evaluate --env pickplace --policy planner --workers 2 --threads 1 --no-progress --resume \
    --max-steps 70 --set env.kwargs.descent_waypoints=1 "$@"; }
EV --episodes "${1:-50}" --seed 0 --out "$OUT/pickplace_seeds0"
[ "${1:-50}" = 50 ] && EV --episodes 50 --seed 1 --out "$OUT/pickplace_seeds1"
"$PY" experiments/paired.py "$OUT" --name "descent way-point" --title "Pick-and-place: a way-point half way down to the grasp vs the shipped planning, the same episodes (bf16)" || true
