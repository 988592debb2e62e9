"""Rollouts of a gymnasium env written as a DROID-layout dataset: the Franka envs' scripted experts,
or any registered env with your own policy and state hook. The command is `python -m jepa_ac.collect`.


`--env module:EnvId` imports `module` first (which registers the id). An env named so, or given
`--policy`, `--state` or `--frame`, is rolled out by `jepa_ac.data.gym_source.gym_rollout` (see
there for the hooks; the default policy is random actions); its actions are stored as commands
(`action/command`). Without hooks, the jepa_ac/ Franka envs run their scripted experts. The hooks
(with `--success` and `--goal`, which planning uses) are stored in `dataset_info.json`'s
`env_options`; a predictor trained on the data carries them to plan and evaluate.

Writes `out/episode_000000/ ...` (one folder per episode, see `jepa_ac.data.layout`), a
`dataset_info.json` (checked on resume: a run with other settings is refused), the trajectory
list `trajectories.txt` that training reads, and `collect_summary.json` (success rate, steps,
timing). When it finishes, the measured control contract (`jepa_ac.data.contract`) is stored in
`dataset_info.json`. Re-running the same command resumes: complete episodes are kept, unfinished ones
(hidden `.tmp-*` folders of a killed run) are removed and collected again. Episode i always uses
the seed derived from (--seed, i), so a resumed or parallel run gives the same episodes.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jepa_ac.cli.worker_pool import worker_pool
from jepa_ac.data import layout
from jepa_ac.data.layout import DatasetInfo, droid_features
from jepa_ac.data.reader import read_metadata, write_trajectory_list
from jepa_ac.data.recorder import command_fields
from jepa_ac.data.writer import EpisodeData, EpisodeMeta, remove_unfinished, write_episode
from jepa_ac.files import write_json_atomic
from jepa_ac.model import pose

EnvFactory = Callable[["CollectConfig"], Any]
HOOK_NAMES = ("policy", "state", "frame", "success", "goal")  # module:function hooks, stored in env_options
ExpertFactory = Callable[[Any, float, int], Any]


@dataclass(frozen=True)
class CollectConfig:
    out: Path
    env: str = "jepa_ac/FrankaReach-v0"
    episodes: int = 10
    noise: float = 0.1
    seed: int = 0
    image_size: int = 256
    max_steps: int | None = None  # None: the env's registered episode length
    workers: int = 1
    crf: int = 18
    wrist_camera: bool = False
    exterior_view: str | None = None  # the env's exterior camera ("side", "front"); None: the env's default, recorded as the view it is
    stop_on_success: bool = False
    # the Franka scripted expert's own options (jepa_ac.envs.experts), e.g. {"grasp_offset": 0.06}
    expert_options: dict[str, Any] = field(default_factory=dict)
    policy: str | None = None  # module:function of any env (jepa_ac.data.gym_source); None: the Franka expert / random
    state: str | None = None  # module:function, obs -> [x, y, z, roll, pitch, yaw, gripper]
    frame: str | None = None  # module:function, obs -> uint8 [H, W, 3] (default: the obs image or env.render())
    success: str | None = None  # module:function, obs -> bool (default: info["success"] / info["is_success"])
    goal: str | None = None  # module:function, reset obs -> goal image: stored for planning (jepa_ac.robot.env_adapter)
    fps: float | None = None  # control rate of a generic env; None: its render_fps or 1 / dt
    task: str | None = None  # task name of a generic env; None: from the env id

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.episodes < 1:
            raise ValueError(f"CollectConfig.episodes must be >= 1, got {self.episodes}")
        if self.noise < 0:
            raise ValueError(f"CollectConfig.noise must be >= 0, got {self.noise}")
        if self.image_size < 16 or self.image_size % 2:
            raise ValueError(f"CollectConfig.image_size must be an even number >= 16 (H.264 yuv420p), got {self.image_size}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"CollectConfig.max_steps must be >= 1, got {self.max_steps}")
        if self.workers < 1:
            raise ValueError(f"CollectConfig.workers must be >= 1, got {self.workers}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"CollectConfig.crf must be in 0..51, got {self.crf}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"CollectConfig.fps must be > 0, got {self.fps}")
        for name in HOOK_NAMES:
            value = getattr(self, name)
            if value is not None and ":" not in value:
                raise ValueError(f"CollectConfig.{name} must be module:function, got {value!r}")
        if self.generic and self.expert_options:
            raise ValueError("CollectConfig.expert_options configure the Franka envs' scripted experts; "
                             "shape your own policy in your --policy hook")
        if self.generic and (self.wrist_camera or self.exterior_view is not None):
            raise ValueError("CollectConfig.wrist_camera and exterior_view are options of the jepa_ac Franka envs; "
                             "give other envs' cameras with a frame hook")
        if isinstance(self.exterior_view, str) and "+" in self.exterior_view:
            raise ValueError(f"CollectConfig.exterior_view {self.exterior_view!r}: a dataset records one exterior "
                             "camera; collect each view on its own (the same --seed gives the same episodes) and "
                             "train one model per view")

    @property
    def generic(self) -> bool:
        """Rolled out with user hooks (jepa_ac.data.gym_source) rather than a scripted expert: a hook is
        given, or the env is named module:EnvId."""
        return ":" in self.env or any(getattr(self, name) is not None for name in HOOK_NAMES)


def episode_seed(seed: int, index: int) -> int:
    """Independent, reproducible seed of episode `index` (same in any worker or resumed run)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def episode_name(index: int) -> str:
    return layout.EPISODE_DIR_FORMAT.format(index=index)


# -- env and expert ---------------------------------------------------------------------------


def make_franka_env(config: CollectConfig) -> Any:
    """The registered gymnasium env with the collection's image size and episode length."""
    import gymnasium as gym

    import jepa_ac.envs  # noqa: F401  (registers the ids)

    kwargs: dict[str, Any] = {"image_size": config.image_size}
    if config.wrist_camera:
        kwargs["wrist_camera"] = True
    if config.exterior_view is not None:
        kwargs["exterior_view"] = config.exterior_view
    if config.max_steps is not None:
        kwargs["max_episode_steps"] = config.max_steps
    try:
        return gym.make(config.env, **kwargs)
    except gym.error.Error as err:
        raise ValueError(f"cannot make env {config.env!r}: {err}") from err


def make_generic_env(config: CollectConfig) -> Any:
    """Any registered env (`module:EnvId` imports module), rendering `image_size` frames where it can."""
    from jepa_ac.data.gym_source import make_gym_env

    return make_gym_env(config.env, config.image_size, config.max_steps)


def make_franka_expert(env: Any, noise: float, seed: int, **options: Any) -> Any:
    from jepa_ac.envs import make_expert

    return make_expert(env, noise=noise, seed=seed, **options)


def env_facts(env: Any, config: CollectConfig) -> tuple[str, float, tuple[str, ...], int]:
    """(task, control rate, cameras, steps per episode) of an env."""
    base = env.unwrapped
    max_steps = config.max_steps or (env.spec.max_episode_steps if env.spec else None)
    if not max_steps:
        raise ValueError(f"{config.env} has no registered episode length: pass --max-steps")
    return str(base.task_name), float(base.control_hz), tuple(base.camera_names), int(max_steps)


def generic_env_facts(env: Any, config: CollectConfig) -> tuple[str, float, tuple[str, ...], int]:
    """(task, control rate, cameras, steps per episode) of any env: cameras from a first observation."""
    from jepa_ac.data.gym_source import GymHooks, control_rate, observation_frames

    max_steps = config.max_steps or (env.spec.max_episode_steps if env.spec else None)
    if not max_steps:
        raise ValueError(f"{config.env} has no registered episode length: pass --max-steps")
    env_id = config.env.rpartition(":")[2]
    task = config.task or env_id.split("/")[-1].rsplit("-v", 1)[0]
    obs, _ = env.reset(seed=config.seed)
    cameras = tuple(observation_frames(obs, env, GymHooks.load(frame=config.frame)))
    return task, config.fps or control_rate(env), cameras, int(max_steps)


def _camera_frames(obs: dict[str, Any], cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
    # obs["image"] is the first (exterior) camera; further cameras come as "<camera>_image"
    frames = {cameras[0]: obs["image"]}
    for cam in cameras[1:]:
        if f"{cam}_image" in obs:
            frames[cam] = obs[f"{cam}_image"]
    return frames


# -- one episode ------------------------------------------------------------------------------


def rollout(env: Any, expert: Any, seed: int, max_steps: int, cameras: tuple[str, ...],
            stop_on_success: bool = False) -> tuple[EpisodeData, bool]:
    """Run the expert for up to `max_steps` steps -> (rows of the episode, final success)."""
    obs, info = env.reset(seed=seed)
    expert.reset()
    space = env.action_space
    rows: list[tuple[dict, dict]] = [(obs, info)]
    actions, targets, wall_ms = [], [], [int(time.time() * 1000)]
    for _ in range(max_steps):
        action = np.clip(np.asarray(expert.act(obs), np.float64), space.low, space.high)  # what the env applies
        obs, _, terminated, truncated, info = env.step(action)
        actions.append(action)
        targets.append(info.get("commanded_state"))
        rows.append((obs, info))
        wall_ms.append(int(time.time() * 1000))
        if terminated or truncated or (stop_on_success and info.get("success")):
            break
    t = len(rows)
    states = np.stack([np.concatenate([r[1]["cartesian_position"], [r[1]["gripper_position"]]]) for r in rows])
    actions.append(np.zeros(7))  # nothing is sent from the last row
    if any(x is None for x in targets):
        target_rows = None
    else:
        target_rows = np.concatenate([np.stack(targets), states[-1:]])  # last row: hold
    frames = [_camera_frames(r[0], cameras) for r in rows]
    episode = EpisodeData(
        frames={cam: np.stack([f[cam] for f in frames]) for cam in frames[0]},
        cartesian_position=states[:, pose.CARTESIAN],
        gripper_position=states[:, pose.GRIPPER],
        joint_positions=np.stack([np.asarray(r[1]["joint_positions"], np.float64) for r in rows]),
        camera_extrinsics={cam: np.stack([np.asarray(r[1]["camera_extrinsics"][cam], np.float64) for r in rows])
                           for cam in frames[0]},
        actions=np.stack(actions),
        sim_time=np.arange(t) / float(env.unwrapped.control_hz),
        wall_time_ms=np.asarray(wall_ms, np.int64),
        targets=target_rows,
    )
    return episode, bool(info.get("success", False))


_WORKER: dict[str, Any] = {}  # per process: the env, made once


def collect_episode(config: CollectConfig, info: DatasetInfo, index: int,
                    make_env: EnvFactory | None = None,
                    make_expert: ExpertFactory = make_franka_expert) -> dict[str, Any]:
    """Roll out and write episode `index`; returns its summary row."""
    make_env = make_env or (make_generic_env if config.generic else make_franka_env)
    if _WORKER.get("key") != (config, make_env):
        if "env" in _WORKER:
            _WORKER["env"].close()
        _WORKER.update(key=(config, make_env), env=make_env(config))
    env = _WORKER["env"]
    seed = episode_seed(config.seed, index)
    start = time.perf_counter()
    if config.generic:
        from jepa_ac.data.gym_source import GymHooks, gym_rollout

        hooks = GymHooks.load(state=config.state, policy=config.policy, frame=config.frame, success=config.success)
        episode, success = gym_rollout(env, hooks, seed, info.max_steps, config.image_size, config.stop_on_success,
                                       fps=info.fps)
        extra = {"episode_index": index, "image_size": config.image_size, **command_fields("env")}
    else:
        expert = make_expert(env, config.noise, seed, **config.expert_options)
        episode, success = rollout(env, expert, seed, info.max_steps, info.cameras, config.stop_on_success)
        extra = {"episode_index": index, "noise": config.noise, "image_size": config.image_size,
                 "exterior_view": config.exterior_view, **command_fields("delta_pose")}
        if config.expert_options:
            extra["expert_options"] = dict(config.expert_options)
    uuid = f"jepa_ac+{info.task}+s{config.seed}-{index:06d}"
    meta = EpisodeMeta(uuid=uuid, fps=info.fps, task=info.task, success=success, env_id=config.env, seed=seed,
                       extra=extra)
    write_episode(config.out, episode_name(index), episode, meta, crf=config.crf)
    return {"index": index, "uuid": uuid, "success": success, "length": episode.length,
            "seconds": round(time.perf_counter() - start, 3)}


# -- the dataset ------------------------------------------------------------------------------


def prepare_out_dir(config: CollectConfig, info: DatasetInfo) -> dict[int, dict[str, Any]]:
    """Create or check `out`, remove unfinished writes; -> {index: summary row} of complete episodes."""
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    info_path = out / layout.DATASET_INFO_FILE
    if info_path.exists():
        existing = DatasetInfo.load(info_path)
        ours, theirs = info.to_dict(), existing.to_dict()
        differ = [k for k in ours if k not in ("features", "control") and ours[k] != theirs[k]]
        if differ:
            k = differ[0]
            raise ValueError(f"{out} was collected with {k}={theirs[k]!r}, this run has {k}={ours[k]!r}: "
                             "refusing to mix datasets (use another --out)")
    else:
        write_json_atomic(info_path, info.to_dict())
    for name in remove_unfinished(out):
        print(f"removed unfinished episode {name}", file=sys.stderr)
    done = {}
    for index in range(config.episodes):
        folder = out / episode_name(index)
        if folder.exists():
            try:
                metadata = read_metadata(folder)
            except ValueError as err:
                raise ValueError(f"{folder} exists but is not a complete episode ({err}); delete it to re-collect") from err
            done[index] = {"index": index, "uuid": metadata["uuid"], "success": bool(metadata["success"]),
                           "length": int(metadata["trajectory_length"]), "seconds": None}
    return done


def collect(config: CollectConfig, make_env: EnvFactory | None = None,
            make_expert: ExpertFactory = make_franka_expert, progress: bool = True) -> dict[str, Any]:
    """Collect (or finish collecting) `config.episodes` episodes into `config.out`; returns the summary."""
    from tqdm import tqdm

    from jepa_ac.data.contract import contract_for_dataset

    if make_env is None and not config.generic and not config.env.startswith("jepa_ac/"):
        raise ValueError(f"{config.env} has no scripted expert (those drive the jepa_ac/ Franka envs): record it "
                         "with your own hooks, e.g. --policy my_hooks:policy --state my_hooks:state")
    if config.generic:  # a typo in a hook fails here, before any env is made
        from jepa_ac.data.gym_source import GymHooks
        from jepa_ac.data.hooks import load_hook

        GymHooks.load(state=config.state, policy=config.policy, frame=config.frame, success=config.success)
        if config.goal is not None:
            load_hook(config.goal, "--goal")
    make_env = make_env or (make_generic_env if config.generic else make_franka_env)
    probe = make_env(config)
    try:
        task, fps, cameras, max_steps = (generic_env_facts if config.generic else env_facts)(probe, config)
    except BaseException:
        probe.close()
        raise
    if config.exterior_view is None:  # record the view the env used, so the dataset says it even if the default moves
        view = getattr(getattr(probe.unwrapped, "config", None), "exterior_view", None)
        config = replace(config, exterior_view=view) if isinstance(view, str) else config
    if config.workers == 1:  # collect with this env instead of building a second one
        _WORKER.update(key=(config, make_env), env=probe)
    else:
        probe.close()
    try:
        if config.generic:
            hooks = {name: getattr(config, name) for name in HOOK_NAMES if getattr(config, name)}
            command_dim = int(np.prod(probe.action_space.shape)) if probe.action_space.shape else None
            info = DatasetInfo(env_id=config.env, task=task, fps=fps, image_size=config.image_size, cameras=cameras,
                               noise=0.0, seed=config.seed, max_steps=max_steps,
                               features=droid_features(cameras, config.image_size, joints=False, extrinsics=False,
                                                       command_dim=command_dim),
                               env_options=hooks)
        else:
            if not config.wrist_camera:
                cameras = tuple(c for c in cameras if "wrist" not in c.lower()) or cameras
            info = DatasetInfo(env_id=config.env, task=task, fps=fps, image_size=config.image_size, cameras=cameras,
                               noise=config.noise, seed=config.seed, max_steps=max_steps,
                               features=droid_features(cameras, config.image_size),
                               env_options={} if config.exterior_view is None else {"exterior_view": config.exterior_view},
                               expert_options=config.expert_options)
        rows = prepare_out_dir(config, info)
        todo = [i for i in range(config.episodes) if i not in rows]
        start = time.perf_counter()
        bar = tqdm(total=config.episodes, initial=len(rows), desc=f"collect {task}", unit="ep", disable=not progress)
        if config.workers == 1 or len(todo) <= 1:
            for index in todo:
                rows[index] = collect_episode(config, info, index, make_env, make_expert)
                bar.update(1)
        else:
            with worker_pool(config.workers) as pool:
                futures = [pool.submit(collect_episode, config, info, i, make_env, make_expert) for i in todo]
                for future in as_completed(futures):
                    row = future.result()
                    rows[row["index"]] = row
                    bar.update(1)
        bar.close()
    finally:
        if "env" in _WORKER:
            _WORKER.pop("env").close()
            _WORKER.pop("key", None)
    elapsed = time.perf_counter() - start
    ordered = [rows[i] for i in range(config.episodes)]
    folders = [config.out / episode_name(i) for i in range(config.episodes)]
    who = f"policy {config.policy or 'random'}" if config.generic else f"scripted expert, noise {config.noise}"
    write_trajectory_list(config.out / layout.TRAJECTORY_LIST_FILE, folders,
                          header=f"{config.env} {who}, seed {config.seed}")
    info = replace(info, control=contract_for_dataset(folders, control_hz=fps))
    write_json_atomic(config.out / layout.DATASET_INFO_FILE, info.to_dict())
    successes = sum(r["success"] for r in ordered)
    new_steps = sum(rows[i]["length"] - 1 for i in todo)
    summary = {
        "env_id": config.env, "task": task, "episodes": config.episodes, "successes": successes,
        "success_rate": successes / config.episodes, "collected_now": len(todo),
        "resumed": config.episodes - len(todo), "fps": fps, "image_size": config.image_size,
        "noise": config.noise, "seed": config.seed, "workers": config.workers, "exterior_view": config.exterior_view,
        "seconds": round(elapsed, 2), "steps_per_second": round(new_steps / elapsed, 2) if todo and elapsed > 0 else None,
        "mean_length": float(np.mean([r["length"] for r in ordered])),
        "control": info.control.to_dict(),
        "per_episode": ordered,
    }
    write_json_atomic(config.out / layout.SUMMARY_FILE, summary)
    return summary
