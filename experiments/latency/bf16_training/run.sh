#!/usr/bin/env bash
# Training in bf16 on a CPU with bf16 dot products (issue 30): the shipped model's encoder pretraining
# and predictor training, each run twice from the same seed, --dtype float32 and --dtype bfloat16
# (CPU autocast), on a small fresh dataset of the shipped model's kind (front view, 128 px renders,
# scripted experts with noise 0.3). Short runs: the curves compare precisions, they train no model
# to ship. About 25 minutes on the 2-core build host.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/bf16_training}
RUNS=runs/bf16_training
OUT=experiments/latency/bf16_training
collect() { # env short episodes seed
  "$PY" -m jepa_ac.collect --env "jepa_ac/$1" --out "$DATA/$2" --noise 0.3 --episodes "$3" --seed "$4" \
    --exterior-view front --image-size 128 --workers 2 --no-progress
}
[ -d "$DATA/reach" ] || collect FrankaReach-v0 reach 24 101
[ -d "$DATA/push" ] || collect FrankaPush-v0 push 16 102
"$PY" - "$DATA" <<'PYEOF'
import sys
from pathlib import Path
from jepa_ac.data.reader import find_episodes, write_trajectory_list
out = Path(sys.argv[1])
episodes = sorted(p for d in sorted(out.iterdir()) if d.is_dir() for p in find_episodes(d))
write_trajectory_list(out / "all.txt", episodes, header=f"{len(episodes)} episodes of {out}")
PYEOF
for dtype in float32 bfloat16; do
  # the shipped encoder's pretraining config from scratch, 120 steps
  "$PY" -m jepa_ac.pretrain_encoder --config experiments/default_model/pretrain.yaml --data "$DATA/all.txt" \
    --out "$RUNS/pretrain_$dtype" --steps 120 --warmup-steps 20 --save-every 1000 --eval-every 40 --log-every 5 \
    --dtype $dtype
done
"$PY" -m jepa_ac.encode_dataset --data "$DATA/all.txt" --checkpoint jepa_ac/assets/default_model \
  --out "$RUNS/latents.zarr" --no-progress
for dtype in float32 bfloat16; do
  # the shipped predictor's config on the shipped encoder's latents, 300 steps
  "$PY" -m jepa_ac.train_predictor --config experiments/default_model/predictor.yaml --data "$RUNS/latents.zarr" \
    --encoder-checkpoint jepa_ac/assets/default_model --out "$RUNS/predictor_$dtype" --steps 300 --warmup-steps 30 \
    --decay-steps 100 --save-every 1000 --eval-every 50 --log-every 5 --dtype $dtype
done
"$PY" $OUT/summarize.py --runs "$RUNS" --out $OUT
