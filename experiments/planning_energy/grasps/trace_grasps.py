"""Trace pick-and-place episodes step by step: which goal the planner aims at, the measured gripper
closedness, the cube's height, the TCP-to-cube distance and both positions (from the simulator, for diagnosis
only).

    .venv/bin/python experiments/planning_energy/grasps/trace_grasps.py --seed 1 --indices 3 8 9 \\
        --out experiments/planning_energy/grasps/traces.json [--mpc regrasps=2 ...]

Any other argument is an `evaluate` flag (model, planning overrides); episode i uses the same env
seed as `evaluate --seed S` does, so the traces replay `evaluate`'s episodes step for step.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from jepa_ac.control import Controller
from jepa_ac.control.closed_loop import run_closed_loop
from jepa_ac.data.collection import episode_seed
from jepa_ac.evaluate import EpisodeRunner, build_parser, policy_defaults

ENV_ID = "jepa_ac/FrankaPickPlace-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--indices", type=int, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    ours, rest = parser.parse_known_args()
    args = build_parser().parse_args(["--env", ENV_ID, *rest])
    logging.getLogger("jepa_ac.robot.safety").setLevel(logging.ERROR)
    defaults, _ = policy_defaults(ENV_ID, "planner", ours.seed, args)
    runner = EpisodeRunner(ENV_ID, "planner", ours.seed, defaults, args)
    episodes = []
    for index in ours.indices:
        seed = episode_seed(ours.seed, index)
        controller = Controller(runner.make_planner(runner.wm, defaults.cem.replace(seed=seed), defaults.action),
                                defaults.mpc)
        steps: list[dict] = []

        def on_step(record, env=runner.env.unwrapped) -> None:
            info = env._info()
            steps.append({"goal_index": record.goal_index, "gripper": round(info["gripper_position"], 3),
                          "cube_height": round(info["cube_height"], 4), "ee_to_cube": round(info["ee_to_cube"], 4),
                          "tcp_z": round(float(info["cartesian_position"][2]), 4),
                          "tcp": [round(float(v), 4) for v in info["cartesian_position"][:3]],
                          "cube": [round(float(v), 4) for v in env.object_pose("cube")[0]]})

        report = run_closed_loop(runner.env, controller, seed=seed, mpc=defaults.mpc, on_step=on_step)
        metrics = report.metrics()
        episodes.append({"index": index, "seed": seed, "success": report.success, "steps": report.steps,
                         "regrasps": metrics["regrasps"], "final_task_distance": report.task_distance,
                         "trace": steps})
        print(f"episode {index}: success {report.success}, {metrics['regrasps']} regrasps", flush=True)
        ours.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = ours.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seed": ours.seed, "mpc": vars(defaults.mpc), "episodes": episodes}, indent=1))
        tmp.replace(ours.out)
    runner.close()


if __name__ == "__main__":
    main()
