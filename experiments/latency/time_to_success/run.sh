#!/usr/bin/env bash
# Time to success (issue 30): success against planning time per step for upstream's plain CEM
# 800 x 10, the shipped iCEM settings in float32, and the same in bfloat16, on reach and push, with
# the shipped default model, one process on the 2-core build host (default threads). Episode i is
# seed (0, i), the same episodes as experiments/evaluate. The shipped bf16 rows are the first
# episodes of experiments/latency/bf16_evaluate (run the same way). About 35 minutes, and 1.6 hours
# more for push at 800 x 10.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
OUT=experiments/latency/time_to_success
PLAIN="--set cem.warm_start=false cem.keep_elites=0.0"   # plain CEM: no warm start, no elite reuse
ev() { "$PY" -m jepa_ac.evaluate --policy planner --no-progress "$@"; }
ev --env reach --episodes 20 --dtype float32 --out $OUT/reach_icem_128x4_fp32
ev --env reach --episodes 20 --dtype float32 $PLAIN --samples 128 --iterations 4 --topk 12 --out $OUT/reach_plain_128x4_fp32
ev --env reach --episodes 10 --dtype float32 $PLAIN --samples 800 --iterations 10 --topk 10 --out $OUT/reach_plain_800x10_fp32
ev --env push --episodes 10 --dtype float32 --out $OUT/push_icem_64x3_fp32
ev --env push --episodes 10 --dtype float32 $PLAIN --out $OUT/push_plain_64x3_fp32
# push at 800 x 10 (horizon 3): ~19 s per step, ~16 min per episode: the first 6 episodes (~1.6 h
# alone; it shared the CPU with other jobs, so its time per step comes from 3 steps run alone)
ev --env push --episodes 6 --dtype float32 $PLAIN --samples 800 --iterations 10 --topk 10 --resume \
  --out $OUT/push_plain_800x10_fp32
ev --env push --episodes 1 --max-steps 3 --dtype float32 $PLAIN --samples 800 --iterations 10 --topk 10 \
  --out $OUT/push_plain_800x10_fp32/quiet_timing
"$PY" $OUT/summarize.py --out $OUT
