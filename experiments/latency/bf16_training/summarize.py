"""Loss curves of float32 and bf16-autocast training runs side by side (run.sh here).

    python experiments/latency/bf16_training/summarize.py --runs runs/bf16_training --out experiments/latency/bf16_training

Copies each run's metrics.jsonl here (`<run>.metrics.jsonl`), and writes bf16_training.{json,md,png}:
per run the median step time, the first and last training losses (mean of 5 logged values) and the
last validation losses; per trainer the bf16 / float32 ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from jepa_ac.world_model.precision import host_isa

RUNS = {"pretrain": ("loss", "val_loss"), "predictor": ("loss", "val_loss_tf")}
DTYPES = ("float32", "bfloat16")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summary(records: list[dict], train_key: str, val_key: str) -> dict:
    train = [r for r in records if train_key in r and "step_time" in r]
    val = [r for r in records if val_key in r]
    losses = [r[train_key] for r in train]
    return {
        "steps": train[-1]["step"], "median_step_s": float(np.median([r["step_time"] for r in train[1:]])),
        "first_loss": float(np.mean(losses[:5])), "last_loss": float(np.mean(losses[-5:])),
        "last_val_loss": val[-1][val_key] if val else None, "val_step": val[-1]["step"] if val else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="folder with pretrain_<dtype> / predictor_<dtype> runs")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result, lines = {"isa": host_isa(), "runs": {}}, []
    fig, axes = plt.subplots(1, len(RUNS), figsize=(6 * len(RUNS), 4))
    for ax, (trainer, (train_key, val_key)) in zip(axes, RUNS.items()):
        losses = []  # per dtype, the logged training losses
        for dtype, colour in zip(DTYPES, ("tab:blue", "tab:orange")):
            name = f"{trainer}_{dtype}"
            metrics = args.runs / name / "metrics.jsonl"
            shutil.copyfile(metrics, args.out / f"{name}.metrics.jsonl")
            records = read(metrics)
            result["runs"][name] = summary(records, train_key, val_key)
            train = [(r["step"], r[train_key]) for r in records if train_key in r and "step_time" in r]
            losses.append(np.array([loss for _, loss in train]))
            val = [(r["step"], r[val_key]) for r in records if val_key in r]
            ax.plot(*zip(*train), color=colour, alpha=0.8, label=f"{dtype} train")
            if val:
                ax.plot(*zip(*val), "o--", color=colour, label=f"{dtype} validation")
        f32, b16 = result["runs"][f"{trainer}_float32"], result["runs"][f"{trainer}_bfloat16"]
        result[f"{trainer}_speedup"] = f32["median_step_s"] / b16["median_step_s"]
        result[f"{trainer}_max_rel_loss_diff"] = float(np.max(np.abs(losses[1] - losses[0]) / np.abs(losses[0])))
        ax.set_title(f"{trainer}: {train_key} / {val_key}")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"float32 vs bf16 autocast on the CPU ({result['isa']['label']}/{result['isa']['torch_cpu_capability']})")
    fig.tight_layout()
    fig.savefig(args.out / "bf16_training.png", dpi=120)
    lines = ["| run | steps | median s/step | train loss first -> last | last validation loss (step) |",
             "|---|---|---|---|---|"]
    for name, r in result["runs"].items():
        val = "-" if r["last_val_loss"] is None else f"{r['last_val_loss']:.4f} ({r['val_step']})"
        lines.append(f"| {name} | {r['steps']} | {r['median_step_s']:.3f} | {r['first_loss']:.4f} -> {r['last_loss']:.4f} | {val} |")
    lines += ["", *(f"- {t}: bf16 step {result[f'{t}_speedup']:.2f}x the speed of float32; logged training losses "
                    f"within {100 * result[f'{t}_max_rel_loss_diff']:.2f}% of float32's at every step" for t in RUNS)]
    (args.out / "bf16_training.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "bf16_training.md").write_text("# float32 vs bf16 autocast training on the CPU\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
