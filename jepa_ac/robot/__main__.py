r"""Drive a robot to goal images through a planning server: `python -m jepa_ac.robot`.

The server (`python -m jepa_ac.serve`, on the GPU box) runs the closed-loop controller with the
model's own planning settings for the task; this process observes, sends each frame and state,
passes every action through the safety layer and executes it (`jepa_ac.robot.run_episode`).

    # the simulator through exactly the path a real robot takes (its own goal images by default)
    python -m jepa_ac.robot --server ws://127.0.0.1:8765 --robot sim:push --seed 3

    # a DROID Franka (droid's RobotEnv), two sub-goal images then the goal, grippers as they show
    python -m jepa_ac.robot --server ws://gpu-box:8765 --robot droid --task pickplace \
        --goal above.png grasped.png goal.png --goal-gripper open closed closed

Safety limits: `--safety FILE` (YAML, `SafetyConfig` fields), by default the shipped
`jepa_ac/robot/safety_default.yaml`; the simulator uses limits as wide as its action space unless
`--safety` is given. Writes `--out/episode.json` (status, steps, distances, actions).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.robot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="planning server URL, e.g. ws://127.0.0.1:8765")
    parser.add_argument("--token", help="the server's shared token (or set $JEPA_AC_TOKEN)")
    parser.add_argument("--robot", default="sim:reach",
                        help="sim:<env id or short name> (the simulator through the robot path) or droid")
    parser.add_argument("--task", help="the task whose planning settings the server uses (default: the sim env's, "
                                       "else the server's default)")
    parser.add_argument("--goal", type=Path, nargs="+", help="goal image(s): sub-goals in order, then the goal "
                                                             "(sim: default the env's own)")
    parser.add_argument("--goal-gripper", nargs="+", metavar="G",
                        help="the gripper each --goal image shows: open, closed or a closedness in [0, 1]")
    parser.add_argument("--safety", type=Path, help="YAML safety limits (default: the shipped safety_default.yaml)")
    parser.add_argument("--max-steps", type=int, help="step budget (default: the task's mpc.max_steps)")
    parser.add_argument("--seed", type=int, default=0, help="sim reset seed and the server planner's seed")
    droid = parser.add_argument_group("--robot droid (droid.robot_env.RobotEnv)")
    droid.add_argument("--camera-id", help="the exterior camera's id in RobotEnv's observation['image']")
    droid.add_argument("--action-space", default="cartesian_position", help="cartesian_position or cartesian_velocity")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one plan")
    parser.add_argument("--out", type=Path, default=Path("runs/robot"), help="output folder for episode.json")
    return parser


def read_goals(args: argparse.Namespace, size: int | None) -> tuple[list[np.ndarray] | None, list[float] | None]:
    """--goal images (resized like the camera's) and --goal-gripper values, or (None, None)."""
    from jepa_ac.cli.goals import parse_goal_grippers, read_goal_image
    from jepa_ac.model.preprocess import load_image

    if not args.goal:
        if args.goal_gripper:
            raise ValueError("--goal-gripper needs --goal images")
        return None, None
    goals = [read_goal_image(p, size)[0] if size else load_image(p, "goal") for p in args.goal]
    grippers = parse_goal_grippers(args.goal_gripper, len(goals)) if args.goal_gripper else None
    return goals, grippers


def run_sim(args: argparse.Namespace, client: Any, planning: dict[str, Any], env_id: str) -> dict[str, Any]:
    """The simulator behind the robot path: `run_closed_loop` with the client as the policy (as
    `evaluate --server` does), env options and step budget from the server's settings for the task."""
    from jepa_ac.control.closed_loop import make_env, run_closed_loop
    from jepa_ac.planning.defaults import PlanningDefaults
    from jepa_ac.robot.safety import SafetyLayer, load_safety_config

    defaults = PlanningDefaults.from_dict(planning, source="the server's planning settings")
    mpc = defaults.mpc if args.max_steps is None else dataclasses.replace(defaults.mpc, max_steps=args.max_steps)
    env = make_env(env_id, defaults.env, step_budget=mpc.max_steps)
    try:
        goals, grippers = read_goals(args, defaults.env.image_size)
        safety = SafetyLayer(load_safety_config(args.safety)) if args.safety else None
        report = run_closed_loop(env, client, seed=args.seed, mpc=mpc, goal=goals, goal_grippers=grippers,
                                 safety=safety)
    finally:
        env.close()
    metrics = report.metrics()
    metrics.pop("final_info", None)
    return metrics


def run_droid(args: argparse.Namespace, client: Any, planning: dict[str, Any]) -> dict[str, Any]:
    """A DROID Franka through `DroidRobot` (droid's RobotEnv), the shipped or given safety limits."""
    from jepa_ac.robot import DroidRobot, SafetyLayer, load_safety_config, run_episode

    goals, grippers = read_goals(args, None)
    if goals is None:
        raise ValueError("--robot droid needs --goal image(s)")
    if not args.camera_id:
        raise ValueError("--robot droid needs --camera-id (the exterior camera the model was trained on)")
    try:
        from droid.robot_env import RobotEnv
    except ImportError as err:
        raise ImportError(f"--robot droid needs the DROID robot stack (droid.robot_env): {err}") from None
    max_steps = args.max_steps or int(planning.get("mpc", {}).get("max_steps", 40))
    safety = SafetyLayer(load_safety_config(args.safety) if args.safety else load_safety_config())
    size = planning.get("env", {}).get("image_size")
    robot = DroidRobot(RobotEnv(action_space=args.action_space), args.camera_id, action_space=args.action_space,
                       image_size=size)
    result = run_episode(robot, client, goals, max_steps=max_steps, safety=safety, goal_grippers=grippers)
    return {"status": result.status, "stop_reason": result.stop_reason, "steps": len(result.steps),
            "success": result.success, "latent_distances": result.distances,
            "actions": result.actions.tolist(), "num_clipped": result.num_clipped}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    from jepa_ac.serving.client import PlannerClient

    kind, _, name = args.robot.partition(":")
    if kind not in ("sim", "droid") or (kind == "sim") != bool(name):
        raise ValueError(f"--robot must be sim:<env id or short name> or droid, got {args.robot!r}")
    env_id = None
    if kind == "sim":
        from jepa_ac.envs import resolve_env_id

        env_id = resolve_env_id(name)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    token = args.token or os.environ.get("JEPA_AC_TOKEN") or None
    with PlannerClient(args.server, token=token, timeout=args.timeout) as client:
        client.task, client.seed = args.task or env_id, args.seed
        planning = client.reset()["planning"]  # the server's settings for this task
        record = run_sim(args, client, planning, env_id) if kind == "sim" else run_droid(args, client, planning)
    record = {"robot": args.robot, "server": args.server, "task": client.task, **record}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "episode.json").write_text(json.dumps(record, indent=2, default=float) + "\n")
    print(f"{record['status']} after {record['steps']} steps ({record.get('stop_reason') or 'step budget'}); "
          f"success {record.get('success')}; wrote {args.out / 'episode.json'}")
    return record


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
