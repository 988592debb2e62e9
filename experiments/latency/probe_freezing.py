"""A/B of inductor's graph freezing on the compiled rollout step: one bench-model CEM step (800 x 10,
horizon 1, bf16) with the predictor step compiled plainly (as `TorchBackend.set_compile` does) and
compiled with `freezing` (tried in session 22: no gain). One mode per process:

    python experiments/latency/probe_freezing.py --mode plain --threads 2 --size mid
    python experiments/latency/probe_freezing.py --mode frozen --threads 2 --size mid
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLIs set it, before torch loads OpenMP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("plain", "frozen"), required=True)
    parser.add_argument("--size", default="mid", choices=("tiny", "mid"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    import torch

    from jepa_ac.bench.latency import STATE, build_model, scene
    from jepa_ac.planning.action_spec import ActionSpec
    from jepa_ac.planning.cem import CEMConfig, sample_noise
    from jepa_ac.planning.reference import fast_plan

    torch.set_num_threads(args.threads)
    wm = build_model(args.size, "cpu", "bfloat16", 0)
    frame, goal = scene(wm, 0)
    config = CEMConfig(samples=800, iterations=10, topk=10, horizon=1, seed=0)
    noise = sample_noise(config, ActionSpec(), np.random.default_rng(0))
    goal_latent = wm.encode(goal)
    wm.backend.set_compile(True)  # compiled graphs run on the caller's threads; then pick the compile mode
    options = {"freezing": True} if args.mode == "frozen" else {}
    wm.backend._frame_step = torch.compile(wm.backend.predictor.frame_step, dynamic=False, options=options)
    start = time.perf_counter()
    fast_plan(wm, frame, STATE, goal_latent, config, noise)
    warm = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fast_plan(wm, frame, STATE, goal_latent, config, noise)
        times.append(time.perf_counter() - start)
    print(f"{args.size} {args.mode} {args.threads} threads: warm-up {warm:.1f} s, steps {[round(t, 2) for t in times]} s")


if __name__ == "__main__":
    main()
