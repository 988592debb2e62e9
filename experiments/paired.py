"""Episode-by-episode comparison of two `python -m jepa_ac.evaluate` runs on the same seeds, for the
experiments' summary scripts (`sys.path.insert(0, <experiments>)`, then `import paired`).

    ours = paired.episodes(run / "episodes", "push")         # finished episodes (or a run's journal so far)
    row = paired.compare(ours, paired.episodes(base, "push"))  # success, won / lost, distances, times
"""

from __future__ import annotations

import json
from pathlib import Path

from jepa_ac.evaluate import wilson_interval

FILES = {"reach": "FrankaReach-v0_planner.json", "push": "FrankaPush-v0_planner_subgoals.json",
         "pickplace": "FrankaPickPlace-v0_planner_subgoals.json"}


def episodes(folder: Path, task: str) -> list[dict] | None:
    """The finished episodes of a run's `episodes/` folder: its episodes file, else its journal (a run
    still going); None when it has neither."""
    done = folder / FILES[task]
    if done.is_file():
        return json.loads(done.read_text())["episodes"]
    journal = done.with_suffix(".partial.jsonl")
    if journal.is_file():
        lines = journal.read_text().splitlines()[1:]  # the first line holds the run's settings
        return [json.loads(line) for line in lines if line.strip().endswith("}")]
    return None


def compare(ours: list[dict], base: list[dict]) -> dict:
    """`ours` against `base` on the episodes both have (matched by index; their seeds must agree)."""
    by_index = {e["index"]: e for e in base}
    ours = [e for e in ours if e["index"] in by_index]
    pairs = [(e, by_index[e["index"]]) for e in ours]
    if any(e["seed"] != b["seed"] for e, b in pairs):
        raise ValueError("the runs' episodes were played on different seeds")
    n = len(pairs)
    if n == 0:
        raise ValueError("the runs have no episode in common")
    k, k_base = sum(e["success"] for e, _ in pairs), sum(b["success"] for _, b in pairs)
    mean = lambda key, which: sum(p[which][key] for p in pairs) / n  # noqa: E731
    return {"episodes": n, "success": k / n, "success_ci95": list(wilson_interval(k, n)), "baseline": k_base / n,
            "won": sum(e["success"] and not b["success"] for e, b in pairs),
            "lost": sum(b["success"] and not e["success"] for e, b in pairs),
            "final_m": mean("final_task_distance", 0), "baseline_final_m": mean("final_task_distance", 1),
            "step_s": mean("step_s_mean", 0), "baseline_step_s": mean("step_s_mean", 1),
            "steps": mean("steps", 0), "baseline_steps": mean("steps", 1)}
