#!/usr/bin/env bash
# Experiment (not shipped): 200 more push episodes with little action noise (0.1: the expert succeeds
# 99%), so the predictor sees many real pushes; then sim128 + these (790 episodes) in one list, and
# the shipped encoder's latent cache extended with them (the 590 cached episodes are skipped).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PY:-.venv/bin/python}
"$PY" -m jepa_ac.collect --env jepa_ac/FrankaPush-v0 --out data/sim128/push_n0.1 --noise 0.1 --episodes 200 \
  --seed 12 --image-size 128 --workers "${WORKERS:-2}" --no-progress
"$PY" - <<'PYEOF'
from pathlib import Path
from jepa_ac.data.reader import find_episodes, write_trajectory_list
out = Path("data/sim128")
episodes = sorted(p for d in sorted(out.iterdir()) if d.is_dir() for p in find_episodes(d))
write_trajectory_list(out / "all_plus_push.txt", episodes, header=f"{len(episodes)} episodes of {out} (sim128 + push_n0.1)")
print(f"{len(episodes)} episodes -> {out / 'all_plus_push.txt'}")
PYEOF
[ -d runs/default_push_data/latents.zarr ] || { mkdir -p runs/default_push_data; cp -r runs/default_v3/latents.zarr runs/default_push_data/; }
"$PY" -m jepa_ac.encode_dataset --data data/sim128/all_plus_push.txt --checkpoint runs/pretrain_xl/final \
  --out runs/default_push_data/latents.zarr --no-progress
"$PY" -m jepa_ac.train_predictor --config experiments/predictor_variants/push_data/predictor.yaml --resume true
