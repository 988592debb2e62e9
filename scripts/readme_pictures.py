"""Regenerate the README's pictures of the shipped default model.

    .venv/bin/python scripts/readme_pictures.py            # plan --seed 0, then docs/images/default_reach_*

Runs `python -m jepa_ac.plan --seed 0` (reach, the shipped model) into runs/plan_readme, copies its
rollout.gif and energy.png to docs/images/default_reach_{rollout.gif,energy.png}, and stacks the
first, middle and last frames of the GIF (each beside the goal) into default_reach_frames.png.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "plan_readme"
IMAGES = ROOT / "docs" / "images"
GAP = 4  # px of white between stacked frames


def frames_strip(gif: Path) -> Image.Image:
    """First, middle and last frame of `gif`, stacked vertically."""
    with Image.open(gif) as image:
        count = image.n_frames
        picked = []
        for index in (0, count // 2, count - 1):
            image.seek(index)
            picked.append(np.asarray(image.convert("RGB")))
    height, width = picked[0].shape[:2]
    canvas = np.full((3 * height + 2 * GAP, width, 3), 255, np.uint8)
    for i, frame in enumerate(picked):
        canvas[i * (height + GAP) : i * (height + GAP) + height] = frame
    return Image.fromarray(canvas)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from jepa_ac import plan

    metrics = plan.main(["--seed", "0", "--threads", "2", "--out", str(OUT)])
    IMAGES.mkdir(parents=True, exist_ok=True)
    shutil.copy(OUT / "rollout.gif", IMAGES / "default_reach_rollout.gif")
    shutil.copy(OUT / "energy.png", IMAGES / "default_reach_energy.png")
    frames_strip(OUT / "rollout.gif").save(IMAGES / "default_reach_frames.png")
    print(f"seed 0: success {metrics['success']}, {metrics['steps']} steps, final ee_to_goal "
          f"{metrics['final_task_distance']:.3f} m, plan {metrics['plan_s_mean']:.2f} s/step mean "
          f"({metrics['plan_s_max']:.2f} max); wrote docs/images/default_reach_*")


if __name__ == "__main__":
    main()
