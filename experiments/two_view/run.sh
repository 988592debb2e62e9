#!/usr/bin/env bash
# Two camera views (issue 31): the shipped folder plans with its front model and v3's side model
# together (views.json + views/side/; --exterior-view front+side on every task, where the shipped
# planning.json keeps push and pick-and-place on the front view), on seeds 0 (reach 50, push 20, pick-and-place 20 then 50: the
# selection set) and fresh seeds 1 (50 per task), one torch thread per run (two runs share the 2
# cores). --resume continues an interrupted run. Then summarize.py pairs each episode with the
# front view alone (the model shipped in sessions 15-22).
#   bash experiments/two_view/run.sh
# MODEL=... evaluates another two-view folder; to build one from a one-view folder:
#   .venv/bin/python -c "import jepa_ac; jepa_ac.add_view('my_model', 'experiments/default_model/model', 'side', first_view='front')"
#   and set env.exterior_view to "front+side" in my_model/planning.json
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
MODEL=${MODEL:-jepa_ac/assets/default_model}
OUT=experiments/two_view
EV() { "$PY" -m jepa_ac.evaluate --checkpoint "$MODEL" --exterior-view front+side --threads 1 --no-progress --resume "$@"; }
EV --env reach --episodes 50 --seed 0 --out "$OUT/seeds0"
EV --env push --episodes 20 --seed 0 --out "$OUT/seeds0"
EV --env pickplace --episodes 50 --seed 0 --out "$OUT/seeds0"   # 20 decided; run to 50 afterwards
for task in reach push pickplace; do
  EV --env "$task" --episodes 50 --seed 1 --out "$OUT/seeds1"
done
"$PY" "$OUT/summarize.py"
