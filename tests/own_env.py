"""A third-party-style gymnasium env for tests, registered as `OwnReach-v0` on import, with hooks.

Shaped like gymnasium-robotics Fetch: a dict observation whose `observation[:3]` is the gripper
position and `observation[3:5]` the finger widths, a 4-D action in [-1, 1] (xyz velocity and
fingers), frames only from `render()` (render_mode="rgb_array", width / height), 25 Hz (`dt`).
The controller reaches only `GAIN` of each commanded move, one step late (lag 1), so the
control contract has something to measure. Every env made is kept in `MADE` with what it did.

    python -m jepa_ac.collect --env own_env:OwnReach-v0 --policy own_env:policy --state own_env:state ...
    python -m jepa_ac.evaluate --env own_env:OwnReach-v0 --checkpoint RUN/final --goal-hook own_env:goal ...
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "OwnReach-v0"
MAX_MOVE = 0.05  # m per step at |action| = 1, as Fetch
GAIN = 0.8  # achieved / commanded
MADE: list["OwnReachEnv"] = []


class OwnReachEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode: str | None = None, width: int = 480, height: int = 480, distance: float = 0.05):
        self.render_mode, self.width, self.height, self.distance = render_mode, width, height, distance
        self.dt = 0.04  # 25 Hz, as Fetch (n_substeps 20 x 2 ms)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        box = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
        self.observation_space = gym.spaces.Dict({
            "observation": gym.spaces.Box(-np.inf, np.inf, (5,), np.float64), "achieved_goal": box, "desired_goal": box})
        self.log: list[dict] = []
        MADE.append(self)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.grip = np.array([1.3, 0.75, 0.55]) + self.np_random.uniform(-0.1, 0.1, 3)
        self.fingers = 0.05
        self.goal = np.array([1.3, 0.75, 0.55]) + self.np_random.uniform(-0.15, 0.15, 3)
        self.pending = np.zeros(4)
        self.log.append({"seed": seed, "obs": [self._obs()], "actions": []})
        return self._obs(), {"is_success": False}

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64), -1, 1)
        move, self.pending = self.pending, action  # the controller runs one step behind
        self.grip = self.grip + GAIN * MAX_MOVE * move[:3]
        self.fingers = float(np.clip(self.fingers + 0.01 * move[3], 0.0, 0.05))
        success = bool(np.linalg.norm(self.grip - self.goal) < self.distance)
        self.log[-1]["actions"].append(action)
        self.log[-1]["obs"].append(self._obs())
        return self._obs(), float(success), False, False, {"is_success": success}

    def snapshot(self):
        return {"grip": self.grip.copy(), "fingers": self.fingers, "pending": self.pending.copy()}

    def restore(self, saved):
        self.grip, self.fingers, self.pending = saved["grip"].copy(), saved["fingers"], saved["pending"].copy()

    def _obs(self):
        return {"observation": np.r_[self.grip, self.fingers / 2, self.fingers / 2], "achieved_goal": self.grip.copy(),
                "desired_goal": self.goal.copy()}

    def render(self):
        assert self.render_mode == "rgb_array", "collect must make the env with render_mode='rgb_array'"
        image = np.full((self.height, self.width, 3), 30, np.uint8)
        u, v = ((self.grip[:2] - np.array([1.05, 0.5])) / 0.5 * [self.width - 6, self.height - 6]).astype(int)
        u, v = np.clip(u, 0, self.width - 6), np.clip(v, 0, self.height - 6)
        image[v : v + 6, u : u + 6] = (240, 200, 40)
        return image


def state(obs):
    """Fetch-style observation -> DROID state: gripper xyz, fixed orientation, closedness from the fingers."""
    o = obs["observation"]
    return np.r_[o[:3], 0.0, 0.0, 0.0, 1.0 - (o[3] + o[4]) / 0.05]


def policy(obs, env):
    """Toward the goal, with some exploration (seeded through the action space)."""
    direction = (obs["desired_goal"] - obs["achieved_goal"]) / MAX_MOVE
    return np.clip(np.r_[direction, 0.0] + 0.5 * env.action_space.sample(), -1, 1).astype(np.float32)


def success(obs):
    """The gripper within 5 cm of the goal."""
    return bool(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]) < 0.05)


def goal(obs, env):
    """The frame with the gripper at the goal."""
    u = env.unwrapped
    saved = u.grip
    u.grip = obs["desired_goal"].copy()
    try:
        return u.render()
    finally:
        u.grip = saved


def pusher_state(obs):
    """gymnasium Pusher-v5: the fingertip position, obs[14:17]."""
    return np.r_[obs[14:17], 0.0, 0.0, 0.0, 0.0]


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=OwnReachEnv, max_episode_steps=12)
