"""push_waypoints.png: one push episode's way-point images as they were (hand turned to face the push,
top row) and as the env renders them now (home orientation, bottom row), after the reset frame."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
import gymnasium  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import jepa_ac.envs  # noqa: E402,F401

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from turned_images import use_turned_images  # noqa: E402


def main(seed: int = 1) -> None:
    env = gymnasium.make("jepa_ac/FrankaPush-v0", image_size=128)
    obs, _ = env.reset(seed=seed)
    now = env.unwrapped.subgoal_images()
    use_turned_images()
    before = env.unwrapped.subgoal_images()
    rows = [np.concatenate([obs["image"], *images], axis=1) for images in (before, now)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(HERE / "push_waypoints.png")
    env.close()


if __name__ == "__main__":
    main()
