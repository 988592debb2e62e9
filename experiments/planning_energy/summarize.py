"""Planning-side variants against the shipped planner, episode by episode (issue 31).

    python experiments/planning_energy/summarize.py

Each `<task>_<variant>/` folder here is one `python -m jepa_ac.evaluate` run (commands in README.md).
Its baseline is the shipped model with one predictor in bf16 on the same seeds and episodes:
experiments/latency/bf16_evaluate/<task>/ (the first n episodes where a variant ran n); fresh_seeds/
holds `--seed 1` runs, against experiments/latency/bf16_evaluate/fresh_seeds/. A run that changed
something on top of the shipped folder's ensemble is compared with `<task>_ensemble/` instead. Writes
summary.json and summary.md: success with its 95% interval, the final task distance, the episodes
the variant won and lost against the baseline, and the planning time per step.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jepa_ac.evaluate import wilson_interval

HERE = Path(__file__).parent
BASELINE = HERE.parent / "latency" / "bf16_evaluate"
TASKS = {"reach": "FrankaReach-v0", "push": "FrankaPush-v0", "pickplace": "FrankaPickPlace-v0"}


def episodes(folder: Path, task: str) -> list[dict]:
    files = sorted((folder / "episodes").glob(f"{TASKS[task]}_planner*.json"))
    if len(files) != 1:
        raise FileNotFoundError(f"{folder}: expected one {task} planner episodes file, found {[f.name for f in files]}")
    return json.loads(files[0].read_text())["episodes"]


def summary(task: str, variant: str, seeds: int, eps: list[dict], base: list[dict]) -> dict:
    base = base[: len(eps)]
    if [e["seed"] for e in eps] != [e["seed"] for e in base]:
        raise ValueError(f"{task}_{variant}: its episodes' seeds differ from the baseline's")
    wins, base_wins = sum(e["success"] for e in eps), sum(e["success"] for e in base)
    steps = np.array([e["steps"] for e in eps], float)
    plan_s = np.array([e["plan_s_mean"] for e in eps], float)
    return {
        "task": task, "variant": variant, "seeds": seeds, "episodes": len(eps), "successes": int(wins),
        "success_rate": wins / len(eps), "success_ci95": wilson_interval(int(wins), len(eps)),
        "baseline_success_rate": base_wins / len(base),
        "won": sum(e["success"] and not b["success"] for e, b in zip(eps, base)),
        "lost": sum(b["success"] and not e["success"] for e, b in zip(eps, base)),
        "final_task_distance": float(np.mean([e["final_task_distance"] for e in eps])),
        "baseline_final_task_distance": float(np.mean([b["final_task_distance"] for b in base])),
        "plan_s_per_step": float((plan_s * steps).sum() / steps.sum()),
    }


def on_shipped_ensemble(folder: Path) -> bool:
    """Whether the run planned with the shipped folder's ensemble (its own change on top of it)."""
    row = next(iter(json.loads((folder / "results.json").read_text())["rows"].values()))
    return bool(row["cem"].get("ensemble")) and Path(row["checkpoint"]).name == "default_model"


def main() -> None:
    rows = []
    for seeds, root, baseline in ((0, HERE, BASELINE), (1, HERE / "fresh_seeds", BASELINE / "fresh_seeds")):
        for folder in sorted(p for p in root.iterdir() if (p / "episodes").is_dir()):
            task, variant = folder.name.split("_", 1)
            base = baseline if seeds else baseline / task
            if variant != "ensemble" and on_shipped_ensemble(folder):  # against the shipped ensemble, same episodes
                base = root / f"{task}_ensemble"
            row = summary(task, variant, seeds, episodes(folder, task), episodes(base, task))
            rows.append({**row, "baseline": "ensemble" if base.parent == root else "one predictor"})
    (HERE / "summary.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    lines = ["| task | variant | seeds | episodes | success (95% CI) | baseline | baseline, same episodes | won / lost | final task distance (m), variant / baseline | planning s/step (1 thread, 2 jobs) |",
             "|---|---|---:|---:|---|---|---:|---|---|---:|"]
    for r in rows:
        lo, hi = r["success_ci95"]
        lines.append(f"| {r['task']} | {r['variant']} | {r['seeds']} | {r['episodes']} | {r['success_rate']:.2f} ({lo:.2f}-{hi:.2f}) | "
                     f"{r['baseline']} | {r['baseline_success_rate']:.2f} | {r['won']} / {r['lost']} | "
                     f"{r['final_task_distance']:.3f} / {r['baseline_final_task_distance']:.3f} | {r['plan_s_per_step']:.2f} |")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
