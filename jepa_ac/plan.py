"""Plan robot actions towards a goal image with a world model.

Closed-loop MPC in a simulated Franka env (the shipped default model, the env's own goal image):

    python -m jepa_ac.plan
    python -m jepa_ac.plan --goal goal.png --env jepa_ac/FrankaPush-v0 --seed 3 --max-steps 40 --out runs/plan
    python -m jepa_ac.plan --env jepa_ac/FrankaPickPlace-v0 --subgoals          # through the env's sub-goal images
    python -m jepa_ac.plan --goal above.png grasped.png lifted.png goal.png     # your own sub-goals, then the goal
    python -m jepa_ac.plan --checkpoint runs/fetch/final --env my_hooks:FetchReach-v4 --goal-hook my_hooks:goal

Any other gymnasium env plans through `jepa_ac.robot.env_adapter` (docs/own_env.md): its hooks, its
command map and its planning defaults come from the checkpoint's control.json (the training data's).

Each step encodes the camera frame, runs CEM towards the goal latent (encoded once), executes the
first action and repeats, until the observed latent distance to the goal has not improved for
`patience` steps or the step budget is spent. Without `--goal` the env renders the episode's goal
and it is saved as goal.png. Several `--goal` images (or `--subgoals`: the env's way-points, saved as
subgoal_1.png, ...) are aimed at in order: the planner moves on from a sub-goal once its latent
distance has not improved for `subgoal_patience` steps (or after `subgoal_max_steps`). Writes `rollout.gif` (+ `rollout.mp4`; each frame beside the goal),
`energy.png`, `metrics.json` and `goal.png` to `--out`. Settings come from `planning.json` beside
the checkpoint (`--config FILE` to pick another); `--set cem.samples=64 ...` and its shortcut flags
(`--samples`, `--cem F=V`, `--mpc F=V`, ...) override them (`jepa_ac.cli.overrides`).

One planning step from a frame + state to a goal image (no env):

    python -m jepa_ac.plan --checkpoint CKPT --frame now.png --state 0.5 0 0.3 3.14 0 0 0 --goal goal.png

One step on a recorded trajectory (frame 0 -> goal frame 1, compared with the recorded action):

    python -m jepa_ac.plan --checkpoint tests/fixtures/vjepa2_ac_tiny.pt \
        --arch tests/fixtures/vjepa2_ac_tiny.json --traj tests/fixtures/franka_example_traj.npz

`--checkpoint` defaults to the shipped model in jepa_ac/assets/default_model. Upstream `.pt`
files need their architecture: `--encoder vit_giant --predictor vit_ac_giant`, or `--arch FILE.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from jepa_ac.cli.args import (add_env_hook_args, add_model_args, add_planning_args, base_planning, default_env,
                              env_from_args, is_franka_env, load_model_from_args, planning_from_args,
                              resolve_checkpoint, resolve_env_name)
from jepa_ac.cli.goals import parse_goal_grippers, read_goal_image


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser, checkpoint_help="upstream .pt, HF folder or jepa_ac folder "
                                           "(default: the shipped jepa_ac/assets/default_model)")
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--goal", type=Path, nargs="+",
                        help="goal image (closed loop: default the env's goal image); several: sub-goals in order, "
                             "then the goal")
    inputs.add_argument("--goal-gripper", nargs="+", metavar="G",
                        help="closed loop: the gripper each --goal image shows (open, closed or a closedness in "
                             "[0, 1], one per image); the gripper is then held toward it instead of planned")
    inputs.add_argument("--frame", type=Path, help="single step: current camera image")
    inputs.add_argument("--state", type=float, nargs=7, metavar="S", help="single step: x y z roll pitch yaw gripper")
    inputs.add_argument("--traj", type=Path, help="single step: npz with observations [1,T,H,W,3] and states [1,T,7]")
    sim = parser.add_argument_group("closed loop (simulator)")
    sim.add_argument("--env", help="gymnasium id or short name: reach, push, pickplace, or any env as module:EnvId "
                                   "(default: planning.json's env_id, jepa_ac/FrankaReach-v0; for a checkpoint "
                                   "without one, the env its training data came from)")
    sim.add_argument("--seed", type=int, default=0, help="env reset seed and CEM seed")
    sim.add_argument("--no-video", action="store_true", help="skip rollout.gif / rollout.mp4")
    add_planning_args(parser)
    add_env_hook_args(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/plan"), help="output folder")
    return parser


# -- single step (no env) ------------------------------------------------------------------------
def read_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(frame, state, goal, recorded action or None) from --traj or --frame/--state/--goal."""
    from jepa_ac.model.pose import action_between, check_states
    from jepa_ac.model.preprocess import load_image

    if args.traj is not None:
        try:
            with np.load(args.traj) as data:  # allow_pickle stays False: object arrays are refused
                missing = [k for k in ("observations", "states") if k not in data.files]
                if missing:
                    raise ValueError(f"--traj {args.traj} has no {missing} (keys: {data.files}); expected "
                                     "observations [1, T, H, W, 3] uint8 and states [1, T, 7]")
                frames, states = data["observations"][0], check_states(data["states"][0], f"--traj {args.traj} states")
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"--traj {args.traj} is not a readable .npz file: {err}") from None
        states = states.astype(np.float32)
        return frames[0], states[0], frames[-1], action_between(states[0], states[-1])
    missing = [name for name in ("frame", "state", "goal") if getattr(args, name) is None]
    if missing:
        raise SystemExit(f"error: pass --traj, or all of --frame --state --goal (missing: {', '.join(missing)})")
    if len(args.goal) != 1:
        raise SystemExit(f"error: a single planning step takes one --goal image, got {len(args.goal)}")
    return (load_image(args.frame, "--frame"), np.asarray(args.state, np.float32), load_image(args.goal[0], "goal"),
            None)


def plan_single_step(args: argparse.Namespace) -> dict:
    from jepa_ac.planning import CEMPlanner
    from jepa_ac.world_model.multi_view import for_view_setting

    frame, state, goal, recorded = read_inputs(args)
    if is_franka_env(args.env):
        defaults = planning_from_args(args, args.env, seed=args.seed, for_env=args.env is not None)
    else:
        defaults = env_from_args(args, args.env, seed=args.seed)[0]
    wm = for_view_setting(load_model_from_args(args), defaults.env.exterior_view)
    planner = CEMPlanner(wm, defaults.cem, defaults.action)
    start = time.perf_counter()
    planner.set_goal(goal)
    result = planner.plan_sequence(frame, state)
    seconds = time.perf_counter() - start
    report = {
        "action": result.actions[0].tolist(),
        "plan": result.actions.tolist(),
        "best_energy_per_iteration": result.elite_costs[:, 0].tolist(),
        "planning_seconds": seconds,
        "backend": args.backend,
        "cem": defaults.cem.__dict__,
    }
    if recorded is not None:
        report["recorded_action"] = np.asarray(recorded).tolist()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan.json").write_text(json.dumps(report, indent=2) + "\n")
    np.set_printoptions(precision=4, suppress=True)
    print(f"action   {result.actions[0]}")
    if recorded is not None:
        print(f"recorded {np.asarray(recorded)}")
    print(f"energy {result.elite_costs[0, 0]:.4f} -> {result.elite_costs[-1, 0]:.4f} over {defaults.cem.iterations} "
          f"iterations; {seconds:.2f} s ({args.backend}); wrote {args.out / 'plan.json'}")
    return report


# -- closed loop ---------------------------------------------------------------------------------
def plan_closed_loop(args: argparse.Namespace) -> dict:
    from PIL import Image

    from jepa_ac.control.closed_loop import make_env, run_closed_loop, warm_up
    from jepa_ac.control import Controller
    from jepa_ac.planning import CEMPlanner
    from jepa_ac.robot.adapters import GymRobot
    from jepa_ac.world_model.multi_view import for_view_setting

    checkpoint = resolve_checkpoint(args.checkpoint)
    logging.getLogger("jepa_ac.robot.safety").setLevel(logging.ERROR)  # counted in metrics.json instead
    defaults, adapter = env_from_args(args, args.env or default_env(args) or base_planning(args).env_id, seed=args.seed)
    size = defaults.env.image_size
    goals, notes = [], []
    for path in args.goal or []:
        image, note = read_goal_image(path, size)
        goals.append(image)
        if note:
            notes.append(f"{path}: {note}")
            print(f"note: goal image {path} {note}")
    grippers = parse_goal_grippers(args.goal_gripper, len(goals)) if args.goal_gripper else None
    wm = load_model_from_args(args)
    env = make_env(defaults.env_id, defaults.env, step_budget=defaults.mpc.max_steps, adapter=adapter)
    robot = GymRobot(env, adapter=adapter)
    frame, state = robot.reset(seed=args.seed)
    if not goals:  # the env renders this episode's goal (and its way-points with --subgoals)
        goals = robot.subgoal_images() if defaults.mpc.subgoals else [robot.goal_image()]
        if defaults.mpc.goal_gripper:
            grippers = robot.goal_grippers(defaults.mpc.subgoals)
    elif defaults.mpc.goal_gripper and grippers is None:
        print("note: mpc.goal_gripper needs --goal-gripper for your goal images; the gripper is planned")
    task_wm = for_view_setting(wm, defaults.env.exterior_view)  # the views (and predictor) this task plans with
    warm_s = warm_up(task_wm, defaults.cem, defaults.action, frame, state)
    args.out.mkdir(parents=True, exist_ok=True)
    goal = goals[-1]
    Image.fromarray(goal).save(args.out / "goal.png")
    for i, subgoal in enumerate(goals[:-1], start=1):
        Image.fromarray(subgoal).save(args.out / f"subgoal_{i}.png")

    planner = CEMPlanner(task_wm, defaults.cem, defaults.action)
    print(f"{defaults.env_id} seed {args.seed}: planning with {checkpoint} ({args.backend}), "
          f"CEM {defaults.cem.samples}x{defaults.cem.iterations} top-{defaults.cem.topk} horizon "
          f"{defaults.cem.horizon}, free dims {list(defaults.action.free_names)}, up to {defaults.mpc.max_steps} steps "
          f"(warm-up plan {warm_s:.2f} s, not counted)" + (f"; {len(goals) - 1} sub-goals, then the goal"
                                                         if len(goals) > 1 else "")
          + (f", in up to {defaults.mpc.subgoal_rounds} rounds" if defaults.mpc.subgoal_rounds > 1 and not args.goal
             else ""))

    def show(record):
        energy = "   n/a" if record.energy is None else f"{record.energy:.4f}"
        k, r = record.goal_index % len(goals), record.goal_index // len(goals)  # the env's rounds are alike
        target = (f"  goal {k + 1}/{len(goals)}" + (f" (round {r + 1})" if r else "")) if len(goals) > 1 else ""
        back = "  (back toward the best state)" if record.planner.get("returned") else ""
        print(f"step {record.index + 1:3d}{target}  latent distance {_fmt(record.distance, '.4f')} -> planned "
              f"energy {energy}  plan {record.timing.get('plan_s', float('nan')):.3f} s{back}", flush=True)

    # the env's own goals are rendered again by the loop (the same seeded scene), which can ask for new rounds
    report = run_closed_loop(env, Controller(planner, defaults.mpc), seed=args.seed, mpc=defaults.mpc,
                             goal=goals if args.goal else None, record_frames=not args.no_video, on_step=show,
                             goal_grippers=grippers, adapter=adapter)
    env.close()
    metrics = {
        **report.metrics(),
        "goal": ([str(g) for g in args.goal] if args.goal else
                 "env subgoal_images() (saved as subgoal_*.png, goal.png)" if len(goals) > 1
                 else "env goal_image() (saved as goal.png)" if adapter is None
                 else f"goal hook {adapter.spec.goal} (saved as goal.png)"),
        "goal_note": "; ".join(notes) or None,
        "warmup_plan_s": warm_s,
        "checkpoint": str(checkpoint),
        "backend": args.backend,
        "planning": defaults.to_dict(),
        **({} if adapter is None else {"adapter": adapter.describe()}),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_energy_plot(args.out / "energy.png", report)
    written = [*(f"subgoal_{i}.png" for i in range(1, len(goals))), "goal.png", "metrics.json", "energy.png"]
    if not args.no_video and report.frames:
        written += write_rollout_video(args.out, report, fps=defaults.env.control_hz)
    task = f"{report.task_distance_name} {_fmt(report.task_distance, '.3f')} m; " if report.task_distance_name else ""
    reason = report.stop_reason or ("step budget" if report.status == "max_steps" else "env time limit")
    print(f"{report.status} after {report.steps} steps ({reason}); success {report.success}; {task}latent distance "
          f"{_fmt(metrics['initial_latent_distance'], '.4f')} -> {_fmt(metrics['final_latent_distance'], '.4f')}; "
          f"mean plan {_fmt(metrics['plan_s_mean'], '.3f')} s/step; {report.num_clipped} actions clipped by the "
          "safety layer")
    print(f"wrote {', '.join(str(args.out / w) for w in written)}")
    return metrics


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def write_energy_plot(path: Path, report: Any) -> Path:
    """Planned (imagined) energy and observed latent distance per MPC step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if report.distances:
        ax.plot(range(len(report.distances)), report.distances, "o-", label="observed latent distance to goal")
    energies = [np.nan if e is None else e for e in report.energies]
    if energies:
        ax.plot(range(1, len(energies) + 1), energies, "s--", label="planned energy (best imagined next frame)")
    ax.set_xlabel("MPC step")
    ax.set_ylabel("L1 latent distance")
    ax.set_title(f"{report.env_id} seed {report.seed}: success {report.success}")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def side_by_side(frame: np.ndarray, goal: np.ndarray, caption: str, scale: int, goal_caption: str = "goal") -> np.ndarray:
    """[H, W, 3] frame and goal -> one uint8 picture [H*scale + 16, 2*W*scale + gap, 3] with captions."""
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    big = [np.asarray(Image.fromarray(x).resize((w * scale, h * scale), Image.NEAREST)) for x in (frame, goal)]
    gap = 4
    canvas = np.full((h * scale + 16, 2 * w * scale + gap, 3), 255, np.uint8)
    canvas[:h * scale, :w * scale] = big[0]
    canvas[:h * scale, w * scale + gap:] = big[1]
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    draw.text((2, h * scale + 2), caption, fill=(0, 0, 0))
    draw.text((w * scale + gap + 2, h * scale + 2), goal_caption, fill=(0, 0, 0))
    return np.asarray(image)


def write_rollout_video(out: Path, report: Any, fps: float) -> list[str]:
    """rollout.gif (and rollout.mp4 when PyAV has H.264): each frame beside the goal (with sub-goals:
    beside the one the next action aims at, of whichever round)."""
    from PIL import Image

    goals = report.goal_images
    scale = max(1, -(-192 // goals[-1].shape[0]))  # at least 192 px per panel
    pictures = []
    for t, frame in enumerate(report.frames):
        caption = f"step {t}/{report.steps}"
        if t < len(report.distances):
            caption += f"  d={report.distances[t]:.3f}"
        index = report.goal_indices[min(t, len(report.goal_indices) - 1)] if report.goal_indices else len(goals) - 1
        label = report.goal_label(index)
        pictures.append(side_by_side(frame, goals[index], caption, scale, label))
    images = [Image.fromarray(p) for p in pictures]
    duration = int(round(1000 / fps))
    images[0].save(out / "rollout.gif", save_all=True, append_images=images[1:], duration=duration, loop=0)
    written = ["rollout.gif"]
    try:
        from jepa_ac.data.video import write_mp4

        stack = np.stack(pictures)
        stack = stack[:, : stack.shape[1] // 2 * 2, : stack.shape[2] // 2 * 2]  # H.264 needs even sides
        write_mp4(out / "rollout.mp4", stack, fps=fps, fsync=False)
        written.append("rollout.mp4")
    except Exception as err:  # noqa: BLE001 - the GIF is the required output; the MP4 is a bonus
        print(f"note: rollout.mp4 not written ({type(err).__name__}: {err})")
    return written


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    single_step = args.traj is not None or args.frame is not None or args.state is not None
    if args.env is not None:
        try:
            args.env = resolve_env_name(args.env)
        except ValueError as err:
            raise SystemExit(f"error: {err}") from None
    try:
        if single_step:
            return plan_single_step(args)
        return plan_closed_loop(args)
    except (ValueError, FileNotFoundError) as err:  # GoalImageError, CheckpointError, NonFiniteError, ...
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
