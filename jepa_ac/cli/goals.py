"""Goal images and goal grippers as the commands take them (`--goal`, `--goal-gripper`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class GoalImageError(ValueError):
    """A goal image file that cannot be used (not an image, wrong channels)."""


GRIPPER_WORDS = {"open": 0.0, "closed": 1.0}


def parse_goal_grippers(values: list[str], num_goals: int) -> list[float]:
    """`--goal-gripper` words (open / closed) or closedness numbers in [0, 1], one per --goal image."""
    if len(values) != num_goals:
        raise GoalImageError(f"--goal-gripper has {len(values)} values for {num_goals} --goal images; give one per image")
    grippers = []
    for value in values:
        try:
            g = GRIPPER_WORDS[value] if value in GRIPPER_WORDS else float(value)
        except ValueError:
            g = None
        if g is None or not 0.0 <= g <= 1.0:
            raise GoalImageError(f"--goal-gripper {value!r}: expected open, closed or a closedness in [0, 1]")
        grippers.append(g)
    return grippers


def read_goal_image(path: Path, size: int) -> tuple[np.ndarray, str | None]:
    """A goal image file as uint8 RGB [size, size, 3], and a note when it had to be converted.

    Another size is resized (shorter side) and centre-cropped, as the model's preprocessing does.
    Grey-scale, two-channel, CMYK, 16-bit or transparent images are rejected: the goal must look
    like the camera (`preprocess.read_rgb_image`).
    """
    from jepa_ac.model.preprocess import read_rgb_image, resize_center_crop

    try:
        array, notes = read_rgb_image(path, "goal")
    except (ValueError, FileNotFoundError) as err:
        raise GoalImageError(str(err)) from None
    h, w = array.shape[:2]
    if (h, w) != (size, size):
        array = resize_center_crop(array, size)[0]
        notes.append(f"resized from {w}x{h} to {size}x{size} (shorter side to {size}, centre crop, "
                     "as the model's preprocessing does)")
    return array, ("; ".join(notes) or None)
