"""Collect rollouts of a gymnasium env as a DROID-layout dataset: the Franka envs' scripted experts,
or any registered env with your own policy and state hook.

    python -m jepa_ac.collect --env jepa_ac/FrankaReach-v0 --episodes 50 --out data/reach \\
        --noise 0.1 --seed 0 --image-size 256 --workers 2
    python -m jepa_ac.collect --env gymnasium:Pusher-v5 --policy my_hooks:policy \\
        --state my_hooks:state --episodes 50 --image-size 128 --out data/pusher

What the hooks do, what is written and how a re-run resumes: `jepa_ac.data.collection`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from jepa_ac.data import layout
from jepa_ac.data.collection import CollectConfig, collect
from jepa_ac.model.pose import POSITION


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    defaults = CollectConfig(out=Path("."))
    parser = argparse.ArgumentParser(
        prog="python -m jepa_ac.collect",
        description="Collect scripted-expert rollouts as a DROID-layout dataset (resumable).",
        epilog="example: python -m jepa_ac.collect --env jepa_ac/FrankaReach-v0 --episodes 50 --out data/reach",
    )
    parser.add_argument("--env", default=defaults.env,
                        help="gymnasium env id, or module:EnvId to import module first (default %(default)s)")
    parser.add_argument("--episodes", type=int, default=defaults.episodes, help="total episodes wanted (default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder (created; resumed if it exists)")
    parser.add_argument("--noise", type=float, default=None,
                        help=f"Franka expert action noise (default {defaults.noise}; not used with --policy)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="base seed; episode i uses a seed derived from (seed, i)")
    parser.add_argument("--image-size", type=int, default=defaults.image_size, help="square render size (even; default %(default)s)")
    parser.add_argument("--max-steps", type=int, default=None, help="steps per episode (default: the env's registered length)")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="parallel processes (default %(default)s)")
    parser.add_argument("--crf", type=int, default=defaults.crf, help="H.264 quality, lower is better (default %(default)s)")
    parser.add_argument("--wrist-camera", action="store_true", help="also record the wrist camera")
    parser.add_argument("--exterior-view", default=None,
                        help="exterior camera view of the Franka envs: side or front (default: the env's)")
    parser.add_argument("--stop-on-success", action="store_true", help="end an episode at its first success")
    hooks = parser.add_argument_group("any env (jepa_ac.data.gym_source): hooks are module:function, called "
                                      "as fn(obs) or fn(obs, env)")
    hooks.add_argument("--policy", default=None, help="obs -> env action (default: random actions)")
    hooks.add_argument("--state", default=None,
                       help="obs -> [x, y, z, roll, pitch, yaw, gripper] (m, rad, closedness 0..1)")
    hooks.add_argument("--frame", default=None, help="obs -> uint8 [H, W, 3] (default: the obs image or env.render())")
    hooks.add_argument("--success", default=None,
                       help="obs -> bool: the episode's success (default: info['success'] or info['is_success'])")
    hooks.add_argument("--goal", default=None,
                       help="reset obs -> the goal image; not used here, stored with the data for planning "
                            "(python -m jepa_ac.evaluate --env ...)")
    hooks.add_argument("--fps", type=float, default=None, help="the env's control rate (default: render_fps or 1/dt)")
    hooks.add_argument("--task", default=None, help="task name stored with the data (default: from the env id)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:  # bad settings (a flag, an env option, a folder collected otherwise): a message, not a traceback
        config = CollectConfig(out=args.out, env=args.env, episodes=args.episodes, seed=args.seed,
                               image_size=args.image_size, max_steps=args.max_steps, workers=args.workers,
                               crf=args.crf, wrist_camera=args.wrist_camera, exterior_view=args.exterior_view,
                               stop_on_success=args.stop_on_success, policy=args.policy, state=args.state,
                               frame=args.frame, success=args.success, goal=args.goal, fps=args.fps, task=args.task,
                               **({} if args.noise is None else {"noise": args.noise}))
        if config.generic and args.noise is not None:
            raise ValueError("--noise applies to the Franka envs' scripted experts; add noise in your --policy")
        summary = collect(config, progress=not args.no_progress)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"{summary['env_id']}: {summary['episodes']} episodes in {config.out} "
          f"({summary['collected_now']} new, {summary['resumed']} resumed)")
    print(f"  success rate  {summary['success_rate']:.1%} ({summary['successes']}/{summary['episodes']})")
    print(f"  mean length   {summary['mean_length']:.1f} rows at {summary['fps']:g} fps")
    if summary["steps_per_second"]:
        print(f"  throughput    {summary['steps_per_second']:.1f} steps/s over {summary['seconds']:.1f} s")
    control = summary["control"]
    print(f"  control       {control['control_hz']:g} Hz, step p95 xyz "
          f"{', '.join(f'{v:.4f}' for v in control['step_p95'][POSITION])} m"
          + (f", command fit R^2 {_mean_r2(control['fit_r2']):.2f}" if control["fit_r2"] else ""))
    print(f"  summary       {config.out / layout.SUMMARY_FILE}")
    return 0


def _mean_r2(values: list[float | None]) -> float:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else float("nan")


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
