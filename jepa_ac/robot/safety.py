"""The safety layer every action passes through before it reaches a robot.

    safety = SafetyLayer(load_safety_config())  # the shipped safety_default.yaml
    safe = safety.filter(state, action)      # SafeAction: .action [7], .next_state [7], .clips
    robot.apply_action(safe.action)

`filter` takes the reported `state = [x, y, z, roll, pitch, yaw, gripper]` and the planner's DROID
delta `[dx, dy, dz, droll, dpitch, dyaw, dgripper]` and, in float64 throughout:

Refuses (`SafetyStop`, nothing may be sent) when
1. the state or the action is not 7 finite numbers (NaN/inf, wrong shape, not numeric);
2. the state is outside its physical range (`jepa_ac.model.pose.check_states` with the layer's
   `StateRanges`: |xyz| <= 3 m, |angles| <= 2 pi, gripper in [-0.05, 1.05] by default): a gripper
   width in mm or angles in degrees is a wiring error, and no limit means anything from such a state.

Clamps (logged at WARNING on `jepa_ac.robot.safety` and listed in `SafeAction.clips`) otherwise:
3. Translation: the xyz delta is scaled down (direction kept) to `max_translation` (Euclidean).
4. Workspace: the axes whose resulting position would leave the box are cut at its face. The box is
   the configured workspace intersected with the physical position range; from a reported position
   outside it, only moves back towards it pass (the box is widened to that position).
5. Rotation: the delta rotation is scaled along its axis to `max_rotation` rad, and is always returned
   as xyz Euler angles in [-pi, pi] (planner angles like 1e39 rad or 2 pi 1e7 + 0.1 rad denote a
   small rotation in float64 but overflow or become another rotation when cast to float32).
6. Gripper: the change is limited to `max_gripper_delta` and the resulting closedness clipped into
   `[gripper_min, gripper_max]`; from a reported closedness outside that range (but physically
   plausible), only changes back towards it pass.

A final check then recomputes every limit on the returned action and on its float32 cast (the wire
and the robot adapters send float32) and refuses if any fails; it never should.

Tolerance: the per-step limits hold to `limit * (1 + 1e-6) + 1e-12` (rounding, the float32 cast),
the workspace box and the gripper range to 1e-6 m (closedness). The resulting state is computed with
`jepa_ac.model.pose.apply_action`, the composition the planner, the simulator and DROID use.
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

from jepa_ac.model.pose import (ACTION_NAMES, DEFAULT_STATE_RANGES, GRIPPER, POSITION, ROTATION, STATE_NAMES,
                                StateRanges, apply_action, check_shape, check_states)

logger = logging.getLogger(__name__)

# a resulting position (closedness) may land this far outside the box (range): rounding, the float32 cast
_BOX_TOLERANCE = 1e-6
# a per-step limit may be exceeded by limit * _LIMIT_RTOL + _LIMIT_ATOL (the absolute part for limits near 0)
_LIMIT_RTOL, _LIMIT_ATOL = 1e-6, 1e-12
# xyz Euler angles as `pose.matrix_to_euler_xyz` and scipy return them: roll, yaw in [-pi, pi], pitch in [-pi/2, pi/2]
_CANONICAL_EULER = np.array([math.pi, math.pi / 2, math.pi])


class SafetyStop(RuntimeError):
    """An action or state that must not reach the robot (NaN/inf, an implausible state, a failed final check)."""


@dataclass(frozen=True)
class SafetyConfig:
    """Limits on every action; positions in metres in the robot base frame, angles in radians.

    The defaults are a conservative box in front of a table-mounted Franka (DROID base frame) and
    per-step limits that admit V-JEPA 2-AC's planning range (|d| <= 0.05 m per axis).
    `safety_default.yaml` beside this module (package data) holds the same values (a test keeps the two equal).
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


DEFAULT_SAFETY_FILE = Path(__file__).with_name("safety_default.yaml")  # package data: found without a checkout


def load_safety_config(path: str | Path = DEFAULT_SAFETY_FILE) -> SafetyConfig:
    """Read a YAML file of limits (keys: the `SafetyConfig` fields; missing keys keep defaults);
    without a path, the shipped `safety_default.yaml`."""
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
    """Clip or refuse actions against a `SafetyConfig` (stateless; safe to share).

    `state_ranges` is the physically plausible state (`jepa_ac.model.pose.StateRanges`); a state outside it
    is refused. The workspace must overlap its position range.
    """

    def __init__(self, config: SafetyConfig | None = None, state_ranges: StateRanges = DEFAULT_STATE_RANGES) -> None:
        self.config = config or SafetyConfig()
        self.state_ranges = state_ranges
        m = state_ranges.max_position
        # [3] each: the workspace within the physical range, so a resulting position is always plausible
        self._lo = np.maximum(np.asarray(self.config.workspace_min, dtype=np.float64), -m)
        self._hi = np.minimum(np.asarray(self.config.workspace_max, dtype=np.float64), m)
        for axis, lo, hi in zip("xyz", self.config.workspace_min, self.config.workspace_max):
            if max(lo, -m) > min(hi, m):
                raise ValueError(f"SafetyConfig workspace {axis} [{lo}, {hi}] does not overlap the physical position "
                                 f"range [{-m}, {m}] m of {type(state_ranges).__name__}; expected metres in the "
                                 "robot base frame")

    def filter(self, state: Any, action: Any) -> SafeAction:
        """The safe version of `action` taken from `state` ([7] each); `SafetyStop` if it must be refused
        (non-finite or non-numeric input, a state outside its physical range). See the module docstring."""
        cfg = self.config
        state = _vector(state, "state", STATE_NAMES)
        requested = _vector(action, "action", ACTION_NAMES)
        try:
            check_states(state, "state", self.state_ranges)
        except ValueError as err:
            raise SafetyStop(f"{err}; refusing to move (check the robot's units and wiring)") from None
        clips: list[str] = []
        translation = self._translation(state[POSITION], requested[POSITION], clips)
        rotation = self._rotation(requested[ROTATION], clips)
        gripper = self._gripper(float(state[GRIPPER]), float(requested[GRIPPER]), clips)
        safe = np.concatenate([translation, rotation, [gripper]])  # [7] float64

        next_state = np.asarray(apply_action(state, safe), dtype=np.float64)
        problems = self.violations(state, safe)
        if problems:
            raise SafetyStop("safety final check failed: " + "; ".join(problems))
        for line in clips:
            logger.warning("safety clip: %s", line)
        return SafeAction(action=safe, requested=requested, next_state=next_state, clips=tuple(clips))

    def _translation(self, position: np.ndarray, delta: np.ndarray, clips: list[str]) -> np.ndarray:
        cfg = self.config
        # 3. scale to max_translation; the norm is taken of delta / max|delta| so that it cannot overflow
        peak = float(np.max(np.abs(delta)))
        if peak > 0.0:
            unit = delta / peak  # [3], largest |component| is 1
            unit_norm = float(np.linalg.norm(unit))
            distance = peak * unit_norm  # inf when it overflows: then scaled all the same
            if distance > cfg.max_translation:
                delta = unit * (cfg.max_translation / unit_norm)
                clips.append(f"translation: {distance:.4g} m scaled to {cfg.max_translation:.4g} m")
        # 4. workspace box on the resulting position, widened to a reported position outside it
        lo, hi = np.minimum(self._lo, position), np.maximum(self._hi, position)
        if np.any(position < self._lo - _BOX_TOLERANCE) or np.any(position > self._hi + _BOX_TOLERANCE):
            clips.append(f"state position {_fmt(position)} is outside the workspace {_fmt(self._lo)}-{_fmt(self._hi)}; "
                         "only moves towards it pass")
        reach = position + delta
        out = (reach < lo) | (reach > hi)
        if np.any(out):
            target = np.clip(reach, lo, hi)
            delta = np.where(out, target - position, delta)  # only the axes that leave the box change
            clips.append(f"workspace: position {_fmt(reach)} clipped to {_fmt(target)}")
        return delta

    def _rotation(self, euler: np.ndarray, clips: list[str]) -> np.ndarray:
        cfg = self.config
        # 5. scale along the rotation axis; return canonical Euler angles (|roll|, |yaw| <= pi, |pitch| <= pi/2)
        rotvec = Rotation.from_euler("xyz", euler).as_rotvec()  # [3], angle in [0, pi]
        angle = float(np.linalg.norm(rotvec))
        if angle > cfg.max_rotation:
            clips.append(f"rotation: {angle:.4f} rad scaled to {cfg.max_rotation:.4g} rad")
            return Rotation.from_rotvec(rotvec * (cfg.max_rotation / angle)).as_euler("xyz")
        if np.all(np.abs(euler) <= _CANONICAL_EULER):
            return euler
        canonical = Rotation.from_rotvec(rotvec).as_euler("xyz")
        clips.append(f"rotation: Euler angles {_fmt(euler)} rewritten as {_fmt(canonical)} (the same rotation)")
        return canonical

    def _gripper(self, closedness: float, delta: float, clips: list[str]) -> float:
        cfg = self.config
        # 6. change per step, then the resulting closedness, widened to a reported closedness outside it
        limited = min(max(delta, -cfg.max_gripper_delta), cfg.max_gripper_delta)
        if limited != delta:
            clips.append(f"gripper delta: {delta:.4g} clipped to {limited:.4g}")
        lo, hi = min(cfg.gripper_min, closedness), max(cfg.gripper_max, closedness)
        if not cfg.gripper_min - _BOX_TOLERANCE <= closedness <= cfg.gripper_max + _BOX_TOLERANCE:
            clips.append(f"state gripper {closedness:.4f} is outside [{cfg.gripper_min}, {cfg.gripper_max}]; "
                         "only changes towards it pass")
        reach = closedness + limited
        if not lo <= reach <= hi:
            target = min(max(reach, lo), hi)
            clips.append(f"gripper: {reach:.4g} clipped to {target:.4g}")
            limited = target - closedness
        return limited

    def violations(self, state: np.ndarray, action: np.ndarray) -> list[str]:
        """Every limit `action` [7] breaks from `state` [7], checked on float64 and on the float32 cast."""
        cfg = self.config
        state = np.asarray(state, dtype=np.float64)
        problems: list[str] = []
        with np.errstate(over="ignore"):  # an overflow to inf is reported below
            as_float32 = np.asarray(action, dtype=np.float64).astype(np.float32).astype(np.float64)
        for kind, a in (("", np.asarray(action, dtype=np.float64)), (" (float32)", as_float32)):
            if not np.all(np.isfinite(a)):
                problems.append(f"action{kind} is not finite")
                continue
            position, reach = state[POSITION], state[POSITION] + a[POSITION]
            lo, hi = np.minimum(self._lo, position), np.maximum(self._hi, position)
            if np.any(reach < lo - _BOX_TOLERANCE) or np.any(reach > hi + _BOX_TOLERANCE):
                problems.append(f"resulting position{kind} {_fmt(reach)} is outside the workspace")
            if _norm(a[POSITION]) > _limit(cfg.max_translation):
                problems.append(f"translation limit exceeded{kind}")
            if np.any(np.abs(a[ROTATION]) > _CANONICAL_EULER + _BOX_TOLERANCE) \
                    or Rotation.from_euler("xyz", a[ROTATION]).magnitude() > _limit(cfg.max_rotation):
                problems.append(f"rotation limit exceeded{kind}")
            closedness = state[GRIPPER] + a[GRIPPER]
            if abs(a[GRIPPER]) > _limit(cfg.max_gripper_delta):
                problems.append(f"gripper delta limit exceeded{kind}")
            if not (min(cfg.gripper_min, state[GRIPPER]) - _BOX_TOLERANCE <= closedness
                    <= max(cfg.gripper_max, state[GRIPPER]) + _BOX_TOLERANCE):
                problems.append(f"gripper range exceeded{kind}")
        return problems


def _limit(value: float) -> float:
    return value * (1 + _LIMIT_RTOL) + _LIMIT_ATOL


def _norm(v: np.ndarray) -> float:
    peak = float(np.max(np.abs(v)))
    return 0.0 if peak == 0.0 else peak * float(np.linalg.norm(v / peak))


def _vector(x: Any, name: str, names: tuple[str, ...]) -> np.ndarray:
    try:
        v = np.asarray(x)
    except (TypeError, ValueError):
        v = None
    if v is None or v.dtype.kind not in "iuf":  # not bool, str, object (Python ints beyond int64), complex
        raise SafetyStop(f"{name} must be {len(names)} numbers [{', '.join(names)}], got {x!r}")
    try:
        check_shape(v, name, names=names)
    except ValueError as err:
        raise SafetyStop(str(err)) from None
    v = v.astype(np.float64)  # a float128 beyond float64 becomes inf here and is refused below
    if not np.all(np.isfinite(v)):
        bad = [n for n, value in zip(names, v) if not math.isfinite(value)]
        raise SafetyStop(f"{name} contains NaN/inf in {bad}: {v.tolist()}; refusing to move")
    return v


def _fmt(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
