#!/usr/bin/env bash
# Time per planning step and per episode of push with three rounds of way-points in 120 steps (the
# shipped planning.json since session 24) and with one round in 60 steps (before), on the same 2
# episodes, 2 torch threads, nothing else running (bf16 where the CPU has it).
#   bash experiments/subgoal_rounds/quiet_timing.sh     # ~3 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=experiments/subgoal_rounds/quiet_timing
rm -rf "$OUT"
"$PY" -m jepa_ac.evaluate --env push --episodes 2 --threads 2 --no-progress --max-steps 120 --mpc subgoal_rounds=3 --out "$OUT/rounds3"
"$PY" -m jepa_ac.evaluate --env push --episodes 2 --threads 2 --no-progress --max-steps 60 --mpc subgoal_rounds=1 --out "$OUT/rounds1"
"$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = ["| push | planning s per step (mean / p90) | steps per episode | s per episode (observe + plan + act) | successes |",
        "|---|---|---:|---:|---:|"]
for name, label in (("rounds3", "three rounds, 120 steps"), ("rounds1", "one round, 60 steps")):
    row = next(iter(json.loads((out / name / "results.json").read_text())["rows"].values()))
    episodes = json.loads((out / name / "episodes" / "FrankaPush-v0_planner_subgoals.json").read_text())["episodes"]
    seconds = sum(sum(e["per_step"]["step_s"]) for e in episodes) / len(episodes)
    rows.append(f"| {label} | {row['plan_s_mean']:.2f} / {row['plan_s_p90']:.2f} | {row['mean_steps']:.0f} | "
                f"{seconds:.0f} | {row['successes']}/{row['episodes']} |")
text = "\n".join([f"Push, 2 episodes, 2 torch threads, {row['dtype']}, ISA {row['isa']}", "", *rows]) + "\n"
(out / "timing.md").write_text(text)
print(text)
PYEOF
