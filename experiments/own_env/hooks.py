"""gymnasium-robotics FetchReach-v4 for jepa_ac: the env, seen from the side, and its hooks.

Success: the gripper within 5 cm of the red target at the end of the episode (FetchReach's own
`distance_threshold`). The goal image: the same scene with the gripper at the target.
"""

import types

import gymnasium as gym
import gymnasium_robotics  # noqa: F401  (registers the Fetch ids)
import mujoco
import numpy as np
from gymnasium_robotics.utils import mujoco_utils

from jepa_ac.robot.env_adapter import restore_after

# gymnasium-robotics 1.4.2 tests mujoco 4's joint types as plain ints: give it ints (see docs/own_data.md)
mujoco_utils.mujoco = types.SimpleNamespace(**{k: getattr(mujoco, k) for k in dir(mujoco) if not k.startswith("__")})
mujoco_utils.mujoco.mjtJoint = types.SimpleNamespace(
    **{k: int(getattr(mujoco.mjtJoint, k)) for k in dir(mujoco.mjtJoint) if k.startswith("mjJNT")})

SIDE_VIEW = {"distance": 1.2, "azimuth": 150.0, "elevation": -30.0, "lookat": np.array([1.3, 0.75, 0.5])}
gym.register("FetchReachSide-v4", entry_point="gymnasium_robotics.envs.fetch.reach:MujocoFetchReachEnv",
             max_episode_steps=50, kwargs={"reward_type": "sparse", "default_camera_config": SIDE_VIEW})


def state(obs):
    """The gripper's xyz; its orientation is fixed and its fingers are blocked in Reach."""
    return np.r_[obs["observation"][:3], 0.0, 0.0, 0.0, 0.0]


def policy(obs, env):
    """Random moves with a drift toward the target, so the data covers where targets lie."""
    toward = (obs["desired_goal"] - obs["achieved_goal"]) / 0.05
    return np.clip(0.25 * np.r_[toward, 0.0] + env.action_space.sample(), -1.0, 1.0)


def success(obs):
    return bool(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]) < 0.05)


def goal(obs, env):
    """The scene with the gripper at the target: the env's own controller drives it there, then back."""
    with restore_after(env) as sim:
        for _ in range(40):
            obs = sim.step(np.r_[np.clip((obs["desired_goal"] - obs["achieved_goal"]) / 0.05, -1, 1), 0.0])[0]
        return env.render()
