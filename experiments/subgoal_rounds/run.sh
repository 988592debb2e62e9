#!/usr/bin/env bash
# Rounds of way-points (issue 31): the shipped default model with mpc.subgoal_rounds=3 and 120 steps
# (one round and 60 steps before), on seeds 0 (the selection set: push 20, then 50) and fresh seeds 1
# (50), two episodes at a time with one torch thread each (--workers 2), bf16; pick-and-place on the
# first 20 of seeds 0. --resume continues an interrupted run. Then summarize.py pairs each episode
# with the one-round run of the same seed.
#   bash experiments/subgoal_rounds/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=experiments/subgoal_rounds
EV() { "$PY" -m jepa_ac.evaluate --policy planner --workers 2 --threads 1 --no-progress --resume \
    --max-steps 120 --mpc subgoal_rounds=3 "$@"; }
EV --env push --episodes 50 --seed 0 --out "$OUT/push_seeds0"
EV --env push --episodes 50 --seed 1 --out "$OUT/push_seeds1"
EV --env pickplace --episodes 20 --seed 0 --out "$OUT/pickplace_seeds0"
"$PY" "$OUT/summarize.py"
