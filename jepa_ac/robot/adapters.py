"""`Robot` adapters: gymnasium envs (ours, or any through an `EnvAdapter`), and DROID's `RobotEnv` (real Franka).

    robot = GymRobot(gymnasium.make("jepa_ac/FrankaReach-v0", image_size=64))
    robot = GymRobot(adapter.make_env(), adapter=adapter)     # any env: jepa_ac.robot.env_adapter
    robot.reset(seed=0)
    frame, state = robot.get_observation()

    from droid.robot_env import RobotEnv
    robot = DroidRobot(RobotEnv(action_space="cartesian_position"), camera_id="24259877_left")

Both take our 7-D DROID delta `[dx, dy, dz, droll, dpitch, dyaw, dgripper]` (after the safety
layer) and report the state `[x, y, z, roll, pitch, yaw, gripper]`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from jepa_ac.model.pose import (CARTESIAN, DEFAULT_STATE_RANGES, GRIPPER, POSITION, ROTATION, StateRanges,
                                action_between, apply_action, check_action, check_states)

logger = logging.getLogger(__name__)


class GymRobot:
    """A gymnasium env as a `Robot`: ours (`{"image", "state"}` observations, e.g. `jepa_ac/FrankaReach-v0`),
    or any env through an `EnvAdapter` (`jepa_ac.robot.env_adapter`: its hooks read frames, states,
    success and goal images, and turn each planned move into the env's own actions).

    Call `reset(seed=...)` first. After each action, `done`, `success`, `reward` and `info` hold
    what the env reported. Actions outside the env's action space are clipped to it (logged). A state
    outside `state_ranges` (`jepa_ac.model.pose.StateRanges`) raises ValueError.
    """

    def __init__(self, env: Any, state_ranges: StateRanges = DEFAULT_STATE_RANGES, adapter: Any = None) -> None:
        self.env = env
        self.state_ranges = state_ranges
        self.adapter = adapter
        self._obs: Any = None
        self._reset_obs: Any = None
        self.done = False
        self.success = False
        self.reward = 0.0
        self.info: dict[str, Any] = {}
        self.last_commands: list[np.ndarray] = []  # the env actions the last planned action was sent as (adapter)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        self._obs, self.info = self.env.reset(seed=seed, options=options)
        self._reset_obs = self._obs
        self.done, self.success, self.reward = False, self._success(), 0.0
        return self.get_observation()

    def _success(self) -> bool:
        if self.adapter is not None:
            return self.adapter.success(self._obs, self.info, self.env)
        return bool(self.info.get("success", False))

    def get_observation(self) -> tuple[np.ndarray, np.ndarray]:
        """(frame, state); ValueError if the env's state is not finite or outside its physical range."""
        if self._obs is None:
            raise RuntimeError("GymRobot: call reset() before get_observation()")
        if self.adapter is not None:
            frame, state = self.adapter.observe(self._obs, self.info, self.env)
        else:
            frame, state = self._obs["image"], self._obs["state"]
        state = check_states(state, "GymRobot: env state", self.state_ranges)
        return np.array(frame, dtype=np.uint8), state.astype(np.float32)

    def apply_action(self, action: np.ndarray) -> None:
        if self._obs is None:
            raise RuntimeError("GymRobot: call reset() before apply_action()")
        if self.adapter is not None:
            self._obs, self.reward, terminated, truncated, self.info, self.last_commands = self.adapter.step(
                self.env, check_action(action), self._obs)
            self.success = self._success()
            self.done = terminated or truncated
            return
        space = self.env.action_space
        action = check_action(action).astype(space.dtype)
        if hasattr(space, "low") and not space.contains(action):
            clipped = np.clip(action, space.low, space.high).astype(space.dtype)
            logger.warning("GymRobot: action %s outside the env's action space, clipped to %s", action, clipped)
            action = clipped
        self._obs, reward, terminated, truncated, self.info = self.env.step(action)
        self.reward = float(reward)
        self.success = bool(self.info.get("success", False))
        self.done = bool(terminated or truncated)

    def goal_image(self) -> np.ndarray:
        """The env's goal image (uint8 [H, W, 3]) rendered from the observation camera."""
        if self.adapter is not None:
            return self.subgoal_images()[-1]
        return np.asarray(self.env.unwrapped.goal_image(), dtype=np.uint8)

    def subgoal_images(self) -> list[np.ndarray]:
        """The env's sub-goal images, ending with the goal image (uint8 [H, W, 3] each)."""
        if self.adapter is not None:
            if self._reset_obs is None:
                raise RuntimeError("GymRobot: call reset() before asking for the goal images")
            return self.adapter.goals(self._reset_obs, self.env)
        return [np.asarray(g, dtype=np.uint8) for g in self.env.unwrapped.subgoal_images()]

    def new_subgoal_round(self) -> bool:
        """Ask the env for a new round of way-points from the current scene (`FrankaEnv.new_subgoal_round`);
        False for an env without them (or behind an adapter): its goal images stay as they were."""
        if self.adapter is not None:
            return False
        new_round = getattr(self.env.unwrapped, "new_subgoal_round", None)
        return bool(new_round()) if new_round is not None else False

    def goal_grippers(self, subgoals: bool) -> list[float | None]:
        """The gripper closedness each goal image shows (the sub-goals' then the goal's, or the goal's);
        None (planned) for an env behind an adapter."""
        if self.adapter is not None:
            return [None] * (len(self.subgoal_images()) if subgoals else 1)
        env = self.env.unwrapped
        states = env.subgoal_states() if subgoals else env.goal_state()[None]  # [K, 7]
        return [float(g) for g in states[:, GRIPPER]]

    def stop(self) -> None:
        """Nothing moves between steps in simulation; kept so the loop can call it on any robot."""


# DROID's RobotIKSolver scales normalised velocity commands in [-1, 1] by these per-step deltas
# (droid/robot_ik/robot_ik_solver.py: max_lin_delta, max_rot_delta, max_gripper_delta).
DROID_MAX_LIN_DELTA = 0.075  # m per control step
DROID_MAX_ROT_DELTA = 0.15  # rad per control step
DROID_MAX_GRIPPER_DELTA = 0.25  # closedness per control step
DROID_CONTROL_HZ = 15.0
DROID_ACTION_SPACES = ("cartesian_position", "cartesian_velocity")


class DroidRobot:
    """DROID's `droid.robot_env.RobotEnv` (duck-typed) as a `Robot`.

    Observation: `env.get_observation()["image"][camera_id]` (ZED images are BGRA; `bgr=True`
    drops alpha and reorders to RGB), state from `robot_state["cartesian_position"]` (xyz +
    extrinsic xyz Euler, DROID's convention and ours) and `robot_state["gripper_position"]`.

    Action: our delta is turned into the absolute target `apply_action(observed_state, delta)` —
    the pose the planner and the safety layer reasoned about — and DROID is commanded towards it
    for `steps_per_action` control steps at `control_hz` (V-JEPA 2-AC plans at 4 Hz while DROID
    runs at 15 Hz, so about 4 control steps per planned action):

    - `cartesian_position`: `env.step([x, y, z, roll, pitch, yaw, gripper_position])` each step.
    - `cartesian_velocity`: each step reads the current pose (`env.get_state()`), computes the
      remaining delta to the target and sends it as DROID's normalised velocity
      (delta / max delta per step; linear and angular parts scaled to norm <= 1, gripper velocity
      in [-1, 1]), which is what `RobotEnv.step` asserts.

    `image_size` optionally resizes/crops frames (shorter side, centre crop) before they leave the
    robot, which keeps the wire small; the planner would do the same resize.

    Every state read from DROID (observation, control steps, `stop`) is checked against
    `state_ranges` (`jepa_ac.model.pose.StateRanges`): a non-finite or implausible one (a gripper width in
    mm, angles in degrees) raises ValueError and nothing is commanded from it.
    """

    def __init__(
        self,
        env: Any,
        camera_id: str,
        action_space: str | None = None,
        steps_per_action: int = 4,
        control_hz: float = DROID_CONTROL_HZ,
        bgr: bool = True,
        image_size: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        state_ranges: StateRanges = DEFAULT_STATE_RANGES,
    ) -> None:
        action_space = action_space or getattr(env, "action_space", "cartesian_position")
        if action_space not in DROID_ACTION_SPACES:
            raise ValueError(f"DroidRobot supports action_space in {DROID_ACTION_SPACES}, got {action_space!r}")
        if getattr(env, "action_space", action_space) != action_space:
            raise ValueError(f"DroidRobot: env.action_space is {env.action_space!r} but {action_space!r} was asked for")
        if not isinstance(steps_per_action, int) or steps_per_action < 1:
            raise ValueError(f"steps_per_action must be a positive int, got {steps_per_action!r}")
        if not control_hz > 0:
            raise ValueError(f"control_hz must be > 0, got {control_hz!r}")
        gripper_space = getattr(env, "gripper_action_space", None)
        # RobotEnv's default gripper space follows the arm's ("velocity" for velocity control)
        self.gripper_velocity = (gripper_space or ("velocity" if "velocity" in action_space else "position")) == "velocity"
        self.env = env
        self.camera_id = camera_id
        self.action_space = action_space
        self.steps_per_action = steps_per_action
        self.period = 1.0 / control_hz
        self.bgr = bgr
        self.image_size = image_size
        self._sleep, self._clock = sleep, clock
        self.state_ranges = state_ranges
        self._state: np.ndarray | None = None
        self.last_commands: list[np.ndarray] = []

    # -- observation ------------------------------------------------------------------------
    def get_observation(self) -> tuple[np.ndarray, np.ndarray]:
        obs = self.env.get_observation()
        images = obs.get("image") or {}
        if self.camera_id not in images:
            raise KeyError(f"DroidRobot: camera {self.camera_id!r} not in the observation; cameras: {sorted(images)}")
        frame = self._to_rgb(np.asarray(images[self.camera_id]))
        self._state = self._state_from(obs["robot_state"])
        return frame, self._state.astype(np.float32)

    def _to_rgb(self, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"DroidRobot: expected a uint8 [H, W, 3|4] camera image, got {image.dtype} {list(image.shape)}")
        image = image[..., :3]  # drop alpha (ZED images are BGRA)
        if self.bgr:
            image = image[..., ::-1]
        image = np.ascontiguousarray(image)
        if self.image_size is not None:
            from jepa_ac.model.preprocess import resize_center_crop

            image = resize_center_crop(image, self.image_size)[0]
        return image

    def _state_from(self, robot_state: dict[str, Any]) -> np.ndarray:
        pose = np.asarray(robot_state["cartesian_position"], dtype=np.float64)
        if pose.shape != (6,):
            raise ValueError(f"DroidRobot: cartesian_position must have 6 values, got {list(pose.shape)}")
        state = np.concatenate([pose, [float(robot_state["gripper_position"])]])
        return check_states(state, "DroidRobot: robot state (cartesian_position + gripper_position)", self.state_ranges)

    # -- action -----------------------------------------------------------------------------
    def apply_action(self, action: np.ndarray) -> None:
        if self._state is None:
            raise RuntimeError("DroidRobot: call get_observation() before apply_action()")
        target = np.asarray(apply_action(self._state, check_action(action)), dtype=np.float64)  # [7]
        self.last_commands = []
        tick = self._clock()
        for _ in range(self.steps_per_action):
            command = self._command_towards(target)
            self.env.step(command)
            self.last_commands.append(command)
            tick += self.period
            self._sleep(max(0.0, tick - self._clock()))

    def _command_towards(self, target: np.ndarray) -> np.ndarray:
        if self.action_space == "cartesian_position":
            if self.gripper_velocity:
                current = self._state_from(self.env.get_state()[0])
                return np.concatenate([target[CARTESIAN],
                                       [self._gripper_velocity(target[GRIPPER] - current[GRIPPER])]])
            return target.copy()
        current = self._state_from(self.env.get_state()[0])
        delta = np.asarray(action_between(current, target), dtype=np.float64)  # remaining [7]
        linear = delta[POSITION] / DROID_MAX_LIN_DELTA
        angular = delta[ROTATION] / DROID_MAX_ROT_DELTA
        linear /= max(1.0, float(np.linalg.norm(linear)))
        angular /= max(1.0, float(np.linalg.norm(angular)))
        gripper = self._gripper_velocity(delta[GRIPPER]) if self.gripper_velocity else target[GRIPPER]
        return np.clip(np.concatenate([linear, angular, [gripper]]), -1.0, 1.0)

    @staticmethod
    def _gripper_velocity(delta: float) -> float:
        return float(np.clip(delta / DROID_MAX_GRIPPER_DELTA, -1.0, 1.0))

    def stop(self) -> None:
        """Hold the current pose: command it as the target (position) or send zero velocity. A hold
        target needs the state: from an implausible one nothing is commanded (logged as an error)."""
        if self.action_space == "cartesian_velocity" and self.gripper_velocity:
            self.env.step(np.zeros(7))  # needs no state, so it works even when the state is implausible
            logger.warning("DroidRobot: stop commanded (zero velocity)")
            return
        try:
            state = self._state_from(self.env.get_state()[0])
        except ValueError as err:  # commanding an implausible pose (gripper 80, angles in degrees) is worse
            logger.error("DroidRobot: stop commands nothing: %s", err)
            return
        if self.action_space == "cartesian_velocity":
            command = np.zeros(7)
            if not self.gripper_velocity:
                command[GRIPPER] = state[GRIPPER]
        elif self.gripper_velocity:
            command = np.concatenate([state[CARTESIAN], [0.0]])
        else:
            command = state
        self.env.step(command)
        logger.warning("DroidRobot: stop commanded at %s", np.round(state, 4).tolist())

