#!/usr/bin/env bash
# Refining grasps on the observed distance (mpc.refine=grasps, issue 31, session 25): the shipped model
# and planning, pick-and-place's approach to the grasp refined by a pattern search on the camera's own
# latent distance before the gripper closes; 75 steps instead of 60 for the probes. Two episodes at a
# time with one torch thread each (--workers 2), bf16. Seeds 0 (the selection set: the first 20, then
# 50), then fresh seeds 1 (50); --resume continues. experiments/paired.py pairs each episode with the shipped run.
#   bash experiments/grasp_refinement/run.sh [EPISODES_SEEDS0]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=experiments/grasp_refinement
EV() { "$PY" -m jepa_ac.evaluate --env pickplace --policy planner --workers 2 --threads 1 --no-progress --resume \
    --max-steps 75 --mpc refine=grasps "$@"; }
EV --episodes "${1:-50}" --seed 0 --out "$OUT/pickplace_seeds0"
[ "${1:-50}" = 50 ] && EV --episodes 50 --seed 1 --out "$OUT/pickplace_seeds1"
"$PY" experiments/paired.py "$OUT" --name "refined" --title "Pick-and-place: grasps refined on the observed distance vs the shipped planning, the same episodes (bf16)" || true
