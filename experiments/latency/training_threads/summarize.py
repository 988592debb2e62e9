"""Seconds per predictor training step for each thread setup of run.sh, alone and two at once.

    python experiments/latency/training_threads/summarize.py   # after run.sh

A step's time is the wall clock between the logged steps 20 and the last (the first 20 steps warm up),
divided by the steps between; with two trainings at once, the mean of the two. The `round*` runs
repeat the default and spinning setups alone, interleaved. Writes results.json
and results.md here.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from jepa_ac.world_model.precision import host_isa

HERE = Path(__file__).parent
RUNS = Path(__file__).resolve().parents[3] / "runs" / "training_threads"
SETUPS = {"default": "the CLI's default: torch's threads, OMP_WAIT_POLICY=PASSIVE",
          "spinning": "torch's threads, OMP_WAIT_POLICY=ACTIVE (spinning)",
          "one": "OMP_NUM_THREADS=1"}


def seconds_per_step(metrics: Path, first: int = 20) -> float:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "step_time" in r]
    start = next(r for r in rows if r["step"] == first)
    end = rows[-1]
    return (end["time"] - start["time"]) / (end["step"] - start["step"])


def main() -> None:
    rows = []
    for setup, what in SETUPS.items():
        alone = seconds_per_step(RUNS / f"alone_{setup}" / "a" / "metrics.jsonl")
        pair = [seconds_per_step(RUNS / f"pair_{setup}" / job / "metrics.jsonl") for job in ("a", "b")]
        rows.append({"setup": setup, "what": what, "alone_s_per_step": alone, "pair_s_per_step": pair,
                     "pair_mean_s_per_step": sum(pair) / 2})
    base = next(r for r in rows if r["setup"] == "one")
    for r in rows:
        r["alone_vs_one_thread"] = base["alone_s_per_step"] / r["alone_s_per_step"]  # > 1: faster than one thread
        r["pair_vs_one_thread"] = base["pair_mean_s_per_step"] / r["pair_mean_s_per_step"]
    rounds = {setup: [seconds_per_step(RUNS / f"round{k}_{setup}" / "metrics.jsonl") for k in (1, 2)]
              for setup in ("default", "spinning")}
    host = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "isa": host_isa()}
    (HERE / "results.json").write_text(json.dumps({"host": host, "rows": rows, "alone_rounds": rounds}, indent=2) + "\n")
    lines = [f"Host: {host['cpus']} CPUs, ISA {host['isa']['row']}. Seconds per training step (shipped predictor recipe, "
             "batch 16, bf16 autocast where the CPU has it); speed relative to one thread in brackets.", "",
             "| setup | alone | two at once (each) |", "|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['alone_s_per_step']:.3f} ({r['alone_vs_one_thread']:.2f}x) | "
                     f"{r['pair_s_per_step'][0]:.3f} / {r['pair_s_per_step'][1]:.3f} ({r['pair_vs_one_thread']:.2f}x) |")
    lines += ["", "Alone again, interleaved (rounds 1, 2): the default "
              + " / ".join(f"{t:.3f}" for t in rounds["default"]) + " s, spinning "
              + " / ".join(f"{t:.3f}" for t in rounds["spinning"]) + " s per step."]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
