"""The first descent step of pick-and-place, predicted and observed (issue 31, session 25).

The arm is placed (IK) open above the cube, as the planner settles there; every move on a grid of
(dx, dz) in the camera's plane (dy = 0; x points toward the front camera) is scored two ways against
the way-point image "open around the cube" (9.5 cm below): the predicted energy, as CEM scores a
candidate (the shipped predictor and, with --ensemble, the mean with its ensemble member), and the
observed distance, with the arm placed at the move's end and rendered. Where the two minima lie tells
whether the sideways descents come from the predictor or from the camera.

    .venv/bin/python experiments/wrist_view/descent_landscape.py --seed 1 --indices 0 3 7 8 9 12 \\
        --out experiments/wrist_view/descent_landscape.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from jepa_ac.data.collection import episode_seed
from jepa_ac.envs import scene
from jepa_ac.envs.experts import LOW_Z, SAFE_Z
from jepa_ac.world_model import load_world_model

STEP = 0.015  # m between grid points; the shipped pick-and-place bound is 0.075 per axis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="jepa_ac/assets/default_model")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--indices", type=int, nargs="+", required=True)
    parser.add_argument("--start-z", type=float, default=SAFE_Z,
                        help="TCP height the step starts from, straight above the cube (default: the way-point above it)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import gymnasium as gym
    import jepa_ac.envs  # noqa: F401  (registers the ids)

    wm = load_world_model(args.checkpoint, load_views=False)
    env = gym.make("jepa_ac/FrankaPickPlace-v0", image_size=128, exterior_view="front")
    u = env.unwrapped
    dxs = np.round(np.arange(-0.075, 0.0751, STEP), 3)
    dzs = np.round(np.arange(-0.015 - STEP * np.ceil((args.start_z - LOW_Z) / STEP), 0.0001, STEP), 3)
    results = []
    for index in args.indices:
        u.reset(seed=episode_seed(args.seed, index))
        goal = u.subgoal_images()[1]  # open around the cube
        above = np.array([*u._start_cube[:2], args.start_z])
        start = u._goal_data_ready(lambda d: (u._arm_to(d, above), 0.0)[1])
        frame, state = u._render(start, scene.EXTERIOR_CAMERA), u.state(start).astype(np.float32)
        z, z_goal = wm.encode(frame), wm.encode(goal)
        moves = np.array([[dx, 0.0, dz] for dz in dzs for dx in dxs])  # [G, 3]
        actions = np.zeros((len(moves), 1, 7), np.float32)
        actions[:, 0, :3] = moves
        a = torch.from_numpy(actions)
        s = torch.from_numpy(state[None])
        shipped = wm.rollout_energy(z, s, a, z_goal)  # [G]
        predicted = {"shipped": shipped.float().numpy()}
        if wm.members:
            predicted["ensemble"] = wm.ensemble_energy(shipped, z, s, a, z_goal).float().numpy()
        observed = []
        for move in moves:
            data = u._goal_data_ready(lambda d, p=above + move: (u._arm_to(d, p), 0.0)[1])
            observed.append(float(wm.energy(wm.encode(u._render(data, scene.EXTERIOR_CAMERA)), z_goal)))
        row = {"index": index, "cube": u._start_cube.round(4).tolist(), "descent": round(args.start_z - LOW_Z, 3),
               "observed": np.round(observed, 5).tolist(),
               **{k: np.round(v, 5).tolist() for k, v in predicted.items()}}
        for key in ("observed", *predicted):
            best = moves[int(np.argmin(row[key]))]
            row[f"{key}_argmin"] = best.round(3).tolist()
            print(f"episode {index}: {key:8s} argmin dx {100 * best[0]:+.1f} cm, dz {100 * best[2]:+.1f} cm", flush=True)
        results.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dx": dxs.tolist(), "dz": dzs.tolist(), "episodes": results}))


if __name__ == "__main__":
    main()
