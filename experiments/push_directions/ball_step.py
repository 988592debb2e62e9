"""Steps bounded by the L1 or Euclidean ball instead of the box, evaluated closed-loop.

The run of `../evaluate/comparisons/v3_push_l2_50/` (push 0.42 with the Euclidean ball against 0.46
with the box over the same 50 episodes; not shipped), as it was recorded:

    .venv/bin/python experiments/push_directions/ball_step.py --env push --episodes 50 --threads 1 \
        --checkpoint experiments/default_model/model \
        --planning experiments/evaluate/comparisons/v3_push_l2_50/planning.json \
        --out experiments/evaluate/comparisons/v3_push_l2_50

Every `ActionSpec` bound is the box (each axis clipped on its own, as upstream plans). The ball left
the library's loop and lives here: `BallStepSpec` subclasses `ActionSpec`, so CEM's samples and the
settling moves take the ball's step, and `BallStepPlanner` hands it to `python -m jepa_ac.evaluate`
(its `make_planner`). A planning file recorded before may name
`"translation_constraint": "l1" | "l2"` in an `action` section, as the one above does for push: this
script reads it there (the library refuses it), and `--ball` sets the ball for every env instead.
Every other flag is `python -m jepa_ac.evaluate`'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jepa_ac import evaluate
from jepa_ac.cli.args import DEFAULT_CHECKPOINT
from jepa_ac.model.pose import action_between
from jepa_ac.planning import ActionSpec, CEMConfig, CEMPlanner
from jepa_ac.planning.action_spec import TRANSLATION
from jepa_ac.planning.defaults import PLANNING_FILE

BALLS = ("l1", "l2")
FIELD = "translation_constraint"  # the planning.json field the ball once was


@dataclass(frozen=True)
class BallStepSpec(ActionSpec):
    """An `ActionSpec` whose translation is rescaled onto the L1 (`ball="l1"`) or Euclidean (`"l2"`)
    ball of radius `max_translation` when outside it, instead of clipped per axis. The box lets a
    diagonal move go sqrt(2)-sqrt(3) times further than an axis-aligned one; the Euclidean ball
    moves as far either way."""

    ball: str = "l2"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ball not in BALLS:
            raise ValueError(f"BallStepSpec.ball must be one of {BALLS}, got {self.ball!r}")

    @classmethod
    def of(cls, spec: ActionSpec, ball: str) -> "BallStepSpec":
        return cls(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(ActionSpec)}, ball=ball)

    def constrain(self, free: Any, ops: Any, position: Any = None) -> Any:
        clipped = super().constrain(free, ops)  # the per-axis bounds (rotation, gripper)
        trans = [i for i, n in enumerate(self.free_names) if n in TRANSLATION]
        if not trans:
            return clipped
        lo, hi = trans[0], trans[-1] + 1  # translation dims are contiguous in ACTION_NAMES
        xyz = free[..., lo:hi]  # unclipped: rescaled radially onto the ball
        if self.ball == "l1":
            norm = ops.sum(ops.abs(xyz), axis=-1)[..., None]
        else:
            norm = ops.sqrt(ops.sum(xyz * xyz, axis=-1))[..., None]
        scale = self.max_translation / ops.clip(norm, self.max_translation, float("inf"))
        clipped = ops.concat([clipped[..., :lo], xyz * scale, clipped[..., hi:]], axis=-1)
        if self.has_workspace and position is not None:
            clipped = self._inside_workspace(clipped, np.asarray(position, np.float64).reshape(3), ops)
        return clipped

    def move_toward(self, state: Any, target: Any) -> np.ndarray:
        action = np.asarray(action_between(np.asarray(state, np.float64), np.asarray(target, np.float64)),
                            np.float64)  # [7]
        action[6] = 0.0
        xyz = action[:3]
        size = np.abs(xyz).sum() if self.ball == "l1" else np.linalg.norm(xyz)
        if size > self.max_translation:
            action[:3] = xyz * (self.max_translation / size)
        return self.clip_full(action)


@dataclass(frozen=True)
class BallStepPlanner:
    """`make_planner` for `jepa_ac.evaluate`: the planner with its spec's steps on the ball."""

    ball: str

    def __call__(self, wm: Any, config: CEMConfig, spec: ActionSpec) -> CEMPlanner:
        return CEMPlanner(wm, config, BallStepSpec.of(spec, self.ball))


def split_balls(planning: dict[str, Any]) -> tuple[dict[str, Any], dict[str | None, str]]:
    """A planning.json dict without its `translation_constraint` fields, and the balls they named:
    {None: the top-level one, env id: an override's}; "box" is no ball."""
    planning = json.loads(json.dumps(planning))  # a deep copy
    sections = {None: planning, **planning.get("env_overrides", {})}
    balls = {}
    for env_id, section in sections.items():
        value = section.get("action", {}).pop(FIELD, "box")
        if value not in ("box", *BALLS):
            raise ValueError(f"{FIELD} must be 'box', 'l1' or 'l2', got {value!r}")
        if value != "box":
            balls[env_id] = value
    return planning, balls


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--ball", choices=BALLS, help="the ball for every env (default: the planning file's)")
    ours, rest = parser.parse_known_args(argv)
    args = evaluate.build_parser().parse_args(rest)
    source = args.config or Path(args.checkpoint or DEFAULT_CHECKPOINT) / PLANNING_FILE  # --planning is --config
    planning, balls = split_balls(json.loads(Path(source).read_text()) if Path(source).is_file() else {})
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / PLANNING_FILE
        stripped.write_text(json.dumps(planning))
        for env_id in evaluate.resolve_envs(args.env):
            ball = ours.ball or balls.get(env_id, balls.get(None))
            print(f"{env_id}: steps bounded by the {ball or 'box'}", flush=True)
            evaluate.main([*rest, "--planning", str(stripped), "--env", env_id],
                          make_planner=BallStepPlanner(ball) if ball else None)
    return 0


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
