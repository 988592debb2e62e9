"""Plan on any gymnasium env: hooks that read its observations as (frame, state), turn the planner's
7-D move into its actions, and tell success and the goal image.

    spec = AdapterSpec(env="my_hooks:FetchReach-v4", state="my_hooks:state", goal="my_hooks:goal")
    adapter = EnvAdapter.load(spec, contract, image_size=64)   # contract: a ControlContract (command fit)
    env = adapter.make_env(step_budget=20)
    robot = GymRobot(env, adapter=adapter)                     # what plan / evaluate run

    python -m jepa_ac.evaluate --checkpoint runs/fetch/final --env my_hooks:FetchReach-v4 --policy planner random

Hooks are "module:function" names, as `collect` takes them. A checkpoint trained by
`train_predictor` carries the hooks its data was recorded with and the data's control contract
(`control.json`, `jepa_ac.planning.checkpoint_control`); the `--*-hook` flags of plan and evaluate
replace them.

- state (obs[, env]) -> `[x, y, z, roll, pitch, yaw, gripper]`; default: `info["cartesian_position"]` +
  `info["gripper_position"]` (`jepa_ac.data.gym_source.observation_state`).
- frame (obs[, env]) -> uint8 [H, W, 3]; default: the observation's image, else `env.render()`.
  Frames are resized (shorter side, centre crop) to the planning image size.
- success (obs[, env]) -> bool; default: `info["success"]`, else `info["is_success"]` (gymnasium-robotics).
- goal (obs[, env]) -> a uint8 image, or a list of them (sub-goals, then the goal), called once
  right after reset with the reset observation; default: the env's `goal_image()` (jepa_ac envs).
  `restore_after(env)` puts a MuJoCo env back after the hook has moved it to render the goal.
- action (move[, obs[, env]]) -> the env's action for one env step, where `move` is the share of the
  planned 7-D move that step should make; default: the control contract's command fit (below).

The planned action is the move between two states one clip step apart (`train_predictor --fps`),
as the predictor was trained. The data's control contract fitted `move ≈ M @ command + b` per env
step (`command_to_delta`, `delta_offset`); `CommandMap` inverts it (least squares over the action
dims that moved in the data), which undoes the env's gain (e.g. a controller that reaches 60% of
each commanded step), its units and its axes (an action frame that is not the state's), and holds
that command for `repeat = round(control_hz / step_hz)` env steps (e.g. 25 Hz data trained at
5 fps: 5 env steps per planned action). Commands are clipped to the env's action space.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np

logger = logging.getLogger(__name__)

HOOKS = ("state", "frame", "success", "goal", "action")


@dataclass(frozen=True)
class AdapterSpec:
    """Which env and which hooks ("module:function"; None: the default in the module doc)."""

    env: str  # a registered id, or "module:EnvId" (imports module first)
    state: str | None = None
    frame: str | None = None
    success: str | None = None
    goal: str | None = None
    action: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.env, str) or not self.env:
            raise ValueError(f"AdapterSpec.env must be an env id or module:EnvId, got {self.env!r}")
        for name in HOOKS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or ":" not in value):
                raise ValueError(f"AdapterSpec.{name} must be module:function, got {value!r}")

    def replace(self, **hooks: str | None) -> "AdapterSpec":
        """These hooks with the given ones (None values are ignored: they keep this spec's)."""
        return dataclasses.replace(self, **{k: v for k, v in hooks.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_options(cls, env: str, options: Mapping[str, Any]) -> "AdapterSpec":
        """The spec of a dataset's env: its id and the hooks among its `env_options` (collect stores them there)."""
        return cls(env=env, **{k: options[k] for k in HOOKS if options.get(k)})


def env_name(env: str) -> str:
    """The registered id of "module:EnvId" (or of a plain id)."""
    return env.rpartition(":")[2]


# -- the command map -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandMap:
    """Planned move -> env command: the inverse of the contract's fit `move ≈ M @ command + b`,
    held for `repeat` env steps.

    `rows` are the action dims the inverse is fitted on (those that moved in the data); the others
    of a planned move are ignored (the planner keeps them frozen at 0)."""

    matrix: np.ndarray  # [7, k] achieved move per unit command, per env step
    offset: np.ndarray  # [7] move with a zero command
    rows: tuple[int, ...]  # action dims that moved in the data
    repeat: int  # env steps per planned action
    lag: int = 0  # env steps from a command to its move (as measured; not compensated)

    def __post_init__(self) -> None:
        if not isinstance(self.repeat, int) or self.repeat < 1:
            raise ValueError(f"CommandMap.repeat must be a positive int, got {self.repeat!r}")
        if not self.rows:
            raise ValueError("CommandMap: no action dim moved in the data, so no command can be fitted")
        matrix = np.asarray(self.matrix, np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != 7:
            raise ValueError(f"CommandMap.matrix must be [7, k], got {list(matrix.shape)}")
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "offset", np.asarray(self.offset, np.float64).reshape(7))
        # [k, R]: least squares (minimum-norm) inverse over the moved rows; tiny singular values dropped
        object.__setattr__(self, "_inverse", np.linalg.pinv(matrix[list(self.rows)], rcond=1e-6))

    @classmethod
    def from_contract(cls, contract: Any) -> "CommandMap":
        """From a `ControlContract` with a command fit; `repeat` from its recording rate vs its step rate."""
        if contract.command_to_delta is None:
            raise ValueError("the control contract has no command fit (the data recorded no commands): pass an "
                             "action hook (--action-hook module:function) that turns a planned move into the env's "
                             "action")
        rows = tuple(i for i, r2 in enumerate(contract.fit_r2 or (None,) * 7) if r2 is not None)
        return cls(matrix=np.asarray(contract.command_to_delta), offset=np.asarray(contract.delta_offset or (0.0,) * 7),
                   rows=rows, repeat=max(1, round(contract.control_hz / contract.step_hz)),
                   lag=int(contract.command_lag or 0))

    @property
    def gain(self) -> np.ndarray:
        """[7] achieved move per unit command on each dim's strongest command (0 where never moved)."""
        return np.abs(self.matrix).max(axis=1) * np.isin(np.arange(7), self.rows)

    def command(self, move: np.ndarray) -> np.ndarray:
        """[k] the command whose fitted move per env step is closest to `move` [7]."""
        rows = list(self.rows)
        return self._inverse @ (np.asarray(move, np.float64)[rows] - self.offset[rows])  # [k]


# -- the adapter ---------------------------------------------------------------------------------


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn` with as many of `args` as it takes positionally (at least one)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn(*args)
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return fn(*args)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return fn(*args[: max(1, len(positional))])


def _image(value: Any, size: int, what: str) -> np.ndarray:
    from jepa_ac.model.preprocess import resize_center_crop

    image = np.asarray(value)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{what} must be a uint8 [H, W, 3] image, got {image.dtype} {list(image.shape)}")
    return image if image.shape[:2] == (size, size) else resize_center_crop(image, size)[0]


class EnvAdapter:
    """An env's hooks and command map: what `GymRobot` needs to plan on an env that is not ours."""

    def __init__(self, spec: AdapterSpec, image_size: int, command: CommandMap | None = None,
                 hooks: Mapping[str, Callable[..., Any]] | None = None, contract: Any = None) -> None:
        from jepa_ac.data.gym_source import GymHooks

        self.spec, self.image_size, self.command_map = spec, int(image_size), command
        self.contract = contract  # the data's ControlContract (safety limits), if known
        self.hooks = dict(hooks or {})
        self._gym_hooks = GymHooks(state=self.hooks.get("state"), frame=self.hooks.get("frame"))
        if command is None and "action" not in self.hooks:
            raise ValueError(f"{spec.env}: no command fit and no action hook: train on data recorded with the env's "
                             "commands (collect stores them), or pass --action-hook module:function")

    @classmethod
    def load(cls, spec: AdapterSpec, contract: Any | None, image_size: int) -> "EnvAdapter":
        """Import the hooks of `spec` (errors name the flag) and invert `contract`'s command fit
        (None, or a contract without commands: the action hook is required)."""
        from jepa_ac.data.hooks import load_hook

        hooks = {name: load_hook(getattr(spec, name), f"--{name}-hook") for name in HOOKS if getattr(spec, name)}
        command = None
        if "action" not in hooks:
            if contract is None:
                raise ValueError(f"{spec.env}: no control contract to turn planned moves into env actions: plan with "
                                 "a checkpoint trained on the env's data (train_predictor stores its contract), or "
                                 "pass --action-hook module:function")
            command = CommandMap.from_contract(contract)
        return cls(spec, image_size, command, hooks, contract)

    def describe(self) -> dict[str, Any]:
        """The adapter as a JSON record (for metrics and results)."""
        out: dict[str, Any] = {**self.spec.to_dict(), "image_size": self.image_size}
        if self.command_map is not None:
            out.update(repeat=self.command_map.repeat, command_lag=self.command_map.lag,
                       gain=[round(float(g), 6) for g in self.command_map.gain])
        return out

    def safety(self) -> Any:
        """The safety limits for this env: derived from the data's contract (`safety_limits`: the
        positions seen + 5 cm, steps the planner may take), else only the physical state ranges."""
        from jepa_ac.robot.safety import SafetyConfig

        if self.contract is None:
            reach = 3.0  # jepa_ac.model.pose.StateRanges.max_position
            return SafetyConfig(workspace_min=(-reach,) * 3, workspace_max=(reach,) * 3, max_translation=1.0,
                                max_rotation=float(np.pi), max_gripper_delta=1.0)
        from jepa_ac.data.contract import safety_limits

        return SafetyConfig.from_dict(safety_limits(self.contract))

    # -- the env ----------------------------------------------------------------------------------
    def make_env(self, step_budget: int | None = None) -> Any:
        """The env, rendering `image_size` frames where it can; `step_budget` planned actions fit its time limit."""
        from jepa_ac.data.gym_source import make_gym_env

        repeat = self.command_map.repeat if self.command_map is not None else 1
        return make_gym_env(self.spec.env, self.image_size,
                            None if step_budget is None else step_budget * repeat + 1)

    @property
    def repeat(self) -> int:
        return self.command_map.repeat if self.command_map is not None else 1

    def observe(self, obs: Any, info: Mapping[str, Any], env: Any) -> tuple[np.ndarray, np.ndarray]:
        """(frame uint8 [S, S, 3], state float64 [7]) of an observation."""
        from jepa_ac.data.gym_source import observation_frames, observation_state

        frame = next(iter(observation_frames(obs, env, self._gym_hooks).values()))
        return _image(frame, self.image_size, "the frame"), observation_state(obs, info, env, self._gym_hooks)

    def success(self, obs: Any, info: Mapping[str, Any], env: Any) -> bool:
        if "success" in self.hooks:
            return bool(_call(self.hooks["success"], obs, env))
        return bool(info.get("success", info.get("is_success", False)))

    def goals(self, obs: Any, env: Any) -> list[np.ndarray]:
        """The goal images (sub-goals, then the goal) for the episode that `obs` (the reset observation) starts."""
        if "goal" in self.hooks:
            found = _call(self.hooks["goal"], obs, env)
        elif callable(getattr(env.unwrapped, "goal_image", None)):
            found = env.unwrapped.goal_image()
        else:
            raise ValueError(f"{self.spec.env} has no goal image: pass --goal-hook module:function (obs, env -> "
                             "image) that renders the goal, or --goal IMAGE")
        images = list(found) if isinstance(found, (list, tuple)) else [found]
        return [_image(g, self.image_size, f"--goal-hook {self.spec.goal}'s image") for g in images]

    def env_action(self, move: np.ndarray, obs: Any, env: Any) -> np.ndarray:
        """The env's action for one env step making `move` [7] (its share of the planned action)."""
        space = env.action_space
        if "action" in self.hooks:
            action = np.asarray(_call(self.hooks["action"], move, obs, env), dtype=space.dtype)
        else:
            action = self.command_map.command(move).astype(space.dtype).reshape(space.shape)
        if hasattr(space, "low"):
            action = np.clip(action, space.low, space.high).astype(space.dtype)
        return action

    def step(self, env: Any, planned: np.ndarray,
             obs: Any) -> tuple[Any, float, bool, bool, dict[str, Any], list[np.ndarray]]:
        """Execute one planned move [7] over `repeat` env steps (fewer if the episode ends) ->
        (obs, summed reward, terminated, truncated, info, the env actions sent)."""
        move = np.asarray(planned, np.float64) / self.repeat  # [7] per env step (rotations: small-angle share)
        reward, sent = 0.0, []
        terminated = truncated = False
        info: dict[str, Any] = {}
        for _ in range(self.repeat):
            action = self.env_action(move, obs, env)
            obs, r, terminated, truncated, info = env.step(action)
            reward += float(r)
            sent.append(action)
            if terminated or truncated:
                break
        return obs, reward, bool(terminated), bool(truncated), dict(info), sent


# -- putting a simulator back -----------------------------------------------------------------------


def snapshot(env: Any) -> Any:
    """The env's dynamic state: its own `snapshot()` (jepa_ac envs), else MuJoCo's full integration state."""
    u = env.unwrapped
    if callable(getattr(u, "snapshot", None)):
        return ("env", u.snapshot())
    if hasattr(u, "model") and hasattr(u, "data"):
        import mujoco

        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(u.model, spec))
        mujoco.mj_getState(u.model, u.data, state, spec)
        return ("mujoco", state)
    raise ValueError(f"{type(u).__name__} cannot be put back: give it snapshot() / restore(snapshot) methods "
                     "(MuJoCo envs with .model and .data need none)")


def restore(env: Any, saved: Any) -> None:
    """Back to a `snapshot(env)`."""
    kind, state = saved
    u = env.unwrapped
    if kind == "env":
        u.restore(state)
        return
    import mujoco

    mujoco.mj_setState(u.model, u.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(u.model, u.data)


@contextlib.contextmanager
def restore_after(env: Any) -> Iterator[Any]:
    """Run a block that moves the simulation (e.g. to render the goal), then put it back as it was.

        def goal(obs, env):
            with restore_after(env):
                env.unwrapped.data.mocap_pos[0] = obs["desired_goal"]
                mujoco.mj_step(env.unwrapped.model, env.unwrapped.data, nstep=200)
                return env.render()
    """
    saved = snapshot(env)
    try:
        yield env.unwrapped
    finally:
        restore(env, saved)
