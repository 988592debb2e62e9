"""Roll out any registered gymnasium env with your own policy and state hook (what `collect --policy` runs).

    env = make_gym_env("gymnasium:Pusher-v5", image_size=128)          # "module:EnvId" imports module first
    hooks = GymHooks.load(policy="my_hooks:policy", state="my_hooks:state")
    episode, success = gym_rollout(env, hooks, seed=0, max_steps=100, image_size=128)

Hooks are "module:function" names. Each is called as `fn(obs)` or, if it takes two positional
arguments, `fn(obs, env)`:

- state (required unless the env's `info` has `cartesian_position` and `gripper_position`, as the
  jepa_ac Franka envs): the 7-D DROID state `[x, y, z, roll, pitch, yaw, gripper]` (m, rad,
  closedness 0..1) of the observation. For gymnasium-robotics Fetch:
  `np.r_[obs["observation"][:3], 0, 0, 0, 1 - obs["observation"][3:5].sum() / 0.1]`.
- policy (default: uniform random actions from the env's action space): the action to send. An
  object with a `reset()` method has it called at each episode start.
- frame (default: the observation itself if it is an image, its "image" / "pixels" / "rgb" entry,
  else `env.render()`): a uint8 [H, W, 3] frame, or {camera: frame} for several cameras.
- success (default: `info["success"]`, else `info["is_success"]`): whether the task is done.

Frames are resized (shorter side, centre crop) to `image_size` unless the env renders that size.
The env's action is recorded as the command (`command_space="env"`); its control rate is
`env.metadata["render_fps"]` or `1 / env.unwrapped.dt`.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from jepa_ac.data.hooks import load_hook, takes_env
from jepa_ac.data.recorder import DEFAULT_CAMERA, EpisodeBuffer
from jepa_ac.data.writer import EpisodeData
from jepa_ac.model.pose import check_shape

IMAGE_KEYS = ("image", "pixels", "rgb")  # observation entries taken as the camera frame


# -- hooks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GymHooks:
    """The user's hooks (None: the default described in the module doc)."""

    state: Callable[..., Any] | None = None
    policy: Callable[..., Any] | None = None
    frame: Callable[..., Any] | None = None
    success: Callable[..., Any] | None = None

    @classmethod
    def load(cls, state: str | None = None, policy: str | None = None, frame: str | None = None,
             success: str | None = None) -> "GymHooks":
        return cls(*(None if spec is None else load_hook(spec, f"--{what}")
                     for spec, what in ((state, "state"), (policy, "policy"), (frame, "frame"), (success, "success"))))

    def call(self, name: str, obs: Any, env: Any) -> Any:
        fn = getattr(self, name)
        return fn(obs, env) if takes_env(fn) else fn(obs)


# -- the env -------------------------------------------------------------------------------------


def import_env_module(env: str) -> str:
    """'module:EnvId' -> imports module (which registers the id) and returns 'EnvId'; an id without
    a module is returned as is (ids in the jepa_ac/ namespace import jepa_ac.envs)."""
    module_name, sep, env_id = env.rpartition(":")
    if sep:
        try:
            importlib.import_module(module_name)
        except ImportError as err:
            raise ValueError(f"--env {env!r}: cannot import {module_name!r} ({err})") from None
    elif env.startswith("jepa_ac/"):
        import jepa_ac.envs  # noqa: F401  (registers the ids)
    return env_id


def constructor_params(entry_point: Any) -> set[str] | None:
    """Keyword names an env constructor accepts, following **kwargs up the class hierarchy (None: any)."""
    if isinstance(entry_point, str):
        from gymnasium.envs.registration import load_env_creator

        entry_point = load_env_creator(entry_point)
    functions = [c.__init__ for c in inspect.getmro(entry_point) if "__init__" in vars(c)] \
        if inspect.isclass(entry_point) else [entry_point]
    names: set[str] = set()
    for fn in functions:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return None
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None


def make_gym_env(env: str, image_size: int, max_steps: int | None = None) -> Any:
    """Make a registered env rendering `image_size` frames where it can: `image_size=` if its
    constructor takes it (jepa_ac envs), else `render_mode="rgb_array"` and `width`/`height`."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    env_id = import_env_module(env)
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as err:
        raise ValueError(f"--env {env!r}: {err}") from None
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    accepted = constructor_params(creator) or set()
    kwargs: dict[str, Any] = {}
    if "image_size" in accepted:
        kwargs["image_size"] = image_size
    else:
        modes = getattr(creator, "metadata", {}).get("render_modes", [])
        if "render_mode" in accepted and "rgb_array" in modes:
            kwargs["render_mode"] = "rgb_array"
        if {"width", "height"} <= accepted:
            kwargs.update(width=image_size, height=image_size)
    if max_steps is not None:
        kwargs["max_episode_steps"] = max_steps
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as err:
        raise ValueError(f"cannot make env {env!r}: {err}") from None


def control_rate(env: Any) -> float:
    """The env's steps per second: `metadata["render_fps"]`, else `1 / unwrapped.dt`."""
    fps = (getattr(env, "metadata", None) or {}).get("render_fps")
    if not fps and getattr(env.unwrapped, "dt", None):
        fps = 1.0 / float(env.unwrapped.dt)
    if not fps or not float(fps) > 0:
        raise ValueError(f"{env.spec.id if env.spec else env}: cannot tell its control rate; pass --fps")
    return float(fps)


# -- one step's record -------------------------------------------------------------------------------


def observation_frames(obs: Any, env: Any, hooks: GymHooks) -> dict[str, np.ndarray]:
    """{camera: uint8 [H, W, 3]} of an observation (see the module doc for the default)."""
    if hooks.frame is not None:
        frame = hooks.call("frame", obs, env)
    elif _is_image(obs):
        frame = obs
    elif isinstance(obs, Mapping) and any(_is_image(obs.get(k)) for k in IMAGE_KEYS):
        frame = next(obs[k] for k in IMAGE_KEYS if _is_image(obs.get(k)))
    else:
        frame = env.render()
        if not _is_image(frame):
            raise ValueError("the observation holds no image and env.render() returned "
                             f"{type(frame).__name__}: make the env with render_mode='rgb_array' or pass --frame")
    frames = dict(frame) if isinstance(frame, Mapping) else {DEFAULT_CAMERA: frame}
    for cam, value in frames.items():
        if not _is_image(value):
            raise ValueError(f"frame of camera {cam!r} must be uint8 [H, W, 3], got {np.asarray(value).dtype} "
                             f"{list(np.shape(value))}")
    return frames


def _is_image(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 3 and x.shape[-1] == 3


def observation_state(obs: Any, info: Mapping[str, Any], env: Any, hooks: GymHooks) -> np.ndarray:
    """The 7-D state of an observation, from the state hook or the env's info (jepa_ac envs)."""
    if hooks.state is not None:
        state = np.asarray(hooks.call("state", obs, env), np.float64).reshape(-1)
        return check_shape(state, "the --state hook's state")
    if "cartesian_position" in info and "gripper_position" in info:
        return np.concatenate([np.asarray(info["cartesian_position"], np.float64), [float(info["gripper_position"])]])
    raise ValueError("this env reports no DROID state: pass --state module:function mapping an observation to "
                     "[x, y, z, roll, pitch, yaw, gripper]")


def _resize(frames: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    from jepa_ac.model.preprocess import resize_center_crop

    return {cam: f if f.shape[:2] == (size, size) else resize_center_crop(f, size)[0] for cam, f in frames.items()}


def _success(obs: Any, info: Mapping[str, Any], env: Any, hooks: GymHooks) -> bool:
    if hooks.success is not None:
        return bool(hooks.call("success", obs, env))
    return bool(info.get("success", info.get("is_success", False)))


def gym_rollout(env: Any, hooks: GymHooks, seed: int, max_steps: int, image_size: int,
                stop_on_success: bool = False, fps: float | None = None) -> tuple[EpisodeData, bool]:
    """Run the policy for up to `max_steps` steps from `env.reset(seed=seed)` -> (episode, final success).

    Row t holds the frame and state observed at step t and the env action sent from it; the
    action space is seeded with `seed`, so the random default policy is reproducible."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    reset = getattr(hooks.policy, "reset", None)
    if callable(reset):
        reset()
    frames = _resize(observation_frames(obs, env, hooks), image_size)
    buffer = EpisodeBuffer(tuple(frames))
    success = _success(obs, info, env, hooks)
    for step in range(max_steps):
        action = env.action_space.sample() if hooks.policy is None else hooks.call("policy", obs, env)
        state = observation_state(obs, info, env, hooks)
        buffer.add(frames, state, np.asarray(action, np.float64).reshape(-1),
                   time_s=None if fps is None else step / fps)
        obs, _, terminated, truncated, info = env.step(action)
        frames = _resize(observation_frames(obs, env, hooks), image_size)
        success = _success(obs, info, env, hooks)
        if terminated or truncated or (stop_on_success and success):
            break
    buffer.add(frames, observation_state(obs, info, env, hooks), time_s=None if fps is None else len(buffer) / fps)
    return buffer.episode("env", fps), success
