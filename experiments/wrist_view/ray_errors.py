"""Where pick-and-place's empty grasps end, relative to the front camera: the TCP's error from the grasp
way-point (open around the cube) split into the part along the camera's viewing ray (+: toward the
camera) and the part across it, at every step the planner aimed at that way-point.

    .venv/bin/python experiments/wrist_view/ray_errors.py experiments/wrist_view/traces/front_seeds1_*.json

Reads traces written by experiments/planning_energy/grasps/trace_grasps.py (positions from the
simulator, for diagnosis only).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from jepa_ac.envs import scene
from jepa_ac.envs.experts import LOW_Z

GRASP_WAYPOINT = 1  # the env's way-points: above the cube, open around it, closed on it, ...


def main(paths: list[str]) -> None:
    camera = np.array(scene.EXTERIOR_VIEWS["front"][0])
    print("| episode | success | steps at the way-point | last error (cm) | along the ray (cm) | across (cm) |")
    print("|---|---|---:|---:|---:|---:|")
    for path in paths:
        for episode in json.load(open(path))["episodes"]:
            trace = episode["trace"]
            cube = np.array(trace[0]["cube"])
            waypoint = np.array([cube[0], cube[1], LOW_Z])
            ray = (camera - waypoint) / np.linalg.norm(camera - waypoint)
            steps = [s for s in trace if s["goal_index"] == GRASP_WAYPOINT]
            if not steps:
                continue
            error = np.array(steps[-1]["tcp"]) - waypoint
            along = float(error @ ray)
            across = float(np.linalg.norm(error - along * ray))
            print(f"| {episode['index']} | {episode['success']} | {len(steps)} | {100 * np.linalg.norm(error):.1f} | "
                  f"{100 * along:+.1f} | {100 * across:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
