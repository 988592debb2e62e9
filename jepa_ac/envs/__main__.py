"""Tools for the Franka envs: pictures, step timing, scripted-expert success rates, MJCF export.

    python -m jepa_ac.envs images --out docs/images            # env_<task>.png + env_<task>_goal.png
    python -m jepa_ac.envs bench --steps 40 --json experiments/env_bench.json
    python -m jepa_ac.envs rollout --task pickplace --episodes 20 --noise 0.0
    python -m jepa_ac.envs export-xml --out /tmp/franka_xml    # the composed scenes as MJCF
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

from jepa_ac.files import write_atomic, write_json_atomic

TASK_IDS = {
    "reach": "jepa_ac/FrankaReach-v0",
    "push": "jepa_ac/FrankaPush-v0",
    "pickplace": "jepa_ac/FrankaPickPlace-v0",
}


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _make(task: str, **kwargs):
    import gymnasium as gym

    import jepa_ac.envs  # noqa: F401  (registers the ids)

    return gym.make(TASK_IDS[task], **kwargs)


def cmd_images(args: argparse.Namespace) -> int:
    for task in args.tasks:
        env = _make(task, image_size=args.size, wrist_camera=args.wrist)
        obs, _ = env.reset(seed=args.seed)
        names = {f"env_{task}.png": obs["image"], f"env_{task}_goal.png": env.unwrapped.goal_image()}
        if args.wrist:
            names[f"env_{task}_wrist.png"] = obs["wrist_image"]
        for name, image in names.items():
            write_atomic(args.out / name, _png_bytes(image))
            print(args.out / name)
        env.close()
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """ms per control step: whole `env.step` and its two parts (control+physics, rendering)."""
    from jepa_ac.envs.experts import make_expert
    from jepa_ac.envs.scene import EXTERIOR_CAMERA

    rows = []
    for task in args.tasks:
        env = _make(task, image_size=args.size, wrist_camera=args.wrist, shadows=not args.no_shadows)
        base = env.unwrapped
        obs, _ = env.reset(seed=0)
        expert = make_expert(env, noise=0.1, seed=0)
        step_s, cpu_s = [], []
        for i in range(args.steps + 2):
            action = expert.act(obs)
            t, c = time.perf_counter(), time.process_time()
            obs, _, terminated, truncated, _ = env.step(action)
            if i >= 2:  # skip warm-up (GL context, caches)
                step_s.append(time.perf_counter() - t)
                cpu_s.append(time.process_time() - c)
            if terminated or truncated:
                obs, _ = env.reset(seed=i)
                expert.reset()
        render_s = []
        for _ in range(args.steps):
            t = time.perf_counter()
            base._render(base.data, EXTERIOR_CAMERA)
            render_s.append(time.perf_counter() - t)
        renders = 2 if args.wrist else 1
        rows.append({
            "task": task, "image_size": args.size, "wrist_camera": args.wrist, "shadows": not args.no_shadows,
            "control_hz": base.control_hz, "step_ms_median": 1e3 * float(np.median(step_s)),
            "step_cpu_ms_median": 1e3 * float(np.median(cpu_s)),
            "render_ms_median": 1e3 * float(np.median(render_s)),
            "control_physics_ms_median": 1e3 * float(np.median(step_s) - renders * np.median(render_s)),
            "steps": len(step_s),
        })
        env.close()
    print(f"{'task':<10} {'step ms':>8} {'cpu ms':>7} {'render ms':>9} {'control ms':>10}  (image {args.size}, "
          f"shadows {not args.no_shadows}, wrist {args.wrist}, {os.cpu_count()} cores)")
    for r in rows:
        print(f"{r['task']:<10} {r['step_ms_median']:8.1f} {r['step_cpu_ms_median']:7.1f} {r['render_ms_median']:9.1f} "
              f"{r['control_physics_ms_median']:10.1f}")
    if args.json:
        write_json_atomic(args.json, {"rows": rows, "cpu_count": os.cpu_count(),
                                      "mujoco_gl": os.environ.get("MUJOCO_GL")})
    return 0


def cmd_rollout(args: argparse.Namespace) -> int:
    from jepa_ac.envs.experts import make_expert

    env = _make(args.task, image_size=args.size, shadows=False)
    successes, lengths = [], []
    for episode in range(args.episodes):
        seed = args.seed + episode
        obs, info = env.reset(seed=seed)
        expert = make_expert(env, noise=args.noise, seed=seed)
        done, first = False, None
        steps = 0
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            steps += 1
            if info["success"] and first is None:
                first = steps
            done = terminated or truncated
        successes.append(bool(info["success"]))
        lengths.append(first)
        print(f"episode {episode} seed {seed}: success={info['success']} first success at step {first}", flush=True)
    env.close()
    rate = float(np.mean(successes))
    print(f"{args.task}: success rate {rate:.2f} over {args.episodes} episodes (noise {args.noise})")
    return 0


def cmd_export_xml(args: argparse.Namespace) -> int:
    from jepa_ac.envs import scene

    for task in args.tasks:
        spec, _ = scene.build_spec(task, wrist_camera=True)
        spec.compile()
        path = args.out / f"franka_{task}.xml"
        write_atomic(path, spec.to_xml().encode())
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.envs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tasks = dict(nargs="+", choices=list(TASK_IDS), default=list(TASK_IDS), help="tasks (default: all)")

    p = sub.add_parser("images", help="save each task's camera view and goal image as PNG")
    p.add_argument("--out", type=Path, default=Path("docs/images"))
    p.add_argument("--tasks", **tasks)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--wrist", action="store_true", help="also save the wrist camera view")
    p.set_defaults(func=cmd_images)

    p = sub.add_parser("bench", help="time env.step (control + physics + rendering)")
    p.add_argument("--tasks", **tasks)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--wrist", action="store_true")
    p.add_argument("--no-shadows", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("rollout", help="scripted-expert success rate")
    p.add_argument("--task", choices=list(TASK_IDS), required=True)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=64)
    p.set_defaults(func=cmd_rollout)

    p = sub.add_parser("export-xml", help="write the composed scenes as MJCF (decimated visual meshes inline, "
                       "collision meshes by absolute path)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tasks", **tasks)
    p.set_defaults(func=cmd_export_xml)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("steps", "episodes", "size"):
        if hasattr(args, name) and getattr(args, name) < 1:
            print(f"error: --{name} must be >= 1, got {getattr(args, name)}", file=sys.stderr)
            return 2
    return args.func(args)


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
