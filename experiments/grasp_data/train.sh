#!/usr/bin/env bash
# Predictors with the grasp data (issue 31, session 25), on CPU: the shipped model's front-view episodes
# (data/sim128_wrist holds the same 590 episodes as data/sim128_front, with the wrist camera too) plus
# the grasp data (collect.sh) -> the shipped encoder's latents -> the shipped predictor recipe with
# seed 1 and seed 0 -> runs/grasp_model: the shipped folder (encoder, planning.json) with the seed-1
# predictor and the seed-0 one as its ensemble member, as the shipped predictors are arranged.
# DATA=base trains on the 590 episodes alone (the same recipe in this run's dtype: the control).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-grasp}
[ -f data/sim128_wrist/all.txt ] || bash experiments/wrist_view/collect.sh
[ "$DATA" = base ] || [ -f data/sim128_grasp/pickplace_offset/collect_summary.json ] || bash experiments/grasp_data/collect.sh
"$PY" - "$DATA" <<'PYEOF'
import sys
from pathlib import Path
from jepa_ac.data.reader import find_episodes, write_trajectory_list
roots = [Path("data/sim128_wrist")] + ([Path("data/sim128_grasp")] if sys.argv[1] == "grasp" else [])
episodes = sorted(p for root in roots for d in sorted(root.iterdir()) if d.is_dir() for p in find_episodes(d))
out = Path(f"data/{sys.argv[1]}_front.txt")
write_trajectory_list(out, episodes, header=f"{len(episodes)} episodes of {', '.join(map(str, roots))}")
print(f"{len(episodes)} episodes -> {out}")
PYEOF
"$PY" -m jepa_ac.encode_dataset --data "data/${DATA}_front.txt" --checkpoint jepa_ac/assets/default_model \
  --out "runs/$DATA/latents.zarr" --no-progress  # the front camera; resumes, a finished cache is kept
for SEED in 1 0; do
  "$PY" -m jepa_ac.train_predictor --config experiments/grasp_data/predictor.yaml --data "runs/$DATA/latents.zarr" \
    --seed "$SEED" --out "runs/predictor_${DATA}_s$SEED" --resume true
  "$PY" -m jepa_ac.convert --checkpoint "runs/predictor_${DATA}_s$SEED/final" --out "runs/${DATA}_s${SEED}_export" --dtype float16
done
rm -rf "runs/${DATA}_model" && cp -r "runs/${DATA}_s1_export" "runs/${DATA}_model"
cp jepa_ac/assets/default_model/planning.json "runs/${DATA}_model/"
"$PY" -c "import jepa_ac, sys; jepa_ac.add_ensemble_member(sys.argv[1], sys.argv[2], 'seed0')" "runs/${DATA}_model" "runs/${DATA}_s0_export"
echo "runs/${DATA}_model: predictors seed 1 (+ seed 0 in ensemble/) on $DATA data"
