"""Rounds of way-points (`mpc.subgoal_rounds`) against one round, the same episodes -> summary.md / summary.json.

    .venv/bin/python experiments/subgoal_rounds/summarize.py

Baselines (one round, 60 steps, the shipped default model in bf16, the same seeds): push from
experiments/latency/bf16_evaluate (seeds 0) and its fresh_seeds (seeds 1); pick-and-place (with the
two-predictor ensemble) from experiments/planning_energy/pickplace_ensemble and
fresh_seeds/pickplace_ensemble.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jepa_ac.files import write_atomic, write_json_atomic

HERE = Path(__file__).resolve().parent
EXPERIMENTS = HERE.parent
sys.path.insert(0, str(EXPERIMENTS))
import paired  # noqa: E402

BASELINES = {
    (0, "push"): EXPERIMENTS / "latency/bf16_evaluate/push/episodes",
    (1, "push"): EXPERIMENTS / "latency/bf16_evaluate/fresh_seeds/episodes",
    (0, "pickplace"): EXPERIMENTS / "planning_energy/pickplace_ensemble/episodes",
    (1, "pickplace"): EXPERIMENTS / "planning_energy/fresh_seeds/pickplace_ensemble/episodes",
}
RUNS = {(seed, task): HERE / f"{task}_seeds{seed}" / "episodes" for seed, task in BASELINES}


def main() -> None:
    rows = []
    for (seed, task), folder in RUNS.items():
        ours = paired.episodes(folder, task)
        if ours:
            rounds = sum(e.get("rounds", 1) for e in ours) / len(ours)
            rows.append({"seed": seed, "task": task, "mean_rounds": rounds,
                         **paired.compare(ours, paired.episodes(BASELINES[seed, task], task))})
    lines = ["# Three rounds of way-points (120 steps) vs one round (60 steps), the same episodes (bf16)", "",
             "| seeds | task | episodes | three rounds (95% CI) | one round | won / lost | final distance (m): rounds / one "
             "| rounds used (mean) | steps per episode: rounds / one | s per step: rounds / one |",
             "|---|---|---:|---|---:|---|---|---:|---|---|"]
    for r in rows:
        lo, hi = r["success_ci95"]
        lines.append(f"| {r['seed']} | {r['task']} | {r['episodes']} | **{r['success']:.2f}** ({lo:.2f}-{hi:.2f}) | "
                     f"{r['baseline']:.2f} | {r['won']} / {r['lost']} | {r['final_m']:.3f} / {r['baseline_final_m']:.3f} | "
                     f"{r['mean_rounds']:.1f} | {r['steps']:.0f} / {r['baseline_steps']:.0f} | "
                     f"{r['step_s']:.2f} / {r['baseline_step_s']:.2f} |")
    lines += ["", "Step times are from the evaluation runs themselves (two runs of one thread sharing the 2-core CPU; "
              "the baselines ran earlier, as their folders say); quiet timing: quiet_timing/timing.md."]
    write_atomic(HERE / "summary.md", "\n".join(lines) + "\n")
    write_json_atomic(HERE / "summary.json", rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
