"""Closed-loop push (or pick-and-place) with the planner, tracing the TCP against each sub-goal.

Runs the episodes `python -m jepa_ac.evaluate` runs (same seeds, same planning flags) and records, at
every step, the goal being aimed at, the TCP and object positions and the observed latent distance.
Per sub-goal it reports the TCP's error (cm) when the planner moved on and the closest it came.

    .venv/bin/python experiments/straight_line_plans/trace.py --env push --episodes 20 --threads 1 \
        --cem horizon=3 repeat_action=true horizon_energy=min samples=64 iterations=3 --out OUT
"""

from __future__ import annotations

import json
import logging
import sys

import numpy as np

from jepa_ac.cli.args import load_model_from_args, planning_from_args
from jepa_ac.control.closed_loop import make_env, run_closed_loop, warm_up
from jepa_ac.data.collection import episode_seed
from jepa_ac.evaluate import build_parser, resolve_envs
from jepa_ac.control import Controller
from jepa_ac.planning import CEMPlanner


def main() -> None:
    args = build_parser().parse_args(sys.argv[1:])
    logging.getLogger("jepa_ac.robot.safety").setLevel(logging.ERROR)  # the held gripper clips every step
    (env_id,) = resolve_envs(args.env)
    defaults = planning_from_args(args, env_id, seed=args.seed)
    wm = load_model_from_args(args)
    env = make_env(env_id, defaults.env, step_budget=defaults.mpc.max_steps)
    unwrapped = env.unwrapped
    obj = "block" if unwrapped.task_name == "push" else "cube"
    obs, _ = env.reset(seed=args.seed)
    warm_up(wm, defaults.cem, defaults.action, obs["image"], obs["state"])
    episodes = []
    for i in range(args.episodes):
        seed = episode_seed(args.seed, i)
        planner = CEMPlanner(wm, defaults.cem.replace(seed=seed), defaults.action)
        trace = []

        def on_step(record, trace=trace):  # the state each action was planned from, and its latent distance
            trace.append({"goal": record.goal_index, "tcp": record.state[:3].tolist(), "gripper": float(record.state[6]),
                          "action": record.action.tolist(), "returned": bool(record.planner.get("returned")),
                          "object": unwrapped.object_pose(obj)[0].tolist(), "latent_distance": record.distance})

        report = run_closed_loop(env, Controller(planner, defaults.mpc), seed=seed, mpc=defaults.mpc,
                                 on_step=on_step)
        targets = np.concatenate([unwrapped.subgoal_states()[:, :3], unwrapped.goal_state()[None, :3]])  # [K, 3]
        per_goal = []
        for g, target in enumerate(targets):
            tcps = np.array([t["tcp"] for t in trace if t["goal"] == g])  # [n, 3]
            if len(tcps):
                errors = np.linalg.norm(tcps - target, axis=1) * 100
                latent = [t["latent_distance"] for t in trace if t["goal"] == g]
                at_best = errors[int(np.argmin(latent))] if None not in latent else None
                per_goal.append({"goal": g, "steps": len(tcps), "error_at_switch_cm": round(float(errors[-1]), 1),
                                 "closest_cm": round(float(errors.min()), 1),
                                 "at_best_latent_cm": None if at_best is None else round(float(at_best), 1)})
        episodes.append({"index": i, "seed": seed, "success": report.success, "steps": report.steps,
                         "final_task_distance": report.metrics()["final_task_distance"],
                         "per_goal": per_goal, "targets": targets.tolist(), "trace": trace})
        print(i, "success" if report.success else "fail", [(p["error_at_switch_cm"], p["closest_cm"], p["at_best_latent_cm"]) for p in per_goal],
              flush=True)
    n_goals = max(len(e["per_goal"]) for e in episodes)
    planning = defaults.to_dict()  # the settings the episodes ran with, action bounds included
    summary = {"env_id": env_id, "episodes": len(episodes), "successes": sum(e["success"] for e in episodes),
               **{section: planning[section] for section in ("cem", "action", "mpc")},
               "median_error_at_switch_cm": [float(np.median([e["per_goal"][g]["error_at_switch_cm"] for e in episodes
                                                              if len(e["per_goal"]) > g])) for g in range(n_goals)],
               "median_closest_cm": [float(np.median([e["per_goal"][g]["closest_cm"] for e in episodes
                                                      if len(e["per_goal"]) > g])) for g in range(n_goals)],
               "median_at_best_latent_cm": [float(np.median([e["per_goal"][g]["at_best_latent_cm"] for e in episodes
                                                             if len(e["per_goal"]) > g])) for g in range(n_goals)]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trace.json").write_text(json.dumps({"summary": summary, "episodes": episodes}) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
