"""Robot adapters (MuJoCo gym env, DROID RobotEnv) and the MPC loop with its safety stops."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jepa_ac.serving.client import PlannerClient
from jepa_ac.model.pose import apply_action
from jepa_ac.robot import DroidRobot, GymRobot, Robot, SafetyConfig, SafetyLayer, run_episode
from jepa_ac.robot.adapters import DROID_MAX_LIN_DELTA
from jepa_ac.serving.server import PlanningServer, ServerConfig, ServerThread

START = np.array([0.45, 0.0, 0.30, np.pi - 0.1, 0.05, 0.2, 0.2])
GOAL = np.zeros((32, 32, 3), np.uint8)


class RecordingRobot:
    """A kinematic robot that records every action it receives."""

    def __init__(self, done_after: int | None = None, fail_at: int | None = None) -> None:
        self.state = START.copy()
        self.received: list[np.ndarray] = []
        self.stops = 0
        self.done_after, self.fail_at = done_after, fail_at

    @property
    def done(self) -> bool:
        return self.done_after is not None and len(self.received) >= self.done_after

    def get_observation(self):
        return np.full((32, 32, 3), 7, np.uint8), self.state.astype(np.float32)

    def apply_action(self, action):
        if self.fail_at is not None and len(self.received) == self.fail_at:
            raise RuntimeError("arm fault")
        self.received.append(np.array(action))
        self.state = apply_action(self.state, np.asarray(action, dtype=np.float64))

    def stop(self):
        self.stops += 1


class ScriptedPolicy:
    """Returns the given actions in turn; an Exception instance in the list is raised."""

    def __init__(self, actions, goal_error: Exception | None = None) -> None:
        self.actions, self.goal_error, self.i = list(actions), goal_error, 0

    def reset(self):
        self.i = 0

    def set_goal(self, goal):
        if self.goal_error is not None:
            raise self.goal_error

    def infer(self, obs):
        item = self.actions[self.i % len(self.actions)]
        self.i += 1
        if isinstance(item, Exception):
            raise item
        return {"action": np.asarray(item, np.float32), "energy": 0.5, "timing": {"plan_s": 0.0}}

    def metadata(self):
        return {}


SAFETY = SafetyLayer(SafetyConfig())


def test_protocols_are_satisfied():
    assert isinstance(RecordingRobot(), Robot)
    assert isinstance(DroidRobot(FakeDroidEnv(), "cam_left"), Robot)


def test_out_of_limit_actions_are_clipped_before_the_robot_sees_them(caplog):
    actions = [[0.3, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1.2, 0], [0, 0, 0, 0, 0, 0, 2.0], [0.01, 0, 0, 0, 0, 0, 0]]
    robot = RecordingRobot()
    with caplog.at_level(logging.WARNING, logger="jepa_ac.robot.safety"):
        result = run_episode(robot, ScriptedPolicy(actions), GOAL, max_steps=8, safety=SAFETY)
    assert result.status == "max_steps" and len(robot.received) == 8
    cfg = SAFETY.config
    state = START.copy()
    for sent in robot.received:
        assert np.linalg.norm(sent[:3]) <= cfg.max_translation + 1e-9
        assert Rotation.from_euler("xyz", sent[3:6]).magnitude() <= cfg.max_rotation + 1e-6
        state = apply_action(state, sent)
        assert np.all(state[:3] <= np.array(cfg.workspace_max) + 1e-9) and 0 <= state[6] <= 1
    np.testing.assert_array_equal(result.actions, np.stack(robot.received))
    assert result.num_clipped == 6  # the first three actions twice; the small step never
    assert len([r for r in caplog.records if "safety clip" in r.getMessage()]) >= 6


def test_nan_action_refused_and_robot_stopped():
    robot = RecordingRobot()
    policy = ScriptedPolicy([[0.01, 0, 0, 0, 0, 0, 0], [0.01, 0, 0, 0, 0, 0, 0], [np.nan, 0, 0, 0, 0, 0, 0]])
    result = run_episode(robot, policy, GOAL, max_steps=5, safety=SAFETY)
    assert result.status == "stopped" and "safety refused the action at step 2" in result.stop_reason
    assert len(robot.received) == 2 and robot.stops == 1 and all(np.isfinite(a).all() for a in robot.received)


def test_planner_failure_stops_the_robot():
    robot = RecordingRobot()
    result = run_episode(robot, ScriptedPolicy([[0.01, 0, 0, 0, 0, 0, 0], RuntimeError("CUDA OOM")]), GOAL,
                         max_steps=5, safety=SAFETY)
    assert result.status == "stopped" and "planner failed at step 1: RuntimeError: CUDA OOM" in result.stop_reason
    assert len(robot.received) == 1 and robot.stops == 1
    robot = RecordingRobot()
    result = run_episode(robot, ScriptedPolicy([], goal_error=ValueError("bad goal")), GOAL, max_steps=5,
                         safety=SAFETY)
    assert result.status == "stopped" and "set_goal" in result.stop_reason and not robot.received


def test_link_failure_stops_the_robot():
    class Policy:
        def reset(self): ...
        def set_goal(self, goal): ...
        def infer(self, obs): return {"action": np.full(7, 0.001, np.float32), "energy": 0.0, "timing": {}}
        def metadata(self): return {}

    thread = ServerThread(PlanningServer(Policy, ServerConfig(port=0)))
    url = thread.start()
    client = PlannerClient(url, retries=1, backoff_s=0.01)
    robot = RecordingRobot()

    def cut_after_two(record):
        if record.index == 1:
            thread.stop()

    result = run_episode(robot, client, GOAL, max_steps=5, safety=SAFETY, on_step=cut_after_two)
    assert result.status == "stopped" and "PlannerConnectionError" in result.stop_reason
    assert len(robot.received) == 2 and robot.stops == 1


def test_done_robot_ends_episode_and_robot_errors_propagate():
    robot = RecordingRobot(done_after=3)
    result = run_episode(robot, ScriptedPolicy([[0.01, 0, 0, 0, 0, 0, 0]]), GOAL, max_steps=10, safety=SAFETY)
    assert result.status == "done" and len(result.steps) == 3
    robot = RecordingRobot(fail_at=1)
    with pytest.raises(RuntimeError, match="arm fault"):
        run_episode(robot, ScriptedPolicy([[0.01, 0, 0, 0, 0, 0, 0]]), GOAL, max_steps=10, safety=SAFETY)
    assert robot.stops == 1
    with pytest.raises(ValueError, match="max_steps"):
        run_episode(robot, ScriptedPolicy([]), GOAL, max_steps=0, safety=SAFETY)


# -- DROID ------------------------------------------------------------------------------------------
class FakeDroidEnv:
    """The methods of droid.robot_env.RobotEnv, with DROID's command semantics on a kinematic arm.

    Written from droid/franka/robot.py (create_action_dict) and droid/robot_ik/robot_ik_solver.py:
    velocity commands in [-1, 1] scale to at most 0.075 m / 0.15 rad / 0.25 gripper per step;
    position commands move towards the target at that same per-step limit; poses compose as
    scipy `R.from_euler("xyz", delta) * R.from_euler("xyz", pose)` (droid.misc.transformations).
    """

    def __init__(self, action_space="cartesian_position", gripper_action_space=None):
        self.action_space, self.gripper_action_space = action_space, gripper_action_space
        self.pose, self.gripper = START[:6].copy(), float(START[6])
        self.commands: list[np.ndarray] = []
        rgb = np.zeros((24, 40, 3), np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 10
        self.rgb = rgb
        bgra = np.concatenate([rgb[..., ::-1], np.full((24, 40, 1), 255, np.uint8)], axis=-1)
        self.images = {"cam_left": bgra, "cam_right": np.zeros_like(bgra)}

    def get_state(self):
        return {"cartesian_position": self.pose.tolist(), "gripper_position": self.gripper,
                "joint_positions": [0.0] * 7}, {"read_start": 0}

    def get_observation(self):
        return {"robot_state": self.get_state()[0], "image": dict(self.images), "timestamp": {}}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        assert len(action) == 7
        velocity = "velocity" in self.action_space
        if velocity:
            assert action.max() <= 1 and action.min() >= -1
        self.commands.append(action.copy())
        gripper_velocity = (self.gripper_action_space or ("velocity" if velocity else "position")) == "velocity"
        if gripper_velocity:
            self.gripper = float(np.clip(self.gripper + np.clip(action[6], -1, 1) * 0.25, 0, 1))
        else:
            self.gripper = float(np.clip(action[6], 0, 1))
        if velocity:
            lin, rot = action[:3].copy(), action[3:6].copy()
        else:  # pose_diff, then delta -> velocity
            lin = (action[:3] - self.pose[:3]) / 0.075
            rot = (Rotation.from_euler("xyz", action[3:6]) * Rotation.from_euler("xyz", self.pose[3:6]).inv()
                   ).as_euler("xyz") / 0.15
        lin /= max(1.0, np.linalg.norm(lin))
        rot /= max(1.0, np.linalg.norm(rot))
        new_rot = Rotation.from_euler("xyz", rot * 0.15) * Rotation.from_euler("xyz", self.pose[3:6])
        self.pose = np.concatenate([self.pose[:3] + lin * 0.075, new_rot.as_euler("xyz")])
        return {}


def fake_time():
    clock = {"t": 0.0, "slept": []}

    def sleep(s):
        clock["slept"].append(s)
        clock["t"] += s

    return clock, sleep, lambda: clock["t"]


def droid_state(env):
    return np.concatenate([env.pose, [env.gripper]])


def assert_pose_close(state, target, atol):
    np.testing.assert_allclose(state[:3], target[:3], atol=atol)
    rot_err = (Rotation.from_euler("xyz", state[3:6]) * Rotation.from_euler("xyz", target[3:6]).inv()).magnitude()
    assert rot_err < atol
    assert state[6] == pytest.approx(target[6], abs=atol)


def test_droid_observation_converts_bgra_and_state():
    env = FakeDroidEnv()
    robot = DroidRobot(env, camera_id="cam_left")
    frame, state = robot.get_observation()
    np.testing.assert_array_equal(frame, env.rgb)
    assert frame.dtype == np.uint8 and frame.flags.c_contiguous
    np.testing.assert_allclose(state, START, atol=1e-6)
    frame, _ = DroidRobot(env, camera_id="cam_left", image_size=16).get_observation()
    assert frame.shape == (16, 16, 3)
    with pytest.raises(KeyError, match=r"camera 'wrist' not in the observation; cameras: \['cam_left', 'cam_right'\]"):
        DroidRobot(env, camera_id="wrist").get_observation()
    with pytest.raises(ValueError, match="env.action_space is 'cartesian_position'"):
        DroidRobot(env, camera_id="cam_left", action_space="cartesian_velocity")
    with pytest.raises(ValueError, match="supports action_space"):
        DroidRobot(FakeDroidEnv("joint_velocity"), camera_id="cam_left")


@pytest.mark.parametrize("action_space", ["cartesian_position", "cartesian_velocity"])
def test_droid_action_reaches_the_planned_target(action_space):
    env = FakeDroidEnv(action_space)
    clock, sleep, now = fake_time()
    robot = DroidRobot(env, camera_id="cam_left", steps_per_action=4, control_hz=15.0, sleep=sleep, clock=now)
    _, state = robot.get_observation()
    delta = np.array([0.12, -0.04, 0.03, 0.0, 0.05, 0.15, 0.3])  # 0.13 m: two DROID steps at 0.075 m
    target = apply_action(state.astype(np.float64), delta)
    robot.apply_action(delta)
    assert len(env.commands) == 4
    assert_pose_close(droid_state(env), target, atol=1e-4)
    assert sum(clock["slept"]) == pytest.approx(4 / 15.0)
    if action_space == "cartesian_position":  # the absolute target every step
        for command in env.commands:
            np.testing.assert_allclose(command, target, atol=1e-9)
    else:  # normalised velocities, the first one saturated at DROID's per-step limit
        assert np.linalg.norm(env.commands[0][:3]) == pytest.approx(1.0)
        assert np.linalg.norm(env.commands[0][:3]) * DROID_MAX_LIN_DELTA < np.linalg.norm(delta[:3])
        assert all(np.abs(c).max() <= 1 for c in env.commands)
        np.testing.assert_allclose(env.commands[-1][:6], 0, atol=1e-4)  # arrived: nothing left to do
    robot.stop()
    assert_pose_close(droid_state(env), target, atol=1e-4)  # stop holds the pose


def test_episode_on_droid_robot_with_clipping():
    env = FakeDroidEnv("cartesian_velocity")
    robot = DroidRobot(env, camera_id="cam_left", steps_per_action=3, sleep=lambda s: None)
    policy = ScriptedPolicy([[0.02, 0.0, -0.01, 0, 0, 0.05, 0.1], [0.5, 0, 0, 0, 0, 0, 0]])
    result = run_episode(robot, policy, GOAL, max_steps=4, safety=SAFETY)
    assert result.status == "max_steps" and result.num_clipped == 2
    expected = START.copy()
    for action in result.actions:
        expected = apply_action(expected, action)
    assert_pose_close(droid_state(env), expected, atol=1e-3)


# -- MuJoCo -----------------------------------------------------------------------------------------
def test_gym_robot_on_mujoco_env(caplog):
    gymnasium = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    import jepa_ac.envs  # noqa: F401 - registers the ids

    robot = GymRobot(gymnasium.make("jepa_ac/FrankaReach-v0", image_size=64))
    with pytest.raises(RuntimeError, match="call reset"):
        robot.get_observation()
    frame, state = robot.reset(seed=1)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and state.shape == (7,)
    assert robot.goal_image().shape == (64, 64, 3)
    with caplog.at_level(logging.WARNING, logger="jepa_ac.robot.adapters"):
        robot.apply_action(np.array([0.02, 0, 0, 0, 0, 0, 5.0]))  # gripper delta beyond the env's Box
    assert any("outside the env's action space" in r.getMessage() for r in caplog.records)
    _, after = robot.get_observation()
    assert after[0] - state[0] == pytest.approx(0.02, abs=0.01)
    assert isinstance(robot.success, bool) and robot.done is False
    robot.env.close()
