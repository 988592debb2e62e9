#!/usr/bin/env bash
# The shipped model's data recipe (experiments/default_model/collect.sh, VIEW=front: the same tasks,
# noise levels, episode counts and seeds, so the same episodes) recorded with the wrist camera too
# (DROID's wrist_mp4_path), pick-and-place first. -> data/sim128_wrist. Resumable.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-data/sim128_wrist}
collect() { # env short noise episodes seed
  "$PY" -m jepa_ac.collect --env "jepa_ac/$1" --out "$OUT/$2_n$3" --noise "$3" --episodes "$4" --seed "$5" \
    --exterior-view front --wrist-camera --image-size 128 --workers "${WORKERS:-2}" --no-progress
}
collect FrankaPickPlace-v0 pickplace 0.3 120 20
collect FrankaPickPlace-v0 pickplace 0.8 60 21
collect FrankaReach-v0 reach 0.3 150 1
collect FrankaReach-v0 reach 0.8 80 2
collect FrankaPush-v0 push 0.3 120 10
collect FrankaPush-v0 push 0.8 60 11
"$PY" - "$OUT" <<'PYEOF'
import sys
from pathlib import Path
from jepa_ac.data.reader import find_episodes, write_trajectory_list
out = Path(sys.argv[1])
episodes = sorted(p for d in sorted(out.iterdir()) if d.is_dir() for p in find_episodes(d))
write_trajectory_list(out / "all.txt", episodes, header=f"{len(episodes)} episodes of {out}")
print(f"{len(episodes)} episodes -> {out / 'all.txt'}")
PYEOF
