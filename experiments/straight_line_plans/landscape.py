"""Which first move does the energy favour when the goal is several steps away?

For each push episode: drive the arm (fingers closed) through the first two sub-goals with a
proportional controller that knows the positions, so it stands at the pre-push point. Then score a
9 x 9 grid of (dx, dy) moves, each held for H steps, against the end-of-push sub-goal image:
- true: step the simulator H times from a snapshot, encode the frame reached, L1 to the goal latent;
- model: the world model's H-step imagined rollout of the same held move (last frame).
The grid's best move is compared with the displacement that reaches the sub-goal: the angle
between them and the distance between its endpoint and the sub-goal.

    .venv/bin/python experiments/straight_line_plans/landscape.py --episodes 12 --horizons 1 2 4 \
        --out experiments/straight_line_plans
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from jepa_ac.cli.args import add_model_args, add_planning_args, load_model_from_args, planning_from_args
from jepa_ac.control.closed_loop import make_env
from jepa_ac.data.collection import episode_seed

ENV_ID = "jepa_ac/FrankaPush-v0"
FINGERS_CLOSED = 0.75  # the push's held gripper delta (planning.json)


def angle_deg(move: np.ndarray, needed: np.ndarray) -> float:
    """Angle (degrees) between a chosen move and the needed displacement, both [2]."""
    cos = float(move @ needed) / max(float(np.linalg.norm(move) * np.linalg.norm(needed)), 1e-12)
    return round(float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))), 1)


def to_pre_push_point(env, obs, step: float) -> dict:
    """P-control the TCP through the first two sub-goals (above, then down at the pre-push point)."""
    for target in env.unwrapped.subgoal_states()[:2]:
        for _ in range(15):
            action = np.zeros(7)
            action[:3] = np.clip(target[:3] - obs["state"][:3], -step, step)
            action[6] = FINGERS_CLOSED
            obs, *_ = env.step(action)
    return obs


def score_grid(env, wm, obs, goal: np.ndarray, grid: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(true, model) energies [G] of each held move in `grid` [G, 2]."""
    unwrapped = env.unwrapped
    snapshot = unwrapped.snapshot()
    actions = np.zeros((len(grid), horizon, 7), np.float32)  # [G, H, 7]
    actions[:, :, :2] = grid[:, None]
    actions[:, :, 6] = FINGERS_CLOSED
    z, z_goal = wm.encode(obs["image"][None]), wm.encode(goal[None])
    state = wm.ops.asarray(obs["state"][None].astype(np.float32))
    model = wm.ops.to_numpy(wm.rollout_energy(z, state, wm.ops.asarray(actions), z_goal))
    frames = []
    for sequence in actions:
        unwrapped.restore(snapshot)
        for action in sequence:
            reached, *_ = env.step(action.astype(np.float64))
        frames.append(reached["image"])
    unwrapped.restore(snapshot)
    true = wm.ops.to_numpy(wm.energy(wm.encode(np.stack(frames)), z_goal))
    return true, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--indices", type=int, nargs="+", default=None,
                        help="evaluation episode indices to score (default: the first --episodes)")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", type=Path, default=Path("experiments/straight_line_plans"))
    add_model_args(parser)
    add_planning_args(parser)
    args = parser.parse_args()
    defaults = planning_from_args(args, ENV_ID, seed=0)
    step = defaults.action.max_translation
    wm = load_model_from_args(args)
    env = make_env(ENV_ID, defaults.env)
    grid = np.array([[dx, dy] for dx in np.linspace(-step, step, 9) for dy in np.linspace(-step, step, 9)])  # [81, 2]
    rows = []
    for i in (args.indices if args.indices is not None else range(args.episodes)):
        obs, _ = env.reset(seed=episode_seed(0, i))
        push_end = env.unwrapped.subgoal_images()[2]
        push_end_xy = env.unwrapped.subgoal_states()[2, :2]
        obs = to_pre_push_point(env, obs, step)
        needed = push_end_xy - obs["state"][:2]  # [2] the displacement that reaches the sub-goal
        row = {"episode": i, "needed_cm": (needed * 100).round(1).tolist()}
        for h in args.horizons:
            true, model = score_grid(env, wm, obs, push_end, grid, h)
            best_true, best_model = h * grid[true.argmin()], h * grid[model.argmin()]
            row[f"h{h}"] = {
                "true_best_cm": (best_true * 100).round(1).tolist(), "model_best_cm": (best_model * 100).round(1).tolist(),
                "true_best_error_cm": round(float(np.linalg.norm(best_true - needed)) * 100, 1),
                "model_best_error_cm": round(float(np.linalg.norm(best_model - needed)) * 100, 1),
                "true_angle_deg": angle_deg(best_true, needed), "model_angle_deg": angle_deg(best_model, needed),
                "correlation": round(float(np.corrcoef(true, model)[0, 1]), 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for h in args.horizons:
        cells = [r[f"h{h}"] for r in rows]
        summary[f"h{h}"] = {
            "true_median_error_cm": float(np.median([c["true_best_error_cm"] for c in cells])),
            "model_median_error_cm": float(np.median([c["model_best_error_cm"] for c in cells])),
            "true_median_angle_deg": float(np.median([c["true_angle_deg"] for c in cells])),
            "true_max_angle_deg": float(np.max([c["true_angle_deg"] for c in cells])),
            "model_median_angle_deg": float(np.median([c["model_angle_deg"] for c in cells])),
            "model_max_angle_deg": float(np.max([c["model_angle_deg"] for c in cells])),
            "median_correlation": float(np.median([c["correlation"] for c in cells]))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "landscape.json").write_text(json.dumps({"env_id": ENV_ID, "grid_step_cm": step * 100 / 4,
                                                          "episodes": rows, "summary": summary}, indent=1) + "\n")
    lines = ["| held steps | reach | best move's angle off the sub-goal, true frames (median / max) | model (median / max) |"
             " best endpoint's miss, true / model (median cm) | true-model energy correlation (median) |",
             "|---:|---:|---|---|---|---:|"]
    for h in args.horizons:
        s = summary[f"h{h}"]
        lines.append(f"| {h} | {h * step * 100:.0f} cm | {s['true_median_angle_deg']:.0f} / {s['true_max_angle_deg']:.0f} deg | "
                     f"{s['model_median_angle_deg']:.0f} / {s['model_max_angle_deg']:.0f} deg | "
                     f"{s['true_median_error_cm']:.1f} / {s['model_median_error_cm']:.1f} | {s['median_correlation']:.2f} |")
    (args.out / "landscape.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
