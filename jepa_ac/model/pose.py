"""DROID / V-JEPA 2-AC pose conventions, vectorised over any leading batch shape.

State  `[x, y, z, roll, pitch, yaw, gripper]`: position in the robot base frame, extrinsic xyz
Euler angles in radians (scipy `Rotation.from_euler("xyz", ...)`), gripper closedness in [0, 1].
Action `[dx, dy, dz, droll, dpitch, dyaw, dgripper]`: xyz difference, the rotation
`R_next @ R_prev^T` as xyz Euler angles, gripper difference.

Every function works on numpy, torch or MLX arrays of shape [..., 7] (no per-sample loop).

This module owns the layout: index the last axis with its names instead of raw numbers, and check
shapes with `check_shape` (states' values with `check_states`, actions' with `check_action`):

    state[..., POSITION]    # [..., 3] x, y, z          (actions: dx, dy, dz)
    state[..., ROTATION]    # [..., 3] roll, pitch, yaw (actions: droll, dpitch, dyaw)
    state[..., CARTESIAN]   # [..., 6] both: DROID's `cartesian_position`
    state[..., GRIPPER]     # [...]    closedness       (actions: dgripper)
    state[..., GRIPPER_COLUMN]  # [..., 1] the same, kept as a column to concatenate
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jepa_ac.model.array_ops import ops_for

STATE_DIM = 7
STATE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "dgripper")
POSITION = slice(0, 3)  # x, y, z (m, robot base frame) | dx, dy, dz
ROTATION = slice(3, 6)  # roll, pitch, yaw (rad, extrinsic xyz Euler) | droll, dpitch, dyaw
CARTESIAN = slice(0, 6)  # POSITION + ROTATION, DROID's `cartesian_position`
GRIPPER = 6  # closedness, 0 open .. 1 closed | dgripper
GRIPPER_COLUMN = slice(6, 7)  # GRIPPER keeping the axis: [..., 7] -> [..., 1]


@dataclasses.dataclass(frozen=True)
class StateRanges:
    """The physically plausible range of a reported 7-D state; anything outside is a unit or wiring
    error (a gripper width in mm, angles in degrees, a position in mm), not a state to plan from.

    Deliberately wide: a table-top arm's positions lie within metres of its base; Euler angles from
    any convention lie within [-2 pi, 2 pi]; closedness is in [0, 1] up to sensor noise. Override
    for an unusual robot (`StateRanges(max_position=10.0)`).
    """

    max_position: float = 3.0  # m, |x|, |y|, |z| in the robot base frame
    max_angle: float = 2 * math.pi  # rad, |roll|, |pitch|, |yaw|
    gripper_min: float = -0.05  # closedness; 0 open, 1 closed, a little noise allowed
    gripper_max: float = 1.05

    def __post_init__(self) -> None:
        for name in ("max_position", "max_angle"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"StateRanges.{name} must be a positive finite number, got {value!r}")
        if not (math.isfinite(self.gripper_min) and math.isfinite(self.gripper_max)
                and self.gripper_min < self.gripper_max):
            raise ValueError(f"StateRanges needs finite gripper_min < gripper_max, got {self.gripper_min}, {self.gripper_max}")

    def describe(self) -> str:
        return (f"|x|, |y|, |z| <= {self.max_position} m, |roll|, |pitch|, |yaw| <= {self.max_angle:.3f} rad, "
                f"gripper in [{self.gripper_min}, {self.gripper_max}]")


DEFAULT_STATE_RANGES = StateRanges()


def check_shape(x: Any, name: str = "state", *, batch: bool = False, names: tuple[str, ...] = STATE_NAMES) -> Any:
    """`x` (any array) unchanged if its shape is [7] (with `batch`: [..., 7]), else a ValueError naming
    `name`, the expected shape and its fields (`names`: STATE_NAMES or ACTION_NAMES) and the shape got."""
    shape = list(x.shape) if hasattr(x, "shape") else list(np.shape(x))
    if shape[-1:] != [STATE_DIM] or (len(shape) != 1 and not batch):
        expected = f"[..., {STATE_DIM}]" if batch else f"[{STATE_DIM}]"
        raise ValueError(f"{name} must have shape {expected} = [{', '.join(names)}], got {shape}")
    return x


def check_action(action: Any, name: str = "action") -> np.ndarray:
    """`action` as float64 numpy [7] if it has that shape and is finite, else a ValueError naming `name`
    and the first non-finite field."""
    arr = check_shape(np.asarray(action, dtype=np.float64), name, names=ACTION_NAMES)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name}: {ACTION_NAMES[bad[0]]} = {float(arr[bad[0]])!r} is not finite, got {arr.tolist()}")
    return arr


def check_states(states: Any, source: str = "state", ranges: StateRanges = DEFAULT_STATE_RANGES) -> np.ndarray:
    """`states` [..., 7] as float64 numpy if every entry is finite and inside `ranges`, else a
    ValueError naming `source`, the first bad row and field, and the expected range."""
    arr = check_shape(np.asarray(states, dtype=np.float64), source, batch=True)
    flat = arr.reshape(-1, STATE_DIM)  # [rows, 7]
    limit_lo = np.array([-ranges.max_position] * 3 + [-ranges.max_angle] * 3 + [ranges.gripper_min])
    limit_hi = np.array([ranges.max_position] * 3 + [ranges.max_angle] * 3 + [ranges.gripper_max])
    finite = np.isfinite(flat)
    inside = finite & (flat >= limit_lo) & (flat <= limit_hi)
    if not inside.all():
        row, col = np.argwhere(~inside)[0]
        where = f" (row {row})" if flat.shape[0] > 1 else ""
        what = "is not finite" if not finite[row, col] else "is outside its physical range"
        raise ValueError(f"{source}{where}: {STATE_NAMES[col]} = {float(flat[row, col])!r} {what}; "
                         f"expected {ranges.describe()}")
    return arr


def euler_xyz_to_matrix(angles: Any) -> Any:
    """[..., 3] extrinsic xyz Euler angles -> [..., 3, 3] rotation matrices (Rz @ Ry @ Rx)."""
    ops = ops_for(angles)
    sa, sb, sc = ops.sin(angles[..., 0]), ops.sin(angles[..., 1]), ops.sin(angles[..., 2])
    ca, cb, cc = ops.cos(angles[..., 0]), ops.cos(angles[..., 1]), ops.cos(angles[..., 2])
    rows = [
        [cb * cc, sa * sb * cc - ca * sc, ca * sb * cc + sa * sc],
        [cb * sc, sa * sb * sc + ca * cc, ca * sb * sc - sa * cc],
        [-sb, sa * cb, ca * cb],
    ]
    return ops.stack([ops.stack(row, axis=-1) for row in rows], axis=-2)


def matrix_to_euler_xyz(matrix: Any) -> Any:
    """[..., 3, 3] rotation matrices -> [..., 3] extrinsic xyz Euler angles (pitch in [-pi/2, pi/2])."""
    ops = ops_for(matrix)
    pitch = -ops.arcsin(ops.clip(matrix[..., 2, 0], -1.0, 1.0))
    roll = ops.arctan2(matrix[..., 2, 1], matrix[..., 2, 2])
    yaw = ops.arctan2(matrix[..., 1, 0], matrix[..., 0, 0])
    return ops.stack([roll, pitch, yaw], axis=-1)


def action_between(state: Any, next_state: Any) -> Any:
    """The action that takes `state` to `next_state`: [..., 7], [..., 7] -> [..., 7]."""
    check_shape(state, "state", batch=True)
    check_shape(next_state, "next_state", batch=True)
    ops = ops_for(state)
    rot = euler_xyz_to_matrix(state[..., ROTATION])
    rot_next = euler_xyz_to_matrix(next_state[..., ROTATION])
    delta_rot = rot_next @ rot.swapaxes(-1, -2)
    return ops.concat(
        [
            next_state[..., POSITION] - state[..., POSITION],
            matrix_to_euler_xyz(delta_rot),
            next_state[..., GRIPPER_COLUMN] - state[..., GRIPPER_COLUMN],
        ],
        axis=-1,
    )


def apply_action(state: Any, action: Any) -> Any:
    """The state reached from `state` by `action` (gripper clipped to [0, 1]): [..., 7] -> [..., 7]."""
    check_shape(state, "state", batch=True)
    check_shape(action, "action", batch=True, names=ACTION_NAMES)
    ops = ops_for(state)
    rot = euler_xyz_to_matrix(state[..., ROTATION])
    delta_rot = euler_xyz_to_matrix(action[..., ROTATION])
    return ops.concat(
        [
            state[..., POSITION] + action[..., POSITION],
            matrix_to_euler_xyz(delta_rot @ rot),
            ops.clip(state[..., GRIPPER_COLUMN] + action[..., GRIPPER_COLUMN], 0.0, 1.0),
        ],
        axis=-1,
    )


def actions_from_states(states: Any) -> Any:
    """[..., T, 7] consecutive states -> [..., T-1, 7] actions between them."""
    return action_between(states[..., :-1, :], states[..., 1:, :])
