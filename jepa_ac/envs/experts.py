"""Scripted experts for the Franka tasks, with action noise so collected data holds failures too.

    env = gym.make("jepa_ac/FrankaPickPlace-v0")
    expert = make_expert(env, noise=0.1, seed=0)
    obs, info = env.reset(seed=0); expert.reset()
    while not done:
        obs, reward, terminated, truncated, info = env.step(expert.act(obs))

Experts read privileged state (object poses, goals) from `env.unwrapped` and the measured TCP
state from the observation, choose a target TCP pose with a small state machine, and emit the
DROID action that moves toward it (`jepa_ac.model.pose.action_between`, clipped to a step size).
`noise` adds Gaussian noise with std `noise * bound` per action dim (bound = the action space's
high), so `noise=0.1` perturbs translation by ~1 cm per step.
"""

from __future__ import annotations

import inspect

import numpy as np

from jepa_ac.envs import scene
from jepa_ac.model.pose import GRIPPER, POSITION, ROTATION, action_between, euler_xyz_to_matrix, matrix_to_euler_xyz

SAFE_Z = 0.15  # TCP height for moving above objects
LOW_Z = 0.055  # TCP height for pushing / grasping (fingertips ~5 mm above the table)
STEP = 0.08  # largest translation per action the experts use (the action bound is 0.1)
PUSH_STEP = 0.035  # slower while pushing so the block stays in front of the fingers
MAX_TURN = 0.25  # rad per action


def _wrap(angle: float, period: float) -> float:
    """Angle wrapped into [-period / 2, period / 2)."""
    return (angle + period / 2) % period - period / 2


class ScriptedExpert:
    """Base: turns a target (xyz, yaw, closedness) into a bounded DROID action, plus noise."""

    def __init__(self, env, noise: float = 0.0, seed: int | None = None):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1] (fraction of the action bound), got {noise!r}")
        self.env = env.unwrapped
        if getattr(self.env, "task_name", None) != self.task_name:
            raise ValueError(f"{type(self).__name__} drives the {self.task_name!r} task, "
                             f"got an env with task_name={getattr(self.env, 'task_name', None)!r}")
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)
        self.bound = np.asarray(env.action_space.high, dtype=np.float64)
        self.reset()

    task_name = ""

    def reset(self) -> None:
        self.phase = "start"
        self.phase_steps = 0

    def act(self, obs: dict) -> np.ndarray:
        """[7] float32 action for the current observation."""
        state = np.asarray(obs["state"], dtype=np.float64)
        pos, yaw, grip, step = self.target(state)
        action = self.action_toward(state, pos, yaw, grip, step)
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, 7) * self.bound
        self.phase_steps += 1
        return np.clip(action, -self.bound, self.bound).astype(np.float32)

    def target(self, state: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """(TCP position [3], gripper yaw about the base z axis, closedness, max step) for this step."""
        raise NotImplementedError

    def set_phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase, self.phase_steps = phase, 0

    @staticmethod
    def action_toward(state: np.ndarray, pos: np.ndarray, yaw: float, grip: float, step: float) -> np.ndarray:
        rot = euler_xyz_to_matrix(np.array([0.0, 0.0, yaw])) @ euler_xyz_to_matrix(
            np.array([np.pi, 0.0, 0.0]))  # top-down grasp turned by `yaw`
        target = np.concatenate([pos, matrix_to_euler_xyz(rot), [grip]])
        action = action_between(state, target)
        norm = np.max(np.abs(action[POSITION]))
        if norm > step:
            action[POSITION] *= step / norm
        action[ROTATION] = np.clip(action[ROTATION], -MAX_TURN, MAX_TURN)
        return action

    @staticmethod
    def yaw_of(state: np.ndarray) -> float:
        """The gripper's yaw about base z relative to the top-down home orientation."""
        rot = euler_xyz_to_matrix(state[ROTATION]) @ euler_xyz_to_matrix(np.array([np.pi, 0.0, 0.0])).T
        return float(np.arctan2(rot[1, 0], rot[0, 0]))


class ReachExpert(ScriptedExpert):
    task_name = "reach"

    def target(self, state):
        return self.env.goal_pos.copy(), 0.0, 0.0, STEP


class PushExpert(ScriptedExpert):
    """Get behind the block on the block->target line (above it, then down), then push along it."""

    task_name = "push"
    CONTACT = scene.PUSH_BLOCK_HALF + 0.022  # TCP distance from block centre when touching it
    PRE_PUSH_GAP = 0.03  # the pre-push point is this far behind contact

    @classmethod
    def pre_push_point(cls, block_xy: np.ndarray, direction: np.ndarray) -> np.ndarray:
        """[2] where the TCP goes down before pushing the block along the unit `direction`."""
        return block_xy - direction * (cls.CONTACT + cls.PRE_PUSH_GAP)
    ALIGN_TOL = 0.02

    def target(self, state):
        env = self.env
        block, _ = env.object_pose("block")
        to_target = env.target_pos - block[:2]
        dist = float(np.linalg.norm(to_target))
        _, yaw = env.push_pose(block[:2], env.target_pos)
        tcp = state[POSITION]
        if dist < 0.012 or (self.phase == "done" and dist < 0.03):  # done: back off to the goal pose
            self.set_phase("done")
            if tcp[2] < LOW_Z + 0.03:  # first straight up, clear of the block
                return np.array([*tcp[:2], env.GOAL_TCP_Z]), self.yaw_of(state), 1.0, STEP
            return env.goal_tcp(), 0.0, 1.0, STEP  # the goal image's arm pose (home yaw)
        u = to_target / dist
        rel = tcp[:2] - block[:2]
        lateral = abs(rel[0] * u[1] - rel[1] * u[0])
        along = float(rel @ u)  # negative: the TCP is behind the block
        aligned = (lateral < self.ALIGN_TOL and -self.CONTACT - 0.05 < along < -self.CONTACT + 0.02
                   and tcp[2] < LOW_Z + 0.015)
        pre = self.pre_push_point(block[:2], u)
        yaw_ok = abs(_wrap(self.yaw_of(state) - yaw, np.pi)) < 0.08

        phase = self.phase
        if phase in ("start", "done"):
            phase = "lift"
        if phase == "push" and not aligned:
            phase = "lift"  # lost the block: go up and come around again
        if phase == "descend" and tcp[2] < LOW_Z + 0.01:
            phase = "push" if aligned else "lift"
        if phase == "lift" and tcp[2] > SAFE_Z - 0.02:
            phase = "approach"
        if phase == "approach" and np.linalg.norm(tcp[:2] - pre) < 0.012 and yaw_ok:
            phase = "descend"
        self.set_phase(phase)

        if phase == "lift":
            return np.array([*tcp[:2], SAFE_Z]), yaw, 1.0, STEP
        if phase == "approach":
            return np.array([*pre, SAFE_Z]), yaw, 1.0, STEP
        if phase == "descend":
            return np.array([*pre, LOW_Z]), yaw, 1.0, STEP
        push_to = block[:2] - u * self.CONTACT + u * min(PUSH_STEP, dist)
        return np.array([*push_to, LOW_Z]), yaw, 1.0, PUSH_STEP


class PickPlaceExpert(ScriptedExpert):
    """Above the cube, down, close, lift, over the bowl, lower, open, retreat.

    `grasp_offset` (m): the first approach aims at a point drawn uniformly from a disc of that radius
    around the cube, so the data holds grasps that land beside the cube (and knock it) and the
    approach again from above that follows a miss; 0 aims at the cube. `turn_to_cube`: turn the hand to
    the cube's yaw for the grasp (the expert's default); False keeps the home orientation throughout,
    as the planner does with its rotation held."""

    task_name = "pickplace"
    CARRY_Z = 0.2  # = FrankaPickPlaceEnv.GOAL_TCP_Z
    RELEASE_Z = 0.11

    def __init__(self, env, noise: float = 0.0, seed: int | None = None, grasp_offset: float = 0.0,
                 turn_to_cube: bool = True):
        if not 0.0 <= grasp_offset <= 0.2:
            raise ValueError(f"grasp_offset must be in [0, 0.2] m, got {grasp_offset!r}")
        self.grasp_offset, self.turn_to_cube = float(grasp_offset), bool(turn_to_cube)
        super().__init__(env, noise, seed)

    def reset(self) -> None:
        super().reset()
        self.aim_offset = np.zeros(2)  # [2] of the first approach
        if self.grasp_offset > 0:  # draws only then: the default expert's noise stays as it was
            radius, angle = self.grasp_offset * np.sqrt(self.rng.uniform()), self.rng.uniform(0.0, 2 * np.pi)
            self.aim_offset = radius * np.array([np.cos(angle), np.sin(angle)])

    def target(self, state):
        env = self.env
        cube, cube_yaw = env.object_pose("cube")
        bowl = env.bowl_pos
        tcp, grip = state[POSITION], state[GRIPPER]
        grasp_yaw = _wrap(cube_yaw, np.pi / 2) if self.turn_to_cube else 0.0  # the cube looks the same every quarter turn
        held = cube[2] > scene.PICK_CUBE_HALF + 0.015 and np.linalg.norm(cube[:2] - tcp[:2]) < 0.03
        phase = self.phase
        if phase in ("lift", "transport", "lower") and not held and self.phase_steps > 2:
            phase = "above"  # dropped it or missed the grasp: start over, aiming at the cube
            self.aim_offset = np.zeros(2)
        aim = cube[:2] + self.aim_offset
        xy_err = float(np.linalg.norm(tcp[:2] - aim))
        if phase == "start":
            phase = "above"
        if phase == "above" and xy_err < 0.01 and abs(tcp[2] - SAFE_Z) < 0.03 and abs(
                _wrap(self.yaw_of(state) - grasp_yaw, np.pi / 2)) < 0.06:
            phase = "descend"
        if phase == "descend" and abs(tcp[2] - LOW_Z) < 0.008 and xy_err < 0.012:
            phase = "close"
        if phase == "close" and self.phase_steps >= 2 and grip > 0.2:
            phase = "lift"
        if phase == "lift" and tcp[2] > self.CARRY_Z - 0.03:
            phase = "transport"
        if phase == "transport" and np.linalg.norm(tcp[:2] - bowl[:2]) < 0.015:
            phase = "lower"
        if phase == "lower" and tcp[2] < self.RELEASE_Z + 0.015:
            phase = "release"
        if phase == "release" and self.phase_steps >= 2:
            phase = "retreat"
        self.set_phase(phase)

        yaw = grasp_yaw if phase in ("above", "descend", "close", "lift") else self.yaw_of(state)
        if phase == "above":
            if tcp[2] < SAFE_Z - 0.03 and xy_err > 0.02:  # low and off the cube: straight up first
                return np.array([*tcp[:2], SAFE_Z]), yaw, 0.0, STEP
            return np.array([*aim, SAFE_Z]), yaw, 0.0, STEP
        if phase == "descend":
            return np.array([*aim, LOW_Z]), yaw, 0.0, 0.05
        if phase == "close":
            return np.array([*aim, LOW_Z]), yaw, 1.0, 0.02
        if phase == "lift":
            return np.array([*tcp[:2], self.CARRY_Z]), yaw, 1.0, 0.06
        if phase == "transport":
            return np.array([*bowl[:2], self.CARRY_Z]), yaw, 1.0, STEP
        if phase == "lower":
            return np.array([*bowl[:2], self.RELEASE_Z]), yaw, 1.0, 0.05
        if phase == "release":
            return np.array([*bowl[:2], self.RELEASE_Z]), yaw, 0.0, 0.02
        return env.goal_tcp(), 0.0, 0.0, STEP  # retreat to the goal image's arm pose (home yaw)


EXPERTS = {cls.task_name: cls for cls in (ReachExpert, PushExpert, PickPlaceExpert)}


def make_expert(env, noise: float = 0.0, seed: int | None = None, **options) -> ScriptedExpert:
    """The scripted expert for `env`'s task (`env.unwrapped.task_name`); `options` are its own
    (pick-and-place: `grasp_offset`, `turn_to_cube`)."""
    task = getattr(env.unwrapped, "task_name", None)
    if task not in EXPERTS:
        raise ValueError(f"no scripted expert for task {task!r}; experts exist for {sorted(EXPERTS)}")
    expert = EXPERTS[task]
    known = [p for p in inspect.signature(expert.__init__).parameters if p not in ("self", "env", "noise", "seed")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"the {task} expert takes no option {unknown}; its options: {known or 'none'}")
    return expert(env, noise=noise, seed=seed, **options)
