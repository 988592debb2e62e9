"""Table of the snapshot runs (run.sh): push success per kept snapshot, paired episode by episode with
the same run's final predictor and with the shipped model in bf16 on the same episodes.

    python experiments/predictor_snapshots/summarize.py      # writes summary.json and summary.md here
"""

from __future__ import annotations

import json
from pathlib import Path

from jepa_ac.evaluate import wilson_interval

HERE = Path(__file__).resolve().parent

EPISODES = "episodes/FrankaPush-v0_planner_subgoals.json"
SHIPPED = {"seeds0": HERE.parent / "latency/bf16_evaluate/push", "seeds1": HERE.parent / "latency/bf16_evaluate/fresh_seeds"}


def load(folder: Path) -> dict[int, dict]:
    path = folder / EPISODES
    return {e["index"]: e for e in json.loads(path.read_text())["episodes"]} if path.is_file() else {}


def paired(a: dict[int, dict], b: dict[int, dict]) -> tuple[int, int]:
    """(won, lost) by `a` against `b` over the episodes both ran."""
    both = sorted(set(a) & set(b))
    return (sum(a[i]["success"] and not b[i]["success"] for i in both),
            sum(b[i]["success"] and not a[i]["success"] for i in both))


def main() -> None:
    rows = []
    for seeds_dir in sorted(p for p in HERE.glob("seeds*") if p.is_dir()):
        shipped = load(SHIPPED[seeds_dir.name]) if seeds_dir.name in SHIPPED else {}
        final = load(seeds_dir / "final")
        for run in sorted(p for p in seeds_dir.iterdir() if p.is_dir()):
            episodes = load(run)
            if not episodes:
                continue
            n, k = len(episodes), sum(bool(e["success"]) for e in episodes.values())
            plan_s = [t for e in episodes.values() for t in e["per_step"]["plan_s"]]
            shipped_same = {i: shipped[i] for i in episodes if i in shipped}
            rows.append({
                "seeds": seeds_dir.name, "snapshot": run.name, "episodes": n, "successes": k, "success_rate": k / n,
                "success_rate_ci95": list(wilson_interval(k, n)),
                "mean_final_block_to_target": sum(e["final_task_distance"] for e in episodes.values()) / n,
                "plan_s_mean": sum(plan_s) / len(plan_s),
                "vs_final_won_lost": list(paired(episodes, final)) if run.name != "final" and final else None,
                "shipped_successes_same_episodes": sum(bool(e["success"]) for e in shipped_same.values()),
                "vs_shipped_won_lost": list(paired(episodes, shipped)) if shipped_same else None,
            })
    (HERE / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| seeds | snapshot (step) | episodes | success (95% CI) | final block distance (m) | vs final: won / lost "
             "| shipped, same episodes | vs shipped: won / lost | s/step |",
             "|---|---|---:|---|---:|---|---:|---|---:|"]
    for r in rows:
        lo, hi = r["success_rate_ci95"]
        vs_final = "-" if r["vs_final_won_lost"] is None else "{} / {}".format(*r["vs_final_won_lost"])
        vs_shipped = "-" if r["vs_shipped_won_lost"] is None else "{} / {}".format(*r["vs_shipped_won_lost"])
        lines.append(f"| {r['seeds']} | {r['snapshot']} | {r['episodes']} | {r['success_rate']:.2f} ({lo:.2f}-{hi:.2f}) | "
                     f"{r['mean_final_block_to_target']:.3f} | {vs_final} | {r['shipped_successes_same_episodes']}/{r['episodes']} "
                     f"| {vs_shipped} | {r['plan_s_mean']:.2f} |")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
