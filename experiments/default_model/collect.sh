#!/usr/bin/env bash
# Collect the simulated Franka datasets the shipped default world model is trained on: VIEW=side (the
# script's default; data/sim128: v3, and the first stage of the shipped model's encoder) or VIEW=front
# (data/sim128_front: the front-view stages and the shipped model's predictor, experiments/front_view).
# Scripted experts with action noise (fraction of the action bound): 0.3 = mostly on task, 0.8 =
# exploratory. 128 px renders of the exterior camera at 4 Hz; DROID raw layout. Resumable. EXTRA: more
# collect flags (experiments/wrist_view/collect.sh: --wrist-camera).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
VIEW=${VIEW:-side}
if [ "$VIEW" = side ]; then OUT=${OUT:-data/sim128}; else OUT=${OUT:-data/sim128_$VIEW}; fi
collect() { # env short noise episodes seed
  "$PY" -m jepa_ac.collect --env "jepa_ac/$1" --out "$OUT/$2_n$3" --noise "$3" --episodes "$4" --seed "$5" --exterior-view "$VIEW" \
    --image-size 128 --workers "${WORKERS:-2}" --no-progress ${EXTRA:-}
}
collect FrankaReach-v0 reach 0.3 150 1
collect FrankaReach-v0 reach 0.8 80 2
collect FrankaPush-v0 push 0.3 120 10
collect FrankaPush-v0 push 0.8 60 11
collect FrankaPickPlace-v0 pickplace 0.3 120 20
collect FrankaPickPlace-v0 pickplace 0.8 60 21
# one trajectory list over everything (training holds out whole episodes for validation)
"$PY" - "$OUT" <<'PYEOF'
import sys
from pathlib import Path
from jepa_ac.data.reader import find_episodes, write_trajectory_list
out = Path(sys.argv[1])
episodes = sorted(p for d in sorted(out.iterdir()) if d.is_dir() for p in find_episodes(d))
write_trajectory_list(out / "all.txt", episodes, header=f"{len(episodes)} episodes of {out}")
print(f"{len(episodes)} episodes -> {out / 'all.txt'}")
PYEOF
