#!/usr/bin/env bash
# Time per planning step of the shipped folder with both views and with the front view alone (the
# same folder: a one-view frame plans with the front model alone), on the same 2 episodes per task,
# 2 torch threads, nothing else running (bf16 where the CPU has it).
#   bash experiments/two_view/quiet_timing.sh     # ~6 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-experiments/two_view/quiet_timing}  # OUT=... for another host
rm -rf "$OUT"
for task in reach push pickplace; do
  for views in front+side front; do
    "$PY" -m jepa_ac.evaluate --env "$task" --episodes 2 --threads 2 --no-progress --exterior-view "$views" \
      --out "$OUT/${views/+/_}"
  done
done
"$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = ["| task | both views (mean / p90 s) | front view alone (mean / p90 s) | ratio |", "|---|---|---|---:|"]
for task in ("FrankaReach-v0", "FrankaPush-v0", "FrankaPickPlace-v0"):
    s = {v: next(r for r in json.loads((out / v / "results.json").read_text())["rows"].values() if r["task"] == task)
         for v in ("front_side", "front")}
    rows.append(f"| {task} | {s['front_side']['plan_s_mean']:.2f} / {s['front_side']['plan_s_p90']:.2f} | "
                f"{s['front']['plan_s_mean']:.2f} / {s['front']['plan_s_p90']:.2f} | "
                f"{s['front_side']['plan_s_mean'] / s['front']['plan_s_mean']:.1f}x |")
isa = s["front"]["isa"]
text = "\n".join([f"Planning seconds per step, 2 episodes per task, 2 torch threads, {s['front']['dtype']}, ISA {isa}", "", *rows]) + "\n"
(out / "timing.md").write_text(text)
print(text)
PYEOF
