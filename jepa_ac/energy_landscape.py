"""Energy landscape of a world model around a frame pair (as in the V-JEPA 2 paper, Fig. 9).

For frames (i, j) of a recorded trajectory, frame i is the context and frame j the goal. Each
point of a (grid x grid) lattice of translations (Δa, Δb) on two axes is an action; its energy is
the L1 distance between the predicted latent after that action and the goal frame's latent. The
remaining action dims are held at the true action's values (`--others true`, the default; the true
action is `action_between(state_i, state_j)`) or at 0 (`--others zero`). A good model has its
minimum near the true action.

    python -m jepa_ac.energy_landscape --checkpoint tests/fixtures/vjepa2_ac_tiny.pt \
        --arch tests/fixtures/vjepa2_ac_tiny.json --traj tests/fixtures/franka_example_traj.npz \
        --pair 0 1 --axes xy --extent 0.1 --grid 21 --out runs/landscape
    python -m jepa_ac.energy_landscape --traj tests/fixtures/franka_example_traj.npz --axes xz   # shipped model
    python -m jepa_ac.energy_landscape --env my_hooks:FetchReach-v4 --checkpoint runs/fetch/final --seed 3

With `--env` instead of `--traj` the pair comes from the env: frame i is the frame after reset
(`--seed`), frame j the frame after one uniform random planned move within the planning bounds,
sent as plan and evaluate send it (any env through its `EnvAdapter`, docs/own_env.md).

Writes `landscape_<axes>.png` (heatmap, true action and argmin marked) and `landscape_<axes>.json`
(the grid of energies, the axes' values, the true action, the argmin and its energy).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from jepa_ac.cli.args import add_env_hook_args, add_model_args, load_model_from_args
from jepa_ac.cli.overrides import Set, add_settings_args

AXES = {"xy": (0, 1), "xz": (0, 2), "yz": (1, 2)}
AXIS_NAMES = ("dx", "dy", "dz")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.energy_landscape", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser, checkpoint_help="upstream .pt, HF folder or jepa_ac folder "
                                           "(default: the shipped jepa_ac/assets/default_model)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--traj", type=Path,
                        help="npz with observations [1,T,H,W,3] uint8 and states [1,T,7] (DROID convention)")
    source.add_argument("--env", help="take the pair from this env instead: reach, push, pickplace, or module:EnvId")
    parser.add_argument("--seed", type=int, default=0, help="--env: the reset seed and the random move's")
    add_settings_args(parser, "--env: planning settings, YAML or JSON (default: planning.json beside the checkpoint, "
                              "else derived from its control.json)", "--planning")
    parser.add_argument("--image-size", action=Set, key="env.image_size",
                        help="--env: render size (default: the planning settings'); --set env.image_size")
    parser.add_argument("--pair", type=int, nargs=2, default=(0, 1), metavar=("I", "J"),
                        help="context frame I and goal frame J")
    parser.add_argument("--axes", choices=sorted(AXES), default="xy", help="the two translation axes of the grid")
    parser.add_argument("--extent", type=float, default=0.1, help="grid covers [-extent, extent] m on both axes")
    parser.add_argument("--grid", type=int, default=21, help="points per axis")
    parser.add_argument("--others", choices=("true", "zero"), default="true",
                        help="values of the other action dims: the true action's, or 0")
    parser.add_argument("--batch", type=int, default=256, help="actions per predictor call")
    parser.add_argument("--out", type=Path, default=Path("runs/landscape"))
    add_env_hook_args(parser)
    return parser


def read_pair(path: Path, i: int, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(context frame, goal frame, context state [7], true action [7]) from a trajectory npz."""
    from jepa_ac.model.pose import action_between

    if not Path(path).is_file():
        raise FileNotFoundError(f"trajectory not found: {path}")
    with np.load(path) as data:
        missing = [k for k in ("observations", "states") if k not in data.files]
        if missing:
            raise ValueError(f"{path} lacks {missing}; expected observations [1,T,H,W,3] and states [1,T,7]")
        frames, states = data["observations"], data["states"]
    if frames.ndim == 5:  # [1, T, H, W, 3] (upstream example layout) -> [T, H, W, 3]
        frames, states = frames[0], states[0]
    T = len(frames)
    if len(states) != T:
        raise ValueError(f"{path}: {T} frames but {len(states)} states")
    for name, k in (("I", i), ("J", j)):
        if not 0 <= k < T:
            raise ValueError(f"--pair {name}={k} is outside the trajectory's {T} frames")
    if i == j:
        raise ValueError("--pair needs two different frames")
    states = states.astype(np.float64)
    return frames[i], frames[j], states[i].astype(np.float32), action_between(states[i], states[j]).astype(np.float32)


def landscape(wm: Any, frame: np.ndarray, goal: np.ndarray, state: np.ndarray, base_action: np.ndarray,
              axes: tuple[int, int], values: np.ndarray, batch: int = 256) -> np.ndarray:
    """Energy [G, G] (rows: second axis, columns: first axis) of one-step actions `base_action` with
    dims `axes` set to every pair of `values`."""
    ops = wm.ops
    z = wm.encode(frame)  # [1, N, D]
    z_goal = wm.encode(goal)  # [1, N, D]
    a, b = np.meshgrid(values, values)  # [G, G]; a varies along columns, b along rows
    actions = np.repeat(base_action[None].astype(np.float32), a.size, axis=0)  # [G*G, 7]
    actions[:, axes[0]], actions[:, axes[1]] = a.ravel(), b.ravel()
    state_x = ops.asarray(state[None].astype(np.float32))  # [1, 7]
    energies = []
    for start in range(0, len(actions), batch):
        chunk = ops.asarray(actions[start:start + batch, None])  # [S, 1, 7]
        energies.append(ops.to_numpy(wm.rollout_energy(z, state_x, chunk, z_goal)))  # [S]
    return np.concatenate(energies).reshape(a.shape)  # [G, G]


def plot(path: Path, energy: np.ndarray, values: np.ndarray, axes: str, true_xy: tuple[float, float],
         argmin_xy: tuple[float, float], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a_name, b_name = (AXIS_NAMES[k] for k in AXES[axes])
    fig, ax = plt.subplots(figsize=(6.0, 4.8), dpi=110)
    step = values[1] - values[0] if len(values) > 1 else 1.0
    extent = (values[0] - step / 2, values[-1] + step / 2, values[0] - step / 2, values[-1] + step / 2)
    image = ax.imshow(energy, origin="lower", extent=extent, cmap="viridis", aspect="equal")
    from matplotlib.ticker import ScalarFormatter

    fig.colorbar(image, ax=ax, label="energy (L1 to goal latent)", format=ScalarFormatter(useOffset=False))
    lo, hi = extent[0], extent[1]
    tx, ty = true_xy
    inside = lo <= tx <= hi and lo <= ty <= hi
    ax.plot(np.clip(tx, lo, hi), np.clip(ty, lo, hi), marker="*", markersize=16, color="red", markeredgecolor="white",
            linestyle="none", label="true action" + ("" if inside else " (outside, at the edge)"))
    ax.plot(*argmin_xy, marker="X", markersize=11, color="white", markeredgecolor="black", linestyle="none",
            label="argmin")
    ax.set_xlabel(f"{a_name} (m)")
    ax.set_ylabel(f"{b_name} (m)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=7, framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.grid < 2:
        raise SystemExit("error: --grid must be >= 2")
    if not args.extent > 0:
        raise SystemExit("error: --extent must be > 0")
    try:
        frame, goal, state, true_action = read_pair(args.traj, *args.pair) if args.traj else env_pair(args)
        wm = load_model_from_args(args)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"error: {err}") from None
    axes = AXES[args.axes]
    base = true_action.copy() if args.others == "true" else np.zeros(7, np.float32)
    values = np.linspace(-args.extent, args.extent, args.grid).astype(np.float32)
    start = time.perf_counter()
    energy = landscape(wm, frame, goal, state, base, axes, values, args.batch)  # [G, G]
    seconds = time.perf_counter() - start
    row, col = np.unravel_index(int(np.argmin(energy)), energy.shape)
    argmin = (float(values[col]), float(values[row]))
    true_xy = (float(true_action[axes[0]]), float(true_action[axes[1]]))
    true_energy = _energy_at(wm, frame, goal, state, true_action)
    a_name, b_name = (AXIS_NAMES[k] for k in axes)
    result = {
        "checkpoint": str(args.checkpoint) if args.checkpoint else "jepa_ac/assets/default_model",
        "backend": args.backend, "axes": [a_name, b_name],
        **({"traj": str(args.traj), "pair": list(args.pair)} if args.traj else {"env": args.env, "seed": args.seed}),
        "others": f"{'true action values' if args.others == 'true' else 'zero'} for the dims other than "
                  f"{a_name}, {b_name}",
        "base_action": base.tolist(), "true_action": true_action.tolist(), "state": state.tolist(),
        "values": values.tolist(),
        "energy": energy.tolist(),  # [G][G]: energy[r][c] at (a=values[c], b=values[r])
        "energy_layout": f"energy[r][c] is at {a_name}=values[c], {b_name}=values[r]",
        "argmin": {a_name: argmin[0], b_name: argmin[1], "energy": float(energy[row, col])},
        "true": {a_name: true_xy[0], b_name: true_xy[1], "energy": true_energy,
                 "inside_grid": bool(all(abs(v) <= args.extent for v in true_xy))},
        "argmin_to_true_m": float(np.hypot(argmin[0] - true_xy[0], argmin[1] - true_xy[1])),
        "energy_min": float(energy.min()), "energy_max": float(energy.max()), "seconds": seconds,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"landscape_{args.axes}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    pair = f"frames {args.pair[0]}->{args.pair[1]}" if args.traj else f"{args.env} seed {args.seed}"
    title = (f"{Path(str(result['checkpoint'])).name}, {pair}, "
             f"other dims = {'true action' if args.others == 'true' else '0'}\n"
             f"argmin ({argmin[0]:+.3f}, {argmin[1]:+.3f}), true ({true_xy[0]:+.3f}, {true_xy[1]:+.3f})")
    plot(args.out / f"{stem}.png", energy, values, args.axes, true_xy, argmin, title)
    print(f"{args.grid}x{args.grid} {a_name}/{b_name} grid over +-{args.extent} m in {seconds:.2f} s: argmin "
          f"({argmin[0]:+.3f}, {argmin[1]:+.3f}) energy {energy[row, col]:.4f}; true ({true_xy[0]:+.3f}, "
          f"{true_xy[1]:+.3f}) energy {true_energy:.4f}; {result['argmin_to_true_m']:.3f} m apart")
    print(f"wrote {args.out / (stem + '.png')}, {args.out / (stem + '.json')}")
    return result


def env_pair(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(frame after reset, frame after one random planned move, the state before it, the move the
    states show [7]) from `--env`, any env through its adapter."""
    from jepa_ac.cli.args import env_from_args, resolve_env_name
    from jepa_ac.control.closed_loop import RandomPolicy, make_env
    from jepa_ac.model.pose import action_between
    from jepa_ac.robot.adapters import GymRobot

    env_id = resolve_env_name(args.env)
    defaults, adapter = env_from_args(args, env_id, seed=args.seed)
    env = make_env(env_id, defaults.env, step_budget=2, adapter=adapter)
    try:
        robot = GymRobot(env, adapter=adapter)
        frame, state = robot.reset(seed=args.seed)
        robot.apply_action(RandomPolicy(defaults.action, seed=args.seed).infer({})["action"])
        goal, after = robot.get_observation()
    finally:
        env.close()
    return frame, goal, state, action_between(state.astype(np.float64), after.astype(np.float64)).astype(np.float32)


def _energy_at(wm: Any, frame: np.ndarray, goal: np.ndarray, state: np.ndarray, action: np.ndarray) -> float:
    """Energy of one exact action [7]."""
    ops = wm.ops
    z, z_goal = wm.encode(frame), wm.encode(goal)
    out = wm.rollout_energy(z, ops.asarray(state[None].astype(np.float32)),
                            ops.asarray(action[None, None].astype(np.float32)), z_goal)
    return float(ops.to_numpy(out)[0])


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
