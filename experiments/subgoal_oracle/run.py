"""How well would the push and pick-and-place sub-goal schedules do if the planner reached every
sub-goal exactly, or to within a given error? No world model: a proportional controller drives
the TCP to the positions shown in the env's sub-goal images (`subgoal_states()`, then
`goal_state()`), with the planner's action bounds (planning.json's step per axis, or `--step`;
rotation held as the shipped planning.json holds it), and a Gaussian error of `sigma` m (x, y; 0.3 sigma in z) added to every
sub-goal's position stands in for the planner's imprecision.

    .venv/bin/python experiments/subgoal_oracle/run.py --episodes 50 --out experiments/subgoal_oracle

`--moves box` clips each axis to the step (the move goes diagonal first, then along one axis), as the
first version of this script did; `--moves straight` scales the whole move down, so it stays on the
line, as a planner's straight-line candidate can. `--push-waypoints 1 2 3` compares push schedules
with that many way-point images along the push (the env's `push_waypoints`).

Episode i uses the same seeded scene as `python -m jepa_ac.evaluate` (seed derived from (0, i)).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from jepa_ac.control.closed_loop import TASK_DISTANCE, make_env  # noqa: E402
from jepa_ac.data.collection import episode_seed  # noqa: E402
from jepa_ac.evaluate import wilson_interval  # noqa: E402
from jepa_ac.planning import ActionSpec  # noqa: E402
from jepa_ac.planning.defaults import PlanningDefaults  # noqa: E402

ENVS = {"push": "jepa_ac/FrankaPush-v0", "pickplace": "jepa_ac/FrankaPickPlace-v0"}
TOLERANCE = 0.005  # m: a sub-goal counts as reached this close to its (perturbed) position
STEPS_PER_GOAL = 15  # as mpc.subgoal_max_steps


def move_toward(state: np.ndarray, target: np.ndarray, step: float, moves: str) -> np.ndarray:
    """[3] translation from `state` [7] toward the position `target` [3] within +-`step` per axis:
    clipped per axis ("box": diagonal first, then along one axis) or scaled down as a whole
    ("straight": along the line, as a planner's straight-line candidate can move; `ActionSpec.move_toward`)."""
    if moves == "box":
        return np.clip(target - state[:3], -step, step)
    return ActionSpec(max_translation=step).move_toward(state, np.concatenate([target, state[3:]]))[:3]


def run_episode(env, seed: int, sigma: float, step: float, hold_gripper: float | None, moves: str = "box",
                rounds: int = 1, max_steps: int | None = None) -> dict:
    """One episode through the sub-goals; with `rounds` > 1, further rounds of way-points from where the
    objects lie after each (`env.new_subgoal_round()`, as `mpc.subgoal_rounds`), within `max_steps`."""
    u = env.unwrapped
    rng = np.random.default_rng(seed + 7)
    obs, info = env.reset(seed=seed)
    steps, done_rounds = 0, 0
    for k in range(rounds):
        if k > 0 and not u.new_subgoal_round():
            break
        done_rounds += 1
        goals = np.concatenate([u.subgoal_states(), u.goal_state()[None]])  # [K, 7]
        for goal in goals:
            target = goal[:3] + (rng.normal(0.0, sigma, 3) * [1.0, 1.0, 0.3] if sigma > 0 else 0.0)
            for _ in range(STEPS_PER_GOAL):
                if max_steps is not None and steps >= max_steps:
                    break
                state = obs["state"]
                action = np.zeros(7, np.float32)
                action[:3] = move_toward(state, target, step, moves)
                action[6] = hold_gripper if hold_gripper is not None else goal[6] - state[6]
                obs, _, _, _, info = env.step(action)
                steps += 1
                if np.linalg.norm(target - obs["state"][:3]) < TOLERANCE:
                    break
    return {"seed": seed, "success": bool(info["success"]), "final_task_distance": float(info[TASK_DISTANCE[u.task_name]]),
            "steps": steps, "rounds": done_rounds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.01, 0.02])
    parser.add_argument("--env", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--out", type=Path, default=Path("experiments/subgoal_oracle"))
    parser.add_argument("--moves", choices=["box", "straight"], default="box",
                        help="per-axis clipped moves (box) or moves scaled along the line (straight)")
    parser.add_argument("--step", type=float, default=None, help="m per axis per step (default: planning.json's)")
    parser.add_argument("--push-waypoints", type=int, nargs="+", default=[None],
                        help="push: way-point images along the push (the env's push_waypoints; default the env's)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of way-points, each from where the objects lie (as mpc.subgoal_rounds)")
    parser.add_argument("--max-steps", type=int, default=None, help="actions per episode, all rounds together")
    args = parser.parse_args(argv)
    shipped = PlanningDefaults.for_checkpoint("jepa_ac/assets/default_model")
    rows = []
    for name in args.env:
        defaults = shipped.for_env(ENVS[name])
        frozen = dict(defaults.action.frozen)
        step = args.step or defaults.action.max_translation
        for waypoints in (args.push_waypoints if name == "push" else [None]):
            env = make_env(ENVS[name], defaults.env, **({} if waypoints is None else {"push_waypoints": waypoints}))
            for sigma in args.sigmas:
                episodes = [run_episode(env, episode_seed(0, i), sigma, step, frozen.get("dgripper"), args.moves,
                                        args.rounds, args.max_steps) for i in range(args.episodes)]
                wins = sum(e["success"] for e in episodes)
                rows.append({"task": name, "push_waypoints": getattr(env.unwrapped, "push_waypoints", None),
                             "moves": args.moves, "step_m": step, "sigma_m": sigma, "episodes": len(episodes),
                             "rounds": args.rounds, "max_steps": args.max_steps,
                             "mean_rounds": float(np.mean([e["rounds"] for e in episodes])),
                             "mean_steps": float(np.mean([e["steps"] for e in episodes])),
                             "successes": wins, "success_rate": wins / len(episodes),
                             "ci95": list(wilson_interval(wins, len(episodes))),
                             "mean_final_task_distance": float(np.mean([e["final_task_distance"] for e in episodes])),
                             "per_episode": episodes})
                print(f"{name} waypoints {waypoints} sigma {sigma:.3f}: {wins}/{len(episodes)}", file=sys.stderr)
            env.close()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))
    (args.out / "results.md").write_text(table(rows))
    print(table(rows))
    return 0


def table(rows: list[dict]) -> str:
    lines = ["| task | way-points along the push | moves, step (cm) | rounds (max), steps | sub-goal error sigma (cm) "
             "| episodes | success (95% CI) | final task distance (m) |",
             "|---|---:|---|---|---:|---:|---|---:|"]
    for r in rows:
        waypoints = "" if r["push_waypoints"] is None else r["push_waypoints"]
        lines.append(f"| {r['task']} | {waypoints} | {r['moves']}, {100 * r['step_m']:.1f} "
                     f"| {r['mean_rounds']:.1f} ({r['rounds']}), {r['mean_steps']:.0f} | {100 * r['sigma_m']:.1f} "
                     f"| {r['episodes']} | {r['success_rate']:.2f} "
                     f"({r['ci95'][0]:.2f}-{r['ci95'][1]:.2f}) | {r['mean_final_task_distance']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
