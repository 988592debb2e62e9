"""Per-step latency of the closed loop in-process vs through the planning server, same episodes.

Runs each seeded episode twice with the shipped default model and its planning.json: once with the
controller in this process, once through `python -m jepa_ac.serve` (a subprocess on loopback, as a
robot's link would be) with `PlannerClient`. Both use the same torch thread count. Per step it
records `step_s` (observe + plan + safety + act, what the control loop waits) and the controller's
own time; the outcomes of the two runs are compared too (they must be the same).

    python experiments/serve/controller_latency.py --env push --episodes 3 --threads 1

Writes controller_latency.json and controller_latency.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def isa() -> str:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return ",".join(f for f in ("amx_bf16", "avx512_bf16", "avx2") if f in flags) or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="push")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch

    import jepa_ac
    from jepa_ac.cli.args import DEFAULT_CHECKPOINT
    from jepa_ac.serving.client import PlannerClient
    from jepa_ac.control.closed_loop import make_env, run_closed_loop, warm_up
    from jepa_ac.data.collection import episode_seed
    from jepa_ac.control import Controller
    from jepa_ac.envs import resolve_env_id
    from jepa_ac.planning import CEMPlanner
    from jepa_ac.planning.defaults import PlanningDefaults

    torch.set_num_threads(args.threads)
    env_id = resolve_env_id(args.env)
    defaults = PlanningDefaults.for_checkpoint(DEFAULT_CHECKPOINT).for_env(env_id)
    wm = jepa_ac.load_world_model(DEFAULT_CHECKPOINT)
    env = make_env(env_id, defaults.env, step_budget=defaults.mpc.max_steps)
    obs, _ = env.reset(seed=0)
    warm_up(wm, defaults.cem, defaults.action, obs["image"], obs["state"])
    server = subprocess.Popen([sys.executable, "-m", "jepa_ac.serve", "--port", "0", "--threads", str(args.threads),
                               "--log-level", "WARNING"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    line = ""
    while "listening on" not in line:
        line = server.stdout.readline()
        if not line and server.poll() is not None:
            raise SystemExit("the server did not start")
    url = line.split("listening on", 1)[1].strip()
    rows = []
    try:
        with PlannerClient(url, timeout=600) as client:
            client.task = env_id
            for i in range(args.episodes):
                seed = episode_seed(0, i)
                local = run_closed_loop(env, Controller(CEMPlanner(wm, defaults.cem.replace(seed=seed), defaults.action),
                                                        defaults.mpc), seed=seed, mpc=defaults.mpc)
                client.seed = seed
                remote = run_closed_loop(env, client, seed=seed, mpc=defaults.mpc)
                same = (local.success == remote.success and local.steps == remote.steps
                        and np.allclose(local.actions, remote.actions, atol=1e-6))
                rows.append({"seed": seed, "steps": local.steps, "same_outcome": bool(same),
                             "success": [local.success, remote.success],
                             "in_process_step_s": local.step_s, "server_step_s": remote.step_s,
                             "in_process_plan_s": local.plan_s, "server_plan_s": remote.plan_s})
                print(f"episode {i}: {local.steps} steps, same outcome {same}, step median "
                      f"{np.median(local.step_s):.3f} s in-process vs {np.median(remote.step_s):.3f} s server", flush=True)
    finally:
        server.terminate()
        server.wait(30)
        env.close()

    def stats(key: str) -> dict[str, float]:
        values = np.concatenate([r[key] for r in rows])
        return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90)), "mean": float(values.mean())}

    local_s, remote_s = stats("in_process_step_s"), stats("server_step_s")
    summary = {"env_id": env_id, "episodes": len(rows), "steps": int(sum(r["steps"] for r in rows)),
               "threads": args.threads, "isa": isa(), "cpu": platform.processor() or platform.machine(),
               "same_outcomes": all(r["same_outcome"] for r in rows),
               "in_process_step_s": local_s, "server_step_s": remote_s,
               "server_plan_s": stats("server_plan_s"), "in_process_plan_s": stats("in_process_plan_s"),
               "median_ratio_server_over_in_process": remote_s["median"] / local_s["median"],
               "median_wire_overhead_s": remote_s["median"] - local_s["median"], "episodes_detail": rows}
    (HERE / "controller_latency.json").write_text(json.dumps(summary, indent=1) + "\n")
    md = (f"# Closed-loop step latency: in-process vs through the planning server\n\n"
          f"`python experiments/serve/controller_latency.py --env {args.env} --episodes {args.episodes} "
          f"--threads {args.threads}`: shipped default model and planning.json, {env_id}, {summary['steps']} steps "
          f"per path, {args.threads} torch thread(s) in each process, ISA {summary['isa']}, 2-core CPU. A step is "
          "observe + plan + safety + act.\n\n"
          "| path | median step (s) | p90 step (s) | mean step (s) |\n|---|---|---|---|\n"
          f"| in-process controller | {local_s['median']:.3f} | {local_s['p90']:.3f} | {local_s['mean']:.3f} |\n"
          f"| server on loopback (PlannerClient) | {remote_s['median']:.3f} | {remote_s['p90']:.3f} | "
          f"{remote_s['mean']:.3f} |\n\n"
          f"Server / in-process (median): {summary['median_ratio_server_over_in_process']:.3f}; the wire adds "
          f"{1000 * summary['median_wire_overhead_s']:.0f} ms a step. Same outcomes on every episode: "
          f"{summary['same_outcomes']}.\n")
    (HERE / "controller_latency.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
