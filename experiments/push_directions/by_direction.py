"""Push success by the push's direction: which way the block must go, from the robot's base frame.

Reads `python -m jepa_ac.evaluate` episode files (`episodes/FrankaPush-v0_*.json`), resets the env on
each episode's seed to get the block and target, and counts successes per direction sector (the
angle of target - block in the base frame: 0 = +x, away from the robot; 90 = +y, to the robot's
left). The exterior camera stands at (1.0, -0.45): on the -y side, so for a +y push the hand is
between the camera and the block.

    .venv/bin/python experiments/push_directions/by_direction.py \
        experiments/evaluate/comparisons/v3_side/episodes/FrankaPush-v0_planner_subgoals.json [MORE.json ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from jepa_ac.control.closed_loop import make_env  # noqa: E402
from jepa_ac.planning.defaults import EnvOptions  # noqa: E402

SECTORS = [(-135, -45, "-y (to the right)"), (-45, 45, "+x (away from the base)"),
           (45, 135, "+y (to the left, hand toward the camera)"), (135, 225, "-x (toward the base)")]


def push_geometry(env, seed: int) -> dict:
    """Direction (deg, base frame) and length (m) of the push in the scene of `seed`."""
    env.reset(seed=seed)
    u = env.unwrapped
    delta = u.target_pos - u._start_block[:2]
    angle = float(np.degrees(np.arctan2(delta[1], delta[0])))
    return {"angle_deg": angle if angle >= -135 else angle + 360, "length_m": float(np.linalg.norm(delta))}


def sector_of(angle: float) -> str:
    return next(name for lo, hi, name in SECTORS if lo <= angle < hi)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("episodes", type=Path, nargs="+", help="evaluate episode files of the push env")
    parser.add_argument("--oracle-sigmas", type=float, nargs="*", default=[],
                        help="also run the position oracle (experiments/subgoal_oracle, straight 3.5 cm moves) "
                             "on the same seeds with these sub-goal errors (m)")
    args = parser.parse_args(argv)
    env = make_env("jepa_ac/FrankaPush-v0", EnvOptions(image_size=64))
    runs = {Path(p).parent.parent.name + "/" + Path(p).stem: json.loads(p.read_text())["episodes"] for p in args.episodes}
    seeds = sorted({e["seed"] for eps in runs.values() for e in eps})
    geometry = {s: push_geometry(env, s) for s in seeds}
    if args.oracle_sigmas:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "subgoal_oracle"))
        from run import run_episode  # the oracle's controller

        oracle_env = make_env("jepa_ac/FrankaPush-v0", EnvOptions(image_size=128))
        for sigma in args.oracle_sigmas:
            runs[f"oracle, sigma {100 * sigma:.1f} cm"] = [run_episode(oracle_env, s, sigma, 0.035, 0.75, "straight")
                                                           for s in seeds]
        oracle_env.close()
    env.close()
    header = "| direction | episodes | " + " | ".join(runs) + " |"
    print(header + "\n|---|---:|" + "---:|" * len(runs))
    for _, _, name in SECTORS:
        cells, count = [], 0
        for eps in runs.values():
            hits = [e["success"] for e in eps if sector_of(geometry[e["seed"]]["angle_deg"]) == name]
            count = max(count, len(hits))
            cells.append(f"{sum(hits)}/{len(hits)}" if hits else "-")
        print(f"| {name} | {count} | " + " | ".join(cells) + " |")
    for lo, hi in [(0.12, 0.16), (0.16, 0.20), (0.20, 0.26)]:
        cells = []
        for eps in runs.values():
            hits = [e["success"] for e in eps if lo <= geometry[e["seed"]]["length_m"] < hi]
            cells.append(f"{sum(hits)}/{len(hits)}")
        print(f"| push of {100 * lo:.0f}-{100 * hi:.0f} cm | | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
