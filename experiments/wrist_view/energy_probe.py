"""How well does a camera's observed latent distance find the grasp pose? (issue 31, wrist view)

For pick-and-place scenes, the arm is placed (IK, home orientation, gripper open) at the way-point
"open around the cube" and at offsets from it: along the front camera's viewing ray (toward the
camera is +), and across it (horizontal, perpendicular to the ray). Each pose is rendered from a
camera, encoded, and its L1 latent distance to the way-point image's latent is recorded. A camera
that finds the grasp has its minimum at offset 0 and rises steeply around it.

    .venv/bin/python experiments/wrist_view/energy_probe.py --checkpoint jepa_ac/assets/default_model \
        --episodes 10 --out experiments/wrist_view/probe_front_encoder.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from jepa_ac.data.collection import episode_seed
from jepa_ac.envs import scene
from jepa_ac.world_model import load_world_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="jepa_ac/assets/default_model")
    parser.add_argument("--wrist-checkpoint", default=None, help="encoder for the wrist view (default: --checkpoint)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import gymnasium as gym
    import jepa_ac.envs  # noqa: F401  (registers the ids)

    models = {"front": load_world_model(args.checkpoint, load_predictor=False)}
    models["wrist"] = load_world_model(args.wrist_checkpoint, load_predictor=False) if args.wrist_checkpoint \
        else models["front"]
    env = gym.make("jepa_ac/FrankaPickPlace-v0", image_size=128, wrist_camera=True, exterior_view="front")
    u = env.unwrapped
    cameras = {"front": scene.EXTERIOR_CAMERA, "wrist": scene.WRIST_CAMERA}
    offsets = np.round(np.arange(-0.06, 0.0601, 0.01), 3)
    camera_pos = np.array(scene.EXTERIOR_VIEWS["front"][0])
    results = []
    for index in range(args.episodes):
        u.reset(seed=episode_seed(args.seed, index))
        at_cube_config = u._subgoal_configurations()[1]
        goal = u._goal_data_ready(at_cube_config)
        at_cube = goal.site_xpos[u._ee_site].copy()
        ray = camera_pos - at_cube
        ray /= np.linalg.norm(ray)
        across = np.cross(ray, [0.0, 0.0, 1.0])
        across /= np.linalg.norm(across)
        goal_images = {v: u._render(goal, c) for v, c in cameras.items()}
        episode = {"index": index, "cube": u._start_cube.round(4).tolist(), "axes": {}}
        for axis, direction in (("along_ray", ray), ("across", across)):
            frames = {v: [] for v in cameras}
            for t in offsets:
                def configure(data, t=t):
                    closedness = at_cube_config(data)
                    u._arm_to(data, at_cube + t * direction)
                    return closedness
                data = u._goal_data_ready(configure)
                for v, c in cameras.items():
                    frames[v].append(u._render(data, c))
            row = {}
            for v in cameras:
                wm = models[v]
                z = wm.encode(np.stack(frames[v]))
                z_goal = wm.encode(goal_images[v][None])
                energy = np.asarray(wm.energy(z, z_goal), dtype=float).reshape(len(offsets))
                row[v] = energy.round(5).tolist()
            episode["axes"][axis] = row
            print(index, axis, {v: float(offsets[int(np.argmin(row[v]))]) for v in cameras}, flush=True)
        results.append(episode)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"offsets": offsets.tolist(), "episodes": results}, indent=1))


if __name__ == "__main__":
    main()
