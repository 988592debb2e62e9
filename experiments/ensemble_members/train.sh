#!/usr/bin/env bash
# More predictor members for the shipped default model's ensemble (issue 31): the front-view data
# (recollected: the collection is seeded, ~5 min) encoded by the shipped encoder itself (~2.5 min),
# then the shipped predictor's recipe with other seeds (~10 min each; two at a time, one thread
# each), each added to a copy of the shipped folder as ensemble/seed<N> (beside its ensemble/seed0,
# unless KEEP_SEED0=0).
#   SEEDS=2 OUT=runs/members/model3 bash experiments/ensemble_members/train.sh        # shipped + seed 0 + seed 2
#   KEEP_SEED0=0 OUT=runs/members/model_s23 bash experiments/ensemble_members/train.sh  # shipped + seeds 2, 3
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-2 3}
OUT=${OUT:-runs/members/model}
KEEP_SEED0=${KEEP_SEED0:-1}
[ -f data/sim128_front/all.txt ] || VIEW=front bash experiments/default_model/collect.sh
"$PY" -m jepa_ac.encode_dataset --data data/sim128_front/all.txt --checkpoint jepa_ac/assets/default_model \
  --out runs/members/latents.zarr --no-progress  # resumes; a finished cache is kept
mkdir -p runs/members
pids=()
for seed in $SEEDS; do  # two at a time on the 2 cores
  # the shipped predictor's recipe, on these latents and the shipped encoder (add_ensemble_member checks it)
  OMP_NUM_THREADS=1 "$PY" -m jepa_ac.train_predictor --config experiments/front_view/predictor_long.yaml \
    --data runs/members/latents.zarr --encoder-checkpoint jepa_ac/assets/default_model \
    --seed "$seed" --out "runs/members/s$seed" --resume true > "runs/members/train_s$seed.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done  # a failed training stops the script
if [ ! -d "$OUT" ]; then
  cp -r jepa_ac/assets/default_model "$OUT"
  [ "$KEEP_SEED0" = 1 ] || rm -r "$OUT/ensemble/seed0"
fi
for seed in $SEEDS; do
  [ -d "$OUT/ensemble/seed$seed" ] || "$PY" -c "import sys, jepa_ac; print(jepa_ac.add_ensemble_member(*sys.argv[1:]))" \
    "$OUT" "runs/members/s$seed/final" "seed$seed"
done
