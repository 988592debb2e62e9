"""End-effector control for the simulated Franka: damped-least-squares differential IK.

Each control step gets a target TCP pose. The controller moves a Cartesian setpoint from the
current pose to the target along a minimum-jerk profile that arrives `settle_fraction` of the
way through the step, and at `ik_hz` turns the error between setpoint and measured pose into
joint position targets `q + dq`, `dq = J^+ e` with `J^+ = J^T (J J^T + damping^2 I)^-1`, plus a
null-space pull toward the home posture. A feedforward term `(kv / kp) J^+ v` (v: setpoint
velocity) turns each PD servo's damping into damping of the velocity error, so the arm does not
lag the setpoint. The joint servos (stiff PD position actuators with gravity compensation, see
`scene.py`) track those targets during the physics substeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np


def so3_log(mat: np.ndarray) -> np.ndarray:
    """[3, 3] rotation -> [3] rotation vector (axis * angle, angle in [0, pi])."""
    cos = np.clip((np.trace(mat) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    skew = np.array([mat[2, 1] - mat[1, 2], mat[0, 2] - mat[2, 0], mat[1, 0] - mat[0, 1]])
    if angle < 1e-6:
        return skew / 2.0
    if angle > np.pi - 1e-4:
        # near pi the skew part vanishes; take the axis from the symmetric part
        diag = np.clip((np.diag(mat) + 1.0) / 2.0, 0.0, None)
        axis = np.sqrt(diag)
        k = int(np.argmax(axis))
        for j in range(3):
            if j != k:
                axis[j] = np.copysign(axis[j], mat[k, j] + mat[j, k])
        return axis / np.linalg.norm(axis) * angle
    return skew * (angle / (2.0 * np.sin(angle)))


def so3_exp(vec: np.ndarray) -> np.ndarray:
    """[3] rotation vector -> [3, 3] rotation (Rodrigues)."""
    angle = float(np.linalg.norm(vec))
    if angle < 1e-12:
        return np.eye(3)
    k = vec / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


def min_jerk(s: float) -> tuple[float, float]:
    """Minimum-jerk time scaling on [0, 1] and its derivative d/ds (zero velocity at both ends)."""
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s), 30.0 * s * s * (1.0 - s) ** 2


@dataclass(frozen=True)
class IKConfig:
    """Differential IK gains. `damping` regularises J J^T near singularities (m / rad units)."""

    damping: float = 0.05
    nullspace_gain: float = 0.3
    ik_hz: float = 100.0
    settle_fraction: float = 0.7
    max_joint_step: float = 0.3  # rad: largest q_target - q one IK tick may command

    def __post_init__(self) -> None:
        for name in ("damping", "ik_hz", "max_joint_step"):
            if not getattr(self, name) > 0:
                raise ValueError(f"IKConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.nullspace_gain <= 1.0:
            raise ValueError(f"IKConfig.nullspace_gain must be in [0, 1], got {self.nullspace_gain!r}")
        if not 0.0 < self.settle_fraction <= 1.0:
            raise ValueError(f"IKConfig.settle_fraction must be in (0, 1], got {self.settle_fraction!r}")


class DiffIKController:
    """Tracks TCP pose targets on a MuJoCo arm whose joints are driven by position actuators."""

    def __init__(self, model: mujoco.MjModel, site: str, joints: tuple[str, ...], actuators: tuple[str, ...],
                 home_qpos: np.ndarray, config: IKConfig = IKConfig()):
        self.model, self.config = model, config
        self.site_id = model.site(site).id
        self.qpos_idx = np.array([model.jnt_qposadr[model.joint(j).id] for j in joints])
        self.dof_idx = np.array([model.jnt_dofadr[model.joint(j).id] for j in joints])
        self.act_idx = np.array([model.actuator(a).id for a in actuators])
        self.ctrl_low = model.actuator_ctrlrange[self.act_idx, 0].copy()
        self.ctrl_high = model.actuator_ctrlrange[self.act_idx, 1].copy()
        self.q_low = model.jnt_range[[model.joint(j).id for j in joints], 0].copy()
        self.q_high = model.jnt_range[[model.joint(j).id for j in joints], 1].copy()
        self.home_qpos = np.asarray(home_qpos, dtype=np.float64)
        # position actuators: force = kp * (ctrl - q) - kv * qdot, biasprm = [0, -kp, -kv]
        self.kv_over_kp = model.actuator_biasprm[self.act_idx, 2] / model.actuator_biasprm[self.act_idx, 1]
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    # -- kinematics -------------------------------------------------------------------------
    def site_pose(self, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """Current TCP (position [3], rotation [3, 3]) from `data` (after mj_forward / mj_step)."""
        return data.site_xpos[self.site_id].copy(), data.site_xmat[self.site_id].reshape(3, 3).copy()

    def _delta_q(self, data: mujoco.MjData, pos: np.ndarray, rot: np.ndarray, nullspace_gain: float,
                 twist: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Joint step [7] toward (pos, rot) at the current configuration, and J^+ twist [7] (0 if None)."""
        cur_pos, cur_rot = self.site_pose(data)
        err = np.concatenate([pos - cur_pos, so3_log(rot @ cur_rot.T)])  # [6] world-frame pose error
        mujoco.mj_jacSite(self.model, data, self._jacp, self._jacr, self.site_id)
        jac = np.concatenate([self._jacp[:, self.dof_idx], self._jacr[:, self.dof_idx]])  # [6, 7]
        jjt = jac @ jac.T
        rhs = np.stack([err, np.zeros(6) if twist is None else twist], axis=1)  # [6, 2]
        sol = jac.T @ np.linalg.solve(jjt + (self.config.damping**2) * np.eye(6), rhs)  # [7, 2]: J^+ rhs
        dq = sol[:, 0]
        if nullspace_gain > 0:
            # projector with the (nearly) undamped pseudo-inverse; the damped one leaks into the
            # task and leaves a steady TCP offset of a few mm
            pull = nullspace_gain * (self.home_qpos - data.qpos[self.qpos_idx])
            dq = dq + pull - jac.T @ np.linalg.solve(jjt + 1e-9 * np.eye(6), jac @ pull)
        return np.clip(dq, -self.config.max_joint_step, self.config.max_joint_step), sol[:, 1]

    def solve_ik(self, data: mujoco.MjData, pos: np.ndarray, rot: np.ndarray, iterations: int = 200,
                 tol: float = 1e-4) -> float:
        """Move `data.qpos` (kinematics only, no dynamics) to reach (pos, rot); returns the final error norm."""
        err = np.inf
        for _ in range(iterations):
            mujoco.mj_kinematics(self.model, data)
            mujoco.mj_comPos(self.model, data)
            cur_pos, cur_rot = self.site_pose(data)
            err = float(np.linalg.norm(np.concatenate([pos - cur_pos, so3_log(rot @ cur_rot.T)])))
            if err < tol:
                break
            q = data.qpos[self.qpos_idx] + self._delta_q(data, pos, rot, nullspace_gain=0.0)[0]
            data.qpos[self.qpos_idx] = np.clip(q, self.q_low, self.q_high)
        mujoco.mj_kinematics(self.model, data)
        return err

    # -- control ----------------------------------------------------------------------------
    def run(self, data: mujoco.MjData, target_pos: np.ndarray, target_rot: np.ndarray, duration: float,
            on_substep=None) -> None:
        """Step physics for `duration` seconds while tracking the target TCP pose.

        `on_substep(data)` (optional) runs before each physics step (e.g. the gripper servo).
        """
        model, dt = self.model, self.model.opt.timestep
        n_sub = max(1, int(round(duration / dt)))
        ik_every = max(1, int(round(1.0 / (self.config.ik_hz * dt))))
        start_pos, start_rot = self.site_pose(data)
        rotvec = so3_log(target_rot @ start_rot.T)
        settle = self.config.settle_fraction * n_sub  # substeps until the setpoint arrives
        motion = np.concatenate([target_pos - start_pos, rotvec])  # [6]
        for i in range(n_sub):
            if i % ik_every == 0:
                s, ds = min_jerk((i + ik_every) / settle)  # setpoint at the end of this IK tick
                pos = start_pos + s * (target_pos - start_pos)
                rot = so3_exp(s * rotvec) @ start_rot
                twist = motion * (ds / (settle * dt))  # [6] setpoint velocity
                dq, qdot_ff = self._delta_q(data, pos, rot, self.config.nullspace_gain, twist)
                q_cmd = data.qpos[self.qpos_idx] + dq + self.kv_over_kp * qdot_ff
                data.ctrl[self.act_idx] = np.clip(q_cmd, self.ctrl_low, self.ctrl_high)
            if on_substep is not None:
                on_substep(data)
            mujoco.mj_step(model, data)
