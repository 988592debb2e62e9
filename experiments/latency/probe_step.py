"""Where the shipped model's planning step spends its time: encoding the current frame, the CEM's
predictor rollouts, and the rest (sampling, energies, bookkeeping), plus the rollout's top torch ops.

    python experiments/latency/probe_step.py --env reach --dtype auto --out experiments/latency/step_reach.json

One process with the commands' default threads (the rollout's worker threads; OMP_WAIT_POLICY=PASSIVE
as the CLIs set it), the env's first seeded scene and goal, the checkpoint's planning.json for that
env; `--steps` timed plans after 2 warm-up ones (each from a reset planner: no warm start carried
over), then a torch-profiler pass over 3 more for the op table, with the samples on the calling thread
(the profiler records that thread's ops only), so its shares are of that 2-thread run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLIs set it, before torch loads OpenMP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="reach")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import gymnasium as gym
    import numpy as np
    import torch

    import jepa_ac
    import jepa_ac.envs  # noqa: F401  (registers the env ids)
    from jepa_ac.bench.latency import machine_info
    from jepa_ac.cli.args import DEFAULT_CHECKPOINT
    from jepa_ac.envs import resolve_env_id
    from jepa_ac.planning.defaults import PlanningDefaults
    from jepa_ac.world_model.precision import choose_planning_dtype

    env_id = resolve_env_id(args.env)
    defaults = PlanningDefaults.for_checkpoint(DEFAULT_CHECKPOINT).for_env(env_id)
    dtype = choose_planning_dtype("cpu", args.dtype)
    wm = jepa_ac.load_world_model(DEFAULT_CHECKPOINT, device="cpu", dtype=dtype)
    env = gym.make(env_id, image_size=defaults.env.image_size, exterior_view=defaults.env.exterior_view)
    obs, _ = env.reset(seed=0)
    planner = jepa_ac.CEMPlanner(wm, defaults.cem, defaults.action)
    planner.set_goal(env.unwrapped.goal_image())

    spent: dict[str, float] = collections.defaultdict(float)
    for part in ("encode", "rollout"):
        inner = getattr(wm.backend, part)

        def timed(*a, _inner=inner, _part=part, **k):
            start = time.perf_counter()
            out = _inner(*a, **k)
            spent[_part] += time.perf_counter() - start
            return out

        setattr(wm.backend, part, timed)

    def step() -> float:
        planner.reset()
        start = time.perf_counter()
        planner.plan(obs["image"], obs["state"])
        return time.perf_counter() - start

    for _ in range(2):
        step()
    spent.clear()
    times = [step() for _ in range(args.steps)]
    total = float(np.sum(times))
    parts = {k: v / args.steps for k, v in spent.items()}
    parts["rest"] = (total - sum(spent.values())) / args.steps
    workers, wm.backend.rollout_workers = wm.backend.rollout_workers, 1  # the profiler sees the calling thread
    with torch.profiler.profile() as prof:
        for _ in range(3):
            step()
    wm.backend.rollout_workers = workers
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    all_ops = sum(e.self_cpu_time_total for e in ops)
    top = [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / all_ops, "calls_per_step": e.count / 3}
           for e in ops[:12]]
    result = {"env_id": env_id, "dtype": dtype, "threads": torch.get_num_threads(),
              "rollout_workers": wm.backend.rollout_workers, "cem": dict(vars(defaults.cem)),
              "step_s_median": float(np.median(times)), "step_s_mean": total / args.steps,
              "seconds_per_step": parts, "top_ops": top, "machine": machine_info()}
    with open(args.out, "w") as f:
        f.write(json.dumps(result, indent=1, default=str) + "\n")
    print(f"{env_id} {dtype}: {result['step_s_median']:.3f} s/step median;",
          ", ".join(f"{k} {v:.3f} s" for k, v in parts.items()))
    for row in top:
        print(f"  {row['op']:<48} {100 * row['self_cpu_share']:5.1f}%  {row['calls_per_step']:.0f}/step")


if __name__ == "__main__":
    main()
