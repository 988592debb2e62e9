#!/usr/bin/env bash
# Predictor training steps on a shared 2-core CPU: the training CLI's default (torch's threads, idle
# OpenMP threads sleeping: OMP_WAIT_POLICY=PASSIVE), the same threads spinning (OMP_WAIT_POLICY=ACTIVE),
# and one thread; alone and two trainings at once.
# The shipped predictor recipe on the shipped encoder's latents (experiments/ensemble_members/train.sh
# builds runs/members/latents.zarr). Writes runs/training_threads/<setup>/<job>/metrics.jsonl;
# summarize.py turns them into results.json / results.md here.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-120}
ROOT=runs/training_threads
rm -rf "$ROOT"; mkdir -p "$ROOT"

train() {  # $1 = setup/job, then environment assignments for it
  local job=$1; shift
  env "$@" "$PY" -m jepa_ac.train_predictor --config experiments/front_view/predictor_long.yaml \
    --data runs/members/latents.zarr --encoder-checkpoint jepa_ac/assets/default_model \
    --steps "$STEPS" --warmup-steps 10 --decay-steps 10 --eval-every 100000 --log-every 10 --out "$ROOT/$job" > "$ROOT/${job//\//_}.log" 2>&1
}

for setup in default spinning one; do
  case $setup in
    default) vars=() ;;
    spinning) vars=(OMP_WAIT_POLICY=ACTIVE) ;;
    one) vars=(OMP_NUM_THREADS=1) ;;
  esac
  train "alone_$setup/a" "${vars[@]}"
  train "pair_$setup/a" "${vars[@]}" &
  train "pair_$setup/b" "${vars[@]}" &
  wait
done
for round in 1 2; do  # alone again, the two thread setups interleaved (the host's load drifts)
  train "round${round}_default"
  train "round${round}_spinning" OMP_WAIT_POLICY=ACTIVE
done
"$PY" experiments/latency/training_threads/summarize.py
