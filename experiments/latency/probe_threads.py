"""Torch threads on a shared CPU: the default model's planning step with 1 and 2 threads, with and
without a second CPU-bound process (a Python busy loop), interleaved rounds (issue 30; README.md here).

    python experiments/latency/probe_threads.py --rounds 2 --out experiments/latency/threads_probe.json
    python experiments/latency/probe_threads.py --rounds 3 --dtype auto --workers \
        --out experiments/latency/threads_probe_workers.json     # with the rollout's worker threads

Each cell is a fresh process planning 5 steps (CEM 128 x 4, warm start, iCEM elite reuse: the
shipped reach settings) after one warm-up step; `2 passive` sets OMP_WAIT_POLICY=PASSIVE (OpenMP
threads sleep at barriers instead of spinning). OMP_NUM_THREADS is removed from the children.
In every cell but `2 workers` the CEM samples run on the calling thread (`rollout_workers` 1), so
2 threads means 2 OpenMP threads inside each op; `2 workers` (the default since) runs the sample
chunks on 2 worker threads of 1 OpenMP thread each, with the caller's 2 threads passive.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CELLS = (("1", 1, False, 1), ("2", 2, False, 1), ("2 passive", 2, True, 1))  # name, threads, passive, workers
WORKER_CELLS = (("2 workers", 2, True, 2),)


def child(threads: int, steps: int, workers: int, dtype: str) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    import jepa_ac
    from jepa_ac.bench.latency import STATE, scene
    from jepa_ac.cli.args import DEFAULT_CHECKPOINT
    from jepa_ac.planning import CEMConfig, CEMPlanner

    from jepa_ac.world_model.precision import choose_planning_dtype

    wm = jepa_ac.load_world_model(DEFAULT_CHECKPOINT, device="cpu", dtype=choose_planning_dtype("cpu", dtype))
    wm.backend.rollout_workers = workers
    frame, goal = scene(wm, 0)
    planner = CEMPlanner(wm, CEMConfig(samples=128, iterations=4, topk=12, warm_start=True, keep_elites=0.3))
    planner.set_goal(goal)
    planner.plan(frame, STATE)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        planner.plan(frame, STATE)
        times.append(time.perf_counter() - start)
    print(json.dumps({"times_s": times, "median_s": float(np.median(times)), "load": os.getloadavg()[0]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtype", default="float32", help="the networks' dtype (auto: what planning picks here)")
    parser.add_argument("--workers", action="store_true", help="add the `2 workers` cell (the rollout's worker threads)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.steps, args.child_workers, args.dtype)
    from jepa_ac.bench.latency import machine_info

    rows = []
    for r in range(args.rounds):
        for competitor in ("none", "busy loop"):
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competitor != "none" else None
            try:
                for name, threads, passive, workers in CELLS + (WORKER_CELLS if args.workers else ()):
                    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
                    if passive:
                        env["OMP_WAIT_POLICY"] = "PASSIVE"
                    out = subprocess.run([sys.executable, __file__, "--child", str(threads), "--steps", str(args.steps),
                                          "--child-workers", str(workers), "--dtype", args.dtype, "--out", "-"],
                                         env=env, capture_output=True, text=True, check=True)
                    row = {"round": r + 1, "competitor": competitor, "threads": name, **json.loads(out.stdout)}
                    rows.append(row)
                    print(f"round {r + 1}, {competitor}, {name} threads: {row['median_s']:.2f} s (load {row['load']:.1f})",
                          flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    with open(args.out, "w") as f:
        f.write(json.dumps({"machine": machine_info(), "dtype": args.dtype, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
