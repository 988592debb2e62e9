"""DROID / V-JEPA 2-AC pose conventions, vectorised over any leading batch shape.

State  `[x, y, z, roll, pitch, yaw, gripper]`: position in the robot base frame, extrinsic xyz
Euler angles in radians (scipy `Rotation.from_euler("xyz", ...)`), gripper closedness in [0, 1].
Action `[dx, dy, dz, droll, dpitch, dyaw, dgripper]`: xyz difference, the rotation
`R_next @ R_prev^T` as xyz Euler angles, gripper difference.

Every function works on numpy, torch or MLX arrays of shape [..., 7] (no per-sample loop).
"""

from __future__ import annotations

from typing import Any

from jepa_ac.array_ops import ops_for

STATE_DIM = 7
STATE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "dgripper")


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
    _check_last_dim(state, "state")
    _check_last_dim(next_state, "next_state")
    ops = ops_for(state)
    rot = euler_xyz_to_matrix(state[..., 3:6])
    rot_next = euler_xyz_to_matrix(next_state[..., 3:6])
    delta_rot = rot_next @ rot.swapaxes(-1, -2)
    return ops.concat(
        [
            next_state[..., :3] - state[..., :3],
            matrix_to_euler_xyz(delta_rot),
            next_state[..., 6:7] - state[..., 6:7],
        ],
        axis=-1,
    )


def apply_action(state: Any, action: Any) -> Any:
    """The state reached from `state` by `action` (gripper clipped to [0, 1]): [..., 7] -> [..., 7]."""
    _check_last_dim(state, "state")
    _check_last_dim(action, "action")
    ops = ops_for(state)
    rot = euler_xyz_to_matrix(state[..., 3:6])
    delta_rot = euler_xyz_to_matrix(action[..., 3:6])
    return ops.concat(
        [
            state[..., :3] + action[..., :3],
            matrix_to_euler_xyz(delta_rot @ rot),
            ops.clip(state[..., 6:7] + action[..., 6:7], 0.0, 1.0),
        ],
        axis=-1,
    )


def actions_from_states(states: Any) -> Any:
    """[..., T, 7] consecutive states -> [..., T-1, 7] actions between them."""
    return action_between(states[..., :-1, :], states[..., 1:, :])



def _check_last_dim(x: Any, name: str) -> None:
    if x.shape[-1] != STATE_DIM:
        raise ValueError(f"{name} must have shape [..., {STATE_DIM}], got {list(x.shape)}")
