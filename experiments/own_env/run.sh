#!/usr/bin/env bash
# Bring your own env, end to end (docs/own_env.md): gymnasium-robotics FetchReach-v4, seen from the
# side (hooks.py), recorded with a random policy drifting toward the target, encoded with the shipped
# 64 px encoder, a predictor fine-tuned from the shipped one, then the planner and uniform random moves
# on the same 20 seeded episodes. Writes results.json here; data and weights go to $RUN (not committed).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-python}
RUN=${RUN:-runs}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MUJOCO_GL=${MUJOCO_GL:-egl} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
MODEL=$("$PY" -c "from jepa_ac.cli.args import DEFAULT_CHECKPOINT as m; print(m)")  # the shipped default model
ENV=hooks:FetchReachSide-v4

"$PY" -m jepa_ac.collect --env $ENV --policy hooks:policy --state hooks:state --success hooks:success \
    --goal hooks:goal --episodes 200 --image-size 64 --out "$RUN/data" --no-progress
"$PY" -m jepa_ac.encode_dataset --data "$RUN/data" --checkpoint "$MODEL" --out "$RUN/latents.zarr" --no-progress
"$PY" -m jepa_ac.train_predictor --data "$RUN/latents.zarr" --encoder-checkpoint "$MODEL" --init-predictor "$MODEL" \
    --out "$RUN/predictor" --frames 4 --fps 5 --steps 2000 --batch-size 16 --eval-every 250 --resume true
# the shipped model's planner settings (CEM, stop rule); the env's bounds, step and gain come from the data
"$PY" -m jepa_ac.evaluate --checkpoint "$RUN/predictor/final" --env $ENV --policy planner random --episodes 20 \
    --planning "$MODEL/planning.json" --threads 1 --out "$RUN/evaluate" --no-progress

"$PY" - "$RUN" <<'PYEOF'
import json, sys
run = sys.argv[1]
rows = json.load(open(f"{run}/evaluate/results.json"))["rows"].values()
result = {row["policy"]: {"success_rate": row["success_rate"], "episodes": row["episodes"]} for row in rows}
result["predictor_loss_vs_copy_last"] = json.load(open(f"{run}/predictor/summary.json"))["val_tf_vs_baseline"]
json.dump(result, open("results.json", "w"), indent=2)
print(json.dumps(result))
PYEOF
