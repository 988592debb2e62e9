#!/usr/bin/env bash
# Ranking a training run's kept snapshots by closed-loop success (issue 31): the shipped predictor's
# recipe (seed 1, the shipped predictor's seed) on the shipped encoder's latents with --keep-every 200,
# then each snapshot exported as the shipped model is (fp16, the one-predictor planning.json of
# ../front_view/long_seed1/model) and evaluated on push's first EPISODES seed-0 episodes in bf16.
#   bash experiments/predictor_snapshots/run.sh                  # training ~15 min, ~12 min per snapshot (one thread)
#   STEPS="001000 final" EPISODES=50 SEED=1 bash experiments/predictor_snapshots/run.sh   # confirm on fresh seeds
# Needs runs/members/latents.zarr (../ensemble_members/train.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
RUN=${RUN:-runs/snapshots/s1}
STEPS=${STEPS:-000800 001000 final}
EPISODES=${EPISODES:-20}
SEED=${SEED:-0}
THREADS=${THREADS:-1}
OUT=experiments/predictor_snapshots
[ -f "$RUN/final/model.safetensors" ] || "$PY" -m jepa_ac.train_predictor --config experiments/front_view/predictor_long.yaml \
  --data runs/members/latents.zarr --encoder-checkpoint jepa_ac/assets/default_model --seed 1 --keep-every 200 \
  --threads "$THREADS" --out "$RUN" --resume true
for step in $STEPS; do
  src="$RUN/$([ "$step" = final ] && echo final || echo "step_$step")"
  model="runs/snapshots/export_$step"
  [ -f "$model/model.safetensors" ] || "$PY" -m jepa_ac.convert --checkpoint "$src" --out "$model" --dtype float16
  cp experiments/front_view/long_seed1/model/planning.json "$model/"
  seeds=$([ "$SEED" = 0 ] && echo seeds0 || echo "seeds$SEED")
  "$PY" -m jepa_ac.evaluate --env push --episodes "$EPISODES" --seed "$SEED" --checkpoint "$model" --threads "$THREADS" \
    --no-progress --resume --out "$OUT/$seeds/$step"
done
"$PY" "$OUT/summarize.py"
