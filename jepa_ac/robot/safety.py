"""The safety layer every action passes through before it reaches a robot.

    safety = SafetyLayer(load_safety_config("configs/safety_default.yaml"))
    safe = safety.filter(state, action)      # SafeAction: .action [7], .next_state [7], .clips
    robot.apply_action(safe.action)

Checks, in order, on the DROID delta `[dx, dy, dz, droll, dpitch, dyaw, dgripper]` taken from
`state = [x, y, z, roll, pitch, yaw, gripper]`:

1. NaN/inf in the state or the action: refused with `SafetyStop` (nothing is sent).
2. Workspace box: the resulting end-effector position is clipped into the box (each axis's
   change only shrinks; from a position outside the box only moves back towards it pass).
3. Per-step translation limit: the xyz delta is scaled down to `max_translation` (Euclidean).
4. Per-step rotation limit: the delta rotation is scaled (along its axis) to `max_rotation` rad.
5. Gripper: the change is limited to `max_gripper_delta` and the resulting gripper closedness
   is clipped into `[gripper_min, gripper_max]`.

The resulting state is computed with `jepa_ac.pose.apply_action`, so the checks use the same pose
composition as the planner, the simulator and DROID. Every clip is logged (logger
`jepa_ac.robot.safety`, level WARNING) and reported in `SafeAction.clips`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from jepa_ac.pose import ACTION_NAMES, STATE_NAMES, apply_action

logger = logging.getLogger(__name__)

# a clipped position may land this far outside the box through float rounding
_BOX_TOLERANCE = 1e-6


class SafetyStop(RuntimeError):
    """An action or state that must not reach the robot (NaN/inf, or a failed final check)."""


@dataclass(frozen=True)
class SafetyConfig:
    """Limits on every action; positions in metres in the robot base frame, angles in radians.

    The defaults are a conservative box in front of a table-mounted Franka (DROID base frame) and
    per-step limits that admit V-JEPA 2-AC's planning range (|d| <= 0.05 m per axis).
    `configs/safety_default.yaml` holds the same values (a test keeps the two equal).
    """

    workspace_min: tuple[float, float, float] = (0.20, -0.50, 0.02)
    workspace_max: tuple[float, float, float] = (0.85, 0.50, 0.75)
    max_translation: float = 0.10  # m per step, Euclidean norm of the xyz delta
    max_rotation: float = 0.35  # rad per step, angle of the delta rotation
    max_gripper_delta: float = 1.0  # per step, in closedness units
    gripper_min: float = 0.0
    gripper_max: float = 1.0

    def __post_init__(self) -> None:
        for name in ("workspace_min", "workspace_max"):
            value = getattr(self, name)
            try:
                value = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise ValueError(f"SafetyConfig.{name} must be 3 numbers [x, y, z], got {value!r}") from None
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ValueError(f"SafetyConfig.{name} must be 3 finite numbers [x, y, z], got {value!r}")
            object.__setattr__(self, name, value)
        for axis, lo, hi in zip("xyz", self.workspace_min, self.workspace_max):
            if not lo < hi:
                raise ValueError(f"SafetyConfig workspace: {axis} min {lo} must be below max {hi}")
        for name in ("max_translation", "max_rotation", "max_gripper_delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"SafetyConfig.{name} must be a positive finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.max_rotation > math.pi:
            raise ValueError(f"SafetyConfig.max_rotation must be at most pi rad, got {self.max_rotation}")
        if not 0.0 <= self.gripper_min < self.gripper_max <= 1.0:
            raise ValueError(
                f"SafetyConfig needs 0 <= gripper_min < gripper_max <= 1, got {self.gripper_min}, {self.gripper_max}"
            )

    @classmethod
    def from_dict(cls, data: Any, source: str = "safety config") -> "SafetyConfig":
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a mapping of limits, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; valid keys are {sorted(fields)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def load_safety_config(path: str | Path) -> SafetyConfig:
    """Read a YAML file of limits (keys: the `SafetyConfig` fields; missing keys keep defaults)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"safety config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    return SafetyConfig.from_dict({} if data is None else data, source=str(path))


@dataclass(frozen=True)
class SafeAction:
    """The action that may be sent, what was asked for, and where it leads."""

    action: np.ndarray  # [7] float64, the action to send
    requested: np.ndarray  # [7] float64, the action the planner gave
    next_state: np.ndarray  # [7] float64, apply_action(state, action)
    clips: tuple[str, ...]  # one line per limit that changed the action

    @property
    def clipped(self) -> bool:
        return bool(self.clips)


class SafetyLayer:
    """Clip or refuse actions against a `SafetyConfig` (stateless; safe to share)."""

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        self._lo = np.asarray(self.config.workspace_min, dtype=np.float64)
        self._hi = np.asarray(self.config.workspace_max, dtype=np.float64)

    def filter(self, state: Any, action: Any) -> SafeAction:
        """The safe version of `action` taken from `state` ([7] each); `SafetyStop` if it must be refused."""
        cfg = self.config
        state = _vector(state, "state", STATE_NAMES)
        requested = _vector(action, "action", ACTION_NAMES)
        safe = requested.copy()
        clips: list[str] = []

        # 2. workspace box on the resulting position
        position = state[:3]
        lo, hi = self._lo, self._hi
        if np.any(position < lo - _BOX_TOLERANCE) or np.any(position > hi + _BOX_TOLERANCE):
            clips.append(f"state position {_fmt(position)} is outside the workspace; only moves towards it pass")
            # widen the box to the current position: moving further out is blocked, moving back is kept
            lo, hi = np.minimum(lo, position), np.maximum(hi, position)
        target = np.clip(position + safe[:3], lo, hi)
        if not np.allclose(target, position + safe[:3], rtol=0.0, atol=1e-12):
            clips.append(f"workspace: position {_fmt(position + safe[:3])} clipped to {_fmt(target)}")
        safe[:3] = target - position

        # 3. translation per step
        distance = float(np.linalg.norm(safe[:3]))
        if distance > cfg.max_translation:
            safe[:3] *= cfg.max_translation / distance
            clips.append(f"translation: {distance:.4f} m scaled to {cfg.max_translation:.4f} m")

        # 4. rotation per step, scaled along the rotation axis
        rotvec = Rotation.from_euler("xyz", safe[3:6]).as_rotvec()
        angle = float(np.linalg.norm(rotvec))
        if angle > cfg.max_rotation:
            safe[3:6] = Rotation.from_rotvec(rotvec * (cfg.max_rotation / angle)).as_euler("xyz")
            clips.append(f"rotation: {angle:.4f} rad scaled to {cfg.max_rotation:.4f} rad")

        # 5. gripper change and resulting closedness
        delta = float(np.clip(safe[6], -cfg.max_gripper_delta, cfg.max_gripper_delta))
        if delta != safe[6]:
            clips.append(f"gripper delta: {safe[6]:.4f} clipped to {delta:.4f}")
        gripper = float(np.clip(state[6] + delta, cfg.gripper_min, cfg.gripper_max))
        if gripper != state[6] + delta:
            clips.append(f"gripper: {state[6] + delta:.4f} clipped to [{cfg.gripper_min}, {cfg.gripper_max}]")
        safe[6] = gripper - state[6]

        next_state = np.asarray(apply_action(state, safe), dtype=np.float64)
        self._final_check(state, safe, next_state)
        for line in clips:
            logger.warning("safety clip: %s", line)
        return SafeAction(action=safe, requested=requested, next_state=next_state, clips=tuple(clips))

    def _final_check(self, state: np.ndarray, safe: np.ndarray, next_state: np.ndarray) -> None:
        # belt and braces: the clipped action must satisfy every limit it was clipped to
        cfg = self.config
        inside = bool(np.all(state[:3] >= self._lo - _BOX_TOLERANCE) and np.all(state[:3] <= self._hi + _BOX_TOLERANCE))
        problems = []
        if not np.all(np.isfinite(next_state)):
            problems.append("resulting state is not finite")
        if inside and (np.any(next_state[:3] < self._lo - _BOX_TOLERANCE) or np.any(next_state[:3] > self._hi + _BOX_TOLERANCE)):
            problems.append(f"resulting position {_fmt(next_state[:3])} is outside the workspace")
        if np.linalg.norm(safe[:3]) > cfg.max_translation * (1 + 1e-9):
            problems.append("translation limit exceeded")
        if Rotation.from_euler("xyz", safe[3:6]).magnitude() > cfg.max_rotation * (1 + 1e-6):
            problems.append("rotation limit exceeded")
        if not cfg.gripper_min - 1e-9 <= state[6] + safe[6] <= cfg.gripper_max + 1e-9:
            problems.append("gripper range exceeded")
        if problems:
            raise SafetyStop("safety final check failed: " + "; ".join(problems))


def _vector(x: Any, name: str, names: tuple[str, ...]) -> np.ndarray:
    try:
        v = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise SafetyStop(f"{name} is not numeric: {x!r}") from None
    if v.shape != (len(names),):
        raise SafetyStop(f"{name} must have shape [{len(names)}] ({', '.join(names)}), got {list(v.shape)}")
    if not np.all(np.isfinite(v)):
        bad = [n for n, value in zip(names, v) if not math.isfinite(value)]
        raise SafetyStop(f"{name} contains NaN/inf in {bad}: {v.tolist()}; refusing to move")
    return v


def _fmt(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.4f}" for x in v) + "]"
