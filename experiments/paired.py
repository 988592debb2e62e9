"""Episode-by-episode comparison of two `python -m jepa_ac.evaluate` runs on the same seeds, for the
experiments' summary scripts (`sys.path.insert(0, <experiments>)`, then `import paired`).

    ours = paired.episodes(run / "episodes", "push")         # finished episodes (or a run's journal so far)
    row = paired.compare(ours, paired.episodes(base, "push"))  # success, won / lost, distances, times

As a command, a folder's pick-and-place runs (`pickplace_seeds0/`, `pickplace_seeds1/`) against the
shipped model's on the same episodes -> FOLDER/summary.md and summary.json:

    .venv/bin/python experiments/paired.py experiments/wrist_view --name "front + wrist" --title "..."
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


PICKPLACE_BASELINES = {0: Path(__file__).resolve().parent / "planning_energy/pickplace_ensemble/episodes",
                       1: Path(__file__).resolve().parent / "planning_energy/fresh_seeds/pickplace_ensemble/episodes"}


def summarize_pickplace(here: Path, ours_name: str, title: str) -> list[dict]:
    """Pick-and-place runs `here/pickplace_seeds{0,1}/` against the shipped model on the same episodes (its
    front view and two-predictor ensemble, bf16: PICKPLACE_BASELINES) -> here/summary.md / summary.json."""
    from jepa_ac.files import write_atomic, write_json_atomic

    rows = []
    for seed, base in PICKPLACE_BASELINES.items():
        ours = episodes(here / f"pickplace_seeds{seed}" / "episodes", "pickplace")
        if ours:
            rows.append({"seed": seed, "task": "pickplace", **compare(ours, episodes(base, "pickplace"))})
    lines = [f"# {title}", "",
             f"| seeds | episodes | {ours_name} (95% CI) | shipped | won / lost | final cube-to-bowl (m): "
             f"{ours_name} / shipped | s per step: {ours_name} / shipped |",
             "|---|---:|---|---:|---|---|---|"]
    for r in rows:
        lo, hi = r["success_ci95"]
        lines.append(f"| {r['seed']} | {r['episodes']} | **{r['success']:.2f}** ({lo:.2f}-{hi:.2f}) | "
                     f"{r['baseline']:.2f} | {r['won']} / {r['lost']} | {r['final_m']:.3f} / {r['baseline_final_m']:.3f} | "
                     f"{r['step_s']:.2f} / {r['baseline_step_s']:.2f} |")
    lines += ["", "Step times are from the evaluation runs themselves (two episodes at a time, one torch thread each, "
              "on the 2-core CPU; the baselines ran earlier, as their folders say)."]
    write_atomic(here / "summary.md", "\n".join(lines) + "\n")
    write_json_atomic(here / "summary.json", rows)
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="pick-and-place runs of FOLDER against the shipped model's")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--name", required=True, help="the runs' column name")
    parser.add_argument("--title", required=True, help="summary.md's title")
    args = parser.parse_args()
    summarize_pickplace(args.folder.resolve(), args.name, args.title)
