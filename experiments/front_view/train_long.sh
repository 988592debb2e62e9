#!/usr/bin/env bash
# The longer front-view world model, on CPU (about 55 minutes on the 2-core machine): the v4
# candidate's encoder (INIT, default model/) continued for 3000 more steps on the front-view video
# (36 min) -> latent cache (5 min) -> AC predictor with the shipped recipe (1400 steps, 10 min) ->
# fp16 export with model/planning.json (the same settings as the shipped one; only its comment differs). SEED=1 (the default) is the shipped default model
# (committed as experiments/front_view/long_seed1/model and jepa_ac/assets/default_model); SEED=0 is
# the v5 candidate (experiments/front_view/long/model). With the latents cached, another SEED only
# trains and exports its predictor.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
INIT=${INIT:-experiments/front_view/model}
SEED=${SEED:-1}
if [ "$SEED" = 0 ]; then RUN=runs/predictor_front_long; EXPORT=runs/front_long_export
else RUN=runs/predictor_front_long_s$SEED; EXPORT=runs/front_long_s${SEED}_export; fi
[ -f data/sim128_front/all.txt ] || VIEW=front bash experiments/default_model/collect.sh
"$PY" -m jepa_ac.pretrain_encoder --config experiments/front_view/pretrain_long.yaml --init-from "$INIT" --resume true
"$PY" -m jepa_ac.encode_dataset --data data/sim128_front/all.txt --checkpoint runs/pretrain_front_long/final \
  --out runs/front_long/latents.zarr --no-progress  # resumes; a finished cache is kept
"$PY" -m jepa_ac.train_predictor --config experiments/front_view/predictor_long.yaml --seed "$SEED" --out "$RUN" --resume true
"$PY" -m jepa_ac.convert --checkpoint "$RUN/final" --out "$EXPORT" --dtype float16
cp experiments/front_view/model/planning.json "$EXPORT/"
echo "exported $EXPORT (seed $SEED)"
