#!/usr/bin/env bash
# Pick-and-place data for the predictor's grasps (issue 31, session 25): the scripted expert holds the
# home orientation as the planner does (turn_to_cube false), moves with little noise (0.1), and its
# first approach aims at a point up to 6 cm from the cube (grasp_offset), so the data holds descents
# beside the cube, fingers knocking it, empty grasps and the approach again from above that follows.
# 128 px, front camera (and the wrist camera), DROID raw layout -> data/sim128_grasp. Resumable.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-data/sim128_grasp}
"$PY" -m jepa_ac.collect --env jepa_ac/FrankaPickPlace-v0 --out "$OUT/pickplace_offset" --noise 0.1 \
  --episodes "${EPISODES:-180}" --seed 30 --exterior-view front --wrist-camera --image-size 128 \
  --set expert_options.grasp_offset=0.06 --set expert_options.turn_to_cube=false --workers "${WORKERS:-2}" --no-progress
