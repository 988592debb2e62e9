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
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from jepa_ac.cli.overrides import Set, add_settings_args, apply_settings, load_settings
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
    add_settings_args(parser, "collection settings (the CollectConfig fields below), YAML or JSON; each flag below "
                              "is a shortcut for --set FIELD=VALUE")

    def shortcut(flag: str, help: str, group: Any = parser, switch: bool = False) -> None:
        key = flag.lstrip("-").replace("-", "_")
        extra = dict(nargs=0, const="true") if switch else {}
        group.add_argument(flag, action=Set, key=key, help=help, **extra)

    shortcut("--env", f"gymnasium env id, or module:EnvId to import module first (default {defaults.env})")
    shortcut("--episodes", f"total episodes wanted (default {defaults.episodes})")
    shortcut("--out", "dataset folder (created; resumed if it exists); required")
    shortcut("--noise", f"Franka expert action noise (default {defaults.noise}; not used with --policy); the "
                        "expert's own options: --set expert_options.NAME=VALUE (pick-and-place: grasp_offset, "
                        "turn_to_cube)")
    shortcut("--seed", f"base seed; episode i uses a seed derived from (seed, i) (default {defaults.seed})")
    shortcut("--image-size", f"square render size (even; default {defaults.image_size})")
    shortcut("--max-steps", "steps per episode (default: the env's registered length)")
    shortcut("--workers", f"parallel processes (default {defaults.workers})")
    shortcut("--crf", f"H.264 quality, lower is better (default {defaults.crf})")
    shortcut("--wrist-camera", "also record the wrist camera", switch=True)
    shortcut("--exterior-view", "exterior camera view of the Franka envs: front, side or wrist (default: the env's, front); "
                                        "one per dataset")
    shortcut("--stop-on-success", "end an episode at its first success", switch=True)
    hooks = parser.add_argument_group("any env (jepa_ac.data.gym_source): hooks are module:function, called "
                                      "as fn(obs) or fn(obs, env)")
    shortcut("--policy", "obs -> env action (default: random actions)", hooks)
    shortcut("--state", "obs -> [x, y, z, roll, pitch, yaw, gripper] (m, rad, closedness 0..1)", hooks)
    shortcut("--frame", "obs -> uint8 [H, W, 3] (default: the obs image or env.render())", hooks)
    shortcut("--success", "obs -> bool: the episode's success (default: info['success'] or info['is_success'])", hooks)
    shortcut("--goal", "reset obs -> the goal image; not used here, stored with the data for planning "
                       "(python -m jepa_ac.evaluate --env ...)", hooks)
    shortcut("--fps", "the env's control rate (default: render_fps or 1/dt)", hooks)
    shortcut("--task", "task name stored with the data (default: from the env id)", hooks)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def collect_config(args: argparse.Namespace) -> CollectConfig:
    """The settings file, then `--set` and the shortcut flags in order, as a checked `CollectConfig`."""
    values = dataclasses.asdict(CollectConfig(out=Path(".")))
    given: list[str] = []
    if args.config is not None:
        settings = load_settings(args.config)
        values = apply_settings(values, settings.items(), CollectConfig, source=str(args.config))
        given += list(settings)
    values = apply_settings(values, args.overrides, CollectConfig)
    given += [key for key, _ in args.overrides]
    if "out" not in given:
        raise ValueError("the dataset folder is required: --out DIR (or out in the settings file)")
    config = CollectConfig(**{**values, "out": str(values["out"])})  # a folder named 2024 is a folder, not a number
    if config.generic and "noise" in given:
        raise ValueError("--noise applies to the Franka envs' scripted experts; add noise in your --policy")
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:  # bad settings (a flag, an env option, a folder collected otherwise): a message, not a traceback
        config = collect_config(args)
        summary = collect(config, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as err:
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
