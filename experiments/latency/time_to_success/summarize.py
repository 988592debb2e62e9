"""Success against planning time per step, from evaluate runs (experiments/latency/time_to_success/run.sh).

    python experiments/latency/time_to_success/summarize.py --out experiments/latency/time_to_success

Reads every `<task>_<search>_<SxI>_<dtype>/episodes/*.json` here, and the shipped bf16 rows from the
first episodes of experiments/latency/bf16_evaluate/<task> (the same seeds, the same single-process
setup), and writes time_to_success.{json,md,png}. A run folder with a `quiet_timing/` evaluate run
(a few steps of the same settings with nothing else on the CPU) takes its time per step from there:
its own episodes shared the CPU with other jobs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from jepa_ac.evaluate import wilson_interval

BF16_RUNS = Path(__file__).parents[1] / "bf16_evaluate"
LABELS = {"icem": "shipped iCEM", "plain": "plain CEM"}


def episodes(folder: Path) -> list[dict]:
    files = sorted((folder / "episodes").glob("*_planner*.json"))
    if len(files) != 1:
        raise FileNotFoundError(f"{folder}: expected one planner episodes file, found {[f.name for f in files]}")
    return json.loads(files[0].read_text())["episodes"]


def row(task: str, search: str, budget: str, dtype: str, eps: list[dict], source: str) -> dict:
    steps = np.array([e["steps"] for e in eps], float)
    plan_s = np.array([e["plan_s_mean"] for e in eps], float)
    wins = sum(bool(e["success"]) for e in eps)
    machine = eps[0].get("isa") or ""
    return {
        "task": task, "search": search, "budget": budget, "dtype": dtype, "episodes": len(eps), "successes": wins,
        "success_rate": wins / len(eps), "success_ci95": wilson_interval(wins, len(eps)),
        "plan_s_per_step": float((plan_s * steps).sum() / steps.sum()),
        "planning_s_per_episode": float((plan_s * steps).mean()), "mean_steps": float(steps.mean()),
        "samples_per_step": eps[0].get("samples_evaluated", 0) / max(1, eps[0]["steps"]), "isa": machine,
        "source": source,
    }


def quiet_timing(folder: Path, r: dict) -> dict:
    """`r` with its time per step from `folder/quiet_timing` (see the module docstring), if there is one."""
    path = folder / "quiet_timing" / "results.json"
    if not path.is_file():
        return r
    (timed,) = json.loads(path.read_text())["rows"].values()
    steps = sum(e["steps"] for e in episodes(path.parent))
    return {**r, "plan_s_per_step": timed["plan_s_mean"], "planning_s_per_episode": timed["plan_s_mean"] * r["mean_steps"],
            "timing": f"{steps} steps alone on the CPU ({path.parent.name}/); the episodes shared it"}


def collect(root: Path) -> list[dict]:
    rows = []
    for folder in sorted(p for p in root.iterdir() if (p / "episodes").is_dir()):
        task, search, budget, dtype = folder.name.split("_")
        r = row(task, search, budget, dtype, episodes(folder), str(folder.relative_to(root.parents[2])))
        rows.append(quiet_timing(folder, r))
    for shipped in [r for r in rows if r["search"] == "icem" and r["dtype"] == "fp32"]:
        # the shipped settings in bf16: the same first episodes as the float32 run
        task, budget, n = shipped["task"], shipped["budget"], shipped["episodes"]
        eps = episodes(BF16_RUNS / task)[:n]
        rows.append(row(task, "icem", budget, "bf16", eps, f"experiments/latency/bf16_evaluate/{task} (first {n})"))
    return rows


def headline(rows: list[dict], task: str) -> str:
    task_rows = [r for r in rows if r["task"] == task]
    fast = next((r for r in task_rows if r["search"] == "icem" and r["dtype"] == "bf16"), None)
    slow = next((r for r in task_rows if r["search"] == "plain" and r["budget"] == "800x10"), None)
    if fast is None or slow is None:
        return f"{task}: no plain 800 x 10 row"
    n = slow["episodes"]
    same = sum(bool(e["success"]) for e in episodes(BF16_RUNS / task)[:n])  # the shipped bf16 run's first n episodes
    return (f"{task}: plain CEM 800 x 10 (fp32) {slow['successes']}/{n} at {slow['plan_s_per_step']:.2f} s/step, "
            f"shipped iCEM in bf16 {same}/{n} on the same episodes ({fast['successes']}/{fast['episodes']} on the "
            f"first {fast['episodes']}) at {fast['plan_s_per_step']:.2f} s/step: "
            f"{slow['plan_s_per_step'] / fast['plan_s_per_step']:.1f}x less time per step")


def table(rows: list[dict]) -> str:
    lines = ["| task | search | samples x iters | dtype | episodes | success (95% CI) | s / planning step | "
             "planning s / episode | steps |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["task"] != "reach", -r["plan_s_per_step"])):
        lo, hi = r["success_ci95"]
        mark = "*" if "timing" in r else ""
        lines.append(f"| {r['task']} | {LABELS[r['search']]} | {r['budget'].replace('x', ' x ')} | {r['dtype']} | "
                     f"{r['episodes']} | {r['success_rate']:.2f} ({lo:.2f}-{hi:.2f}) | {r['plan_s_per_step']:.2f}{mark} | "
                     f"{r['planning_s_per_episode']:.1f} | {r['mean_steps']:.1f} |")
    notes = [f"\n\n\\* time per step from {r['timing']}" for r in rows if "timing" in r]
    return "\n".join(lines) + "".join(dict.fromkeys(notes))


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    tasks = sorted({r["task"] for r in rows}, key=lambda t: t != "reach")
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    styles = {("icem", "fp32"): ("o", "tab:blue"), ("icem", "bf16"): ("s", "tab:green"),
              ("plain", "fp32"): ("^", "tab:red"), ("plain", "bf16"): ("v", "tab:orange")}
    for ax, task in zip(axes[0], tasks):
        for r in (r for r in rows if r["task"] == task):
            marker, colour = styles[(r["search"], r["dtype"])]
            lo, hi = r["success_ci95"]
            ax.errorbar(r["plan_s_per_step"], r["success_rate"], yerr=[[r["success_rate"] - lo], [hi - r["success_rate"]]],
                        fmt=marker, color=colour, capsize=3, label=f"{LABELS[r['search']]} {r['budget']} {r['dtype']}")
        ax.set_xscale("log")
        ax.set_xticks([t for t in (0.2, 0.3, 0.5, 1, 2, 5, 10, 20) if t <= 1.5 * max(r["plan_s_per_step"] for r in rows)])
        ax.set_xticks([], minor=True)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel("planning time per step (s, log)")
        ax.set_ylabel("success rate (95% CI)")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{task}: the shipped default model, 2-core CPU")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    rows = collect(args.out)
    heads = [headline(rows, t) for t in sorted({r["task"] for r in rows}, key=lambda t: t != "reach")]
    (args.out / "time_to_success.json").write_text(json.dumps({"rows": rows, "headline": heads}, indent=1) + "\n")
    (args.out / "time_to_success.md").write_text("# Success against planning time per step\n\n" + "\n".join(
        f"- {h}" for h in heads) + "\n\n" + table(rows) + "\n")
    plot(rows, args.out / "time_to_success.png")
    print(table(rows), *heads, sep="\n")


if __name__ == "__main__":
    main()
