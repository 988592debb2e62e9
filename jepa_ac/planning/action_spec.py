"""A typed description of the 7-D DROID action: which dims are searched, their bounds, frozen dims."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from jepa_ac.model.array_ops import NUMPY_OPS
from jepa_ac.model import pose
from jepa_ac.model.pose import ACTION_NAMES, action_between

TRANSLATION = ACTION_NAMES[pose.POSITION]  # ("dx", "dy", "dz")
ROTATION = ACTION_NAMES[pose.ROTATION]  # ("droll", "dpitch", "dyaw")
GRIPPER = (ACTION_NAMES[pose.GRIPPER],)  # ("dgripper",)
GRIPPER_CLOSED_ABOVE = 0.25  # a goal's gripper closedness above this is held closed (`holding_gripper`)


@dataclass(frozen=True)
class ActionSpec:
    """Bounds and frozen dims of the action `[dx, dy, dz, droll, dpitch, dyaw, dgripper]`.

    Defaults are V-JEPA 2-AC's planning setup: translation per axis in [-0.05, 0.05] m, rotation
    held at 0, gripper change in [-0.75, 0.75]. `frozen` pins dims to values (upstream's `axis`).
    Each bound clips its own axis (upstream's box; a step bounded by the L1 or Euclidean ball instead
    was measured and did not ship: `experiments/push_directions/ball_step.py` subclasses this spec).
    `workspace_min` / `workspace_max` (m, xyz; both or neither) bound the TCP positions a plan may
    reach from the current state (`constrain(..., position=)`), e.g. the predictor's training
    support, so CEM cannot exploit a model where it never saw data; a state already outside the box
    may stay where it is but not move further out.
    """

    max_translation: float = 0.05
    max_rotation: float = 0.25
    max_gripper_delta: float = 0.75
    frozen: tuple[tuple[str, float], ...] = (("droll", 0.0), ("dpitch", 0.0), ("dyaw", 0.0))
    workspace_min: tuple[float, float, float] | None = None
    workspace_max: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        self._check_workspace()
        for name in ("max_translation", "max_rotation", "max_gripper_delta"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ActionSpec.{name} must be > 0, got {getattr(self, name)!r}")
        object.__setattr__(self, "frozen", tuple((str(n), float(v)) for n, v in dict(self.frozen).items()))
        for name, value in self.frozen:
            if name not in ACTION_NAMES:
                raise ValueError(f"ActionSpec.frozen: unknown action dim {name!r}; dims are {ACTION_NAMES}")
            if abs(value) > self.bound(name):
                raise ValueError(f"ActionSpec.frozen: {name}={value} is outside its bound {self.bound(name)}")
        if not self.free_names:
            raise ValueError("ActionSpec.frozen freezes every dim; nothing left to plan")

    def _check_workspace(self) -> None:
        low, high = self.workspace_min, self.workspace_max
        if (low is None) != (high is None):
            raise ValueError("ActionSpec.workspace_min and workspace_max must be given together (or neither)")
        if low is None:
            return
        for name in ("workspace_min", "workspace_max"):
            value = getattr(self, name)
            try:
                box = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                box = ()
            if len(box) != 3 or not all(np.isfinite(box)):
                raise ValueError(f"ActionSpec.{name} must be 3 finite numbers (x, y, z in m), got {value!r}")
            object.__setattr__(self, name, box)
        if not all(lo < hi for lo, hi in zip(self.workspace_min, self.workspace_max)):
            raise ValueError(f"ActionSpec workspace: workspace_min {list(self.workspace_min)} must be below "
                             f"workspace_max {list(self.workspace_max)} on every axis")

    @property
    def has_workspace(self) -> bool:
        return self.workspace_min is not None

    # -- layout -------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(ACTION_NAMES)

    @property
    def free_names(self) -> tuple[str, ...]:
        frozen = dict(self.frozen)
        return tuple(n for n in ACTION_NAMES if n not in frozen)

    @property
    def free_index(self) -> tuple[int, ...]:
        return tuple(ACTION_NAMES.index(n) for n in self.free_names)

    def bound(self, name: str) -> float:
        if name in TRANSLATION:
            return self.max_translation
        if name in ROTATION:
            return self.max_rotation
        return self.max_gripper_delta

    @property
    def free_bounds(self) -> np.ndarray:
        """[F] symmetric bound of each free dim."""
        return np.array([self.bound(n) for n in self.free_names], dtype=np.float32)

    def is_gripper(self) -> np.ndarray:
        """[F] True for the gripper dim among the free dims."""
        return np.array([n in GRIPPER for n in self.free_names])

    def initial_std(self, gripper_std: float) -> np.ndarray:
        """[F] CEM's starting std: each dim's bound (upstream `maxnorm`), `gripper_std` for the gripper."""
        return np.where(self.is_gripper(), gripper_std, self.free_bounds).astype(np.float32)

    # -- array transforms (any backend) -------------------------------------------------
    def constrain(self, free: Any, ops: Any, position: Any = None) -> Any:
        """Project sampled free dims [..., F] (sequences: [..., H, F]) into the bounds; with a workspace
        and the current TCP `position` [3], also keep every step's position inside the workspace."""
        bounds = ops.asarray(self.free_bounds, like=free)
        clipped = ops.clip(free, -bounds, bounds)
        if self.has_workspace and position is not None and any(n in TRANSLATION for n in self.free_names):
            clipped = self._inside_workspace(clipped, np.asarray(position, np.float64).reshape(3), ops)
        return clipped

    def _inside_workspace(self, free: Any, position: np.ndarray, ops: Any) -> Any:
        """Translations [..., H, F] whose cumulative TCP positions from `position` stay in the workspace
        (widened to contain `position`). Clipping positions per axis is non-expansive, so no step grows
        beyond the bounds already applied."""
        low = np.minimum(self.workspace_min, position)
        high = np.maximum(self.workspace_max, position)
        columns = [free[..., f] for f in range(free.shape[-1])]  # each [..., H]
        for f, name in enumerate(self.free_names):
            if name not in TRANSLATION:
                continue
            axis = TRANSLATION.index(name)
            steps, before = [], None
            for h in range(free.shape[-2]):
                start = float(position[axis]) if before is None else before
                after = ops.clip(start + columns[f][..., h], float(low[axis]), float(high[axis]))
                steps.append(after - start)
                before = after
            columns[f] = ops.stack(steps, axis=-1)
        return ops.stack(columns, axis=-1)

    def expand(self, free: Any, ops: Any) -> Any:
        """Free dims [..., F] -> full actions [..., 7] with frozen dims filled in."""
        frozen = dict(self.frozen)
        columns, f = [], 0
        for name in ACTION_NAMES:
            if name in frozen:
                columns.append(ops.zeros(free.shape[:-1], like=free) + frozen[name])
            else:
                columns.append(free[..., f])
                f += 1
        return ops.stack(columns, axis=-1)

    def holding_gripper(self, closedness: float) -> "ActionSpec":
        """This spec with the gripper held toward `closedness` (0 open .. 1 closed) instead of planned:
        dgripper frozen at +max_gripper_delta (closing) above `GRIPPER_CLOSED_ABOVE`, else at minus it.
        A grasped object stops the fingers well short of 1, so any clear closing counts as closed."""
        if not 0.0 <= float(closedness) <= 1.0:
            raise ValueError(f"gripper closedness must be in [0, 1] (0 open, 1 closed), got {closedness!r}")
        delta = self.max_gripper_delta if closedness > GRIPPER_CLOSED_ABOVE else -self.max_gripper_delta
        return dataclasses.replace(self, frozen={**dict(self.frozen), "dgripper": delta})

    def move_toward(self, state: Any, target: Any) -> np.ndarray:
        """The action [7] from `state` [7] toward `target` [7]'s pose within the bounds: the translation
        is scaled down as a whole (the move stays on the straight line), frozen dims keep their values,
        and a planned gripper is left as it is (opening it again could drop what it holds)."""
        action = np.asarray(action_between(np.asarray(state, np.float64), np.asarray(target, np.float64)),
                            np.float64)  # [7]
        action[pose.GRIPPER] = 0.0
        xyz = action[pose.POSITION]
        size = np.abs(xyz).max()  # the box's measure of a step
        if size > self.max_translation:
            action[pose.POSITION] = xyz * (self.max_translation / size)
        return self.clip_full(action)

    def clip_full(self, action: np.ndarray) -> np.ndarray:
        """Bound a full numpy action [..., 7] (frozen dims set to their values)."""
        action = np.array(action, dtype=np.float32)
        free = self.constrain(action[..., list(self.free_index)], NUMPY_OPS)
        return self.expand(free, NUMPY_OPS)

