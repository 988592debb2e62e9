"""Write one episode in DROID's raw layout, atomically.

    episode = EpisodeData(frames={"ext1": frames}, cartesian_position=..., gripper_position=...,
                          joint_positions=..., camera_extrinsics={"ext1": ...}, actions=..., sim_time=...)
    write_episode(out_dir, "episode_000000", episode, EpisodeMeta(uuid=..., fps=15.0, ...))

Everything is written into a hidden temp folder next to the destination (`.tmp-<name>-...`),
each file fsynced, the metadata JSON last, then the folder is renamed into place. A crash at any
point leaves either the complete episode or a hidden temp folder without metadata, which the
reader never picks up (and `collect` removes on resume).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from jepa_ac.model import pose
from jepa_ac.data import layout
from jepa_ac.data.video import DEFAULT_CRF, write_mp4
from jepa_ac.files import fsync_path, temp_name

H5_VERSION_NUMBER = 1.3  # DROID's trajectory.h5 `version_number` attr for the layout written here


@dataclass(frozen=True)
class EpisodeData:
    """One episode's rows (T control steps). Row t: the observation at step t and the action sent from it.

    `actions` are V-JEPA 2-AC deltas (`jepa_ac.model.pose` convention); the last row of a finished
    episode has no action sent from it and holds zeros ("stay"). None: the achieved moves between
    consecutive states. DROID's absolute targets (`action/cartesian_position`,
    `action/gripper_position`) are `targets` (the command the controller received, e.g. after
    workspace clipping), or state + action when not given. `commands` are the env's or robot's own
    command vectors as sent (stored as `action/command`), for robots that are not commanded in
    deltas. Joints and extrinsics are optional (V-JEPA 2-AC reads neither unless trained with
    extrinsics); `sim_time` None means row / fps.
    """

    frames: Mapping[str, np.ndarray]  # camera -> [T, H, W, 3] uint8
    cartesian_position: np.ndarray  # [T, 6] xyz + extrinsic xyz Euler (rad)
    gripper_position: np.ndarray  # [T] closedness in [0, 1]
    joint_positions: np.ndarray | None = None  # [T, 7]
    camera_extrinsics: Mapping[str, np.ndarray] | None = None  # camera -> [T, 6]
    actions: np.ndarray | None = None  # [T, 7]
    sim_time: np.ndarray | None = None  # [T] seconds since reset
    wall_time_ms: np.ndarray | None = None  # [T] int64 unix ms when each step started
    targets: np.ndarray | None = None  # [T, 7] absolute command sent at row t; None = state + action
    commands: np.ndarray | None = None  # [T, k] the env's / robot's own command sent at row t

    def __post_init__(self) -> None:
        if not self.frames:
            raise ValueError("EpisodeData.frames must hold at least one camera")
        t = len(self.cartesian_position)
        if t < 1:
            raise ValueError("EpisodeData must have at least one row")
        expected: dict[str, tuple[int, ...]] = {"cartesian_position": (t, 6), "gripper_position": (t,)}
        for name, shape in (("joint_positions", (t, 7)), ("actions", (t, 7)), ("sim_time", (t,)),
                            ("wall_time_ms", (t,)), ("targets", (t, 7))):
            if getattr(self, name) is not None:
                expected[name] = shape
        if self.commands is not None:
            commands = np.asarray(self.commands)
            if commands.ndim != 2 or len(commands) != t:
                raise ValueError(f"EpisodeData.commands must have shape [{t}, k], got {list(commands.shape)}")
            expected["commands"] = commands.shape
        for name, shape in expected.items():
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise ValueError(f"EpisodeData.{name} must have shape {list(shape)}, got {list(value.shape)}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"EpisodeData.{name} contains NaN or inf")
        for cam, frames in self.frames.items():
            frames = np.asarray(frames)
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != t or frames.shape[-1] != 3:
                raise ValueError(
                    f"EpisodeData.frames[{cam!r}] must be uint8 [{t}, H, W, 3], got {frames.dtype} {list(frames.shape)}"
                )
            if "/" in cam or not cam:
                raise ValueError(f"camera name {cam!r} must be non-empty and contain no '/'")
        if self.camera_extrinsics is not None:
            missing = set(self.frames) - set(self.camera_extrinsics)
            if missing:
                raise ValueError(f"EpisodeData.camera_extrinsics lacks cameras {sorted(missing)}")
            for cam, ext in self.camera_extrinsics.items():
                if np.asarray(ext).shape != (t, 6):
                    raise ValueError(f"EpisodeData.camera_extrinsics[{cam!r}] must have shape [{t}, 6], got {list(np.shape(ext))}")

    @property
    def length(self) -> int:
        return len(self.cartesian_position)

    @property
    def states(self) -> np.ndarray:
        """[T, 7] = cartesian_position ++ gripper_position."""
        return np.concatenate([np.asarray(self.cartesian_position, np.float64),
                               np.asarray(self.gripper_position, np.float64)[:, None]], axis=1)

    def delta_actions(self) -> np.ndarray:
        """[T, 7] the `actions`, or the achieved moves (last row zeros) when none were given."""
        if self.actions is not None:
            return np.asarray(self.actions, np.float64)
        moves = pose.actions_from_states(self.states)  # [T-1, 7]
        return np.concatenate([moves, np.zeros((1, 7))])


@dataclass(frozen=True)
class EpisodeMeta:
    """Per-episode facts that go into `metadata_<uuid>.json` and the h5 attrs."""

    uuid: str
    fps: float
    task: str
    success: bool
    env_id: str = ""
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.uuid or any(c in self.uuid for c in "/\\ "):
            raise ValueError(f"EpisodeMeta.uuid must be non-empty without '/', '\\' or spaces, got {self.uuid!r}")
        if not self.fps > 0:
            raise ValueError(f"EpisodeMeta.fps must be > 0, got {self.fps!r}")


def left_camera(cameras: list[str] | tuple[str, ...]) -> str:
    """The camera stored as `left_mp4_path`: the first exterior (non-wrist) camera."""
    exterior = [c for c in cameras if "wrist" not in c.lower()]
    if not exterior:
        raise ValueError(f"no exterior camera among {list(cameras)}: V-JEPA 2-AC trains on an exterior view")
    return exterior[0]


def metadata_record(episode: EpisodeData, meta: EpisodeMeta) -> dict[str, Any]:
    """DROID's metadata fields (paths relative to the episode folder) plus ours."""
    now = datetime.datetime.now(datetime.timezone.utc)
    cameras = list(episode.frames)
    exterior = [c for c in cameras if "wrist" not in c.lower()]
    record: dict[str, Any] = {
        "uuid": meta.uuid,
        "lab": "jepa_ac-sim",
        "user": "scripted_expert",
        "date": now.strftime("%Y-%m-%d"),
        "timestamp": now.strftime("%Y-%m-%d-%Hh-%Mm-%Ss"),
        "hdf5_path": layout.TRAJECTORY_FILE,
        "success": bool(meta.success),
        "current_task": meta.task,
        "trajectory_length": episode.length,
        layout.LEFT_MP4_KEY: layout.mp4_relpath(left_camera(cameras)),
    }
    if len(exterior) > 1:
        record[layout.RIGHT_MP4_KEY] = layout.mp4_relpath(exterior[1])
    for i, cam in enumerate(exterior[:2]):
        record[f"ext{i + 1}_cam_serial"] = cam
        record[f"ext{i + 1}_mp4_path"] = layout.mp4_relpath(cam)
        if episode.camera_extrinsics is not None:
            record[f"ext{i + 1}_cam_extrinsics"] = np.asarray(episode.camera_extrinsics[cam][0], float).tolist()
    wrist = [c for c in cameras if "wrist" in c.lower()]
    if wrist:
        record["wrist_cam_serial"] = wrist[0]
        record[layout.WRIST_MP4_KEY] = layout.mp4_relpath(wrist[0])
    record.update({"env_id": meta.env_id, "seed": meta.seed, "fps": float(meta.fps), "cameras": cameras,
                   "codebase_version": layout.CODEBASE_VERSION})
    record.update(dict(meta.extra))
    return record


def write_episode(
    out_dir: str | Path, name: str, episode: EpisodeData, meta: EpisodeMeta, crf: int = DEFAULT_CRF
) -> Path:
    """Write `out_dir/name/` atomically; raises `FileExistsError` if it is already there."""
    out_dir = Path(out_dir)
    if not name or name.startswith(".") or "/" in name:
        raise ValueError(f"episode folder name {name!r} must be non-empty, not hidden, without '/'")
    final = out_dir / name
    if final.exists():
        raise FileExistsError(f"episode folder {final} already exists")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / temp_name(name)
    tmp.mkdir()
    try:
        _write_h5(tmp / layout.TRAJECTORY_FILE, episode, meta)
        for cam, frames in episode.frames.items():
            write_mp4(tmp / layout.mp4_relpath(cam), np.asarray(frames), meta.fps, crf=crf)
        for folder in (tmp / layout.MP4_DIR, tmp / "recordings"):
            fsync_path(folder)
        metadata_path = tmp / f"{layout.METADATA_PREFIX}{meta.uuid}.json"
        with open(metadata_path, "w") as f:  # written last: its presence marks the episode complete
            json.dump(metadata_record(episode, meta), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        fsync_path(tmp)
        os.rename(tmp, final)
        fsync_path(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_h5(path: Path, episode: EpisodeData, meta: EpisodeMeta) -> None:
    import h5py

    states = episode.states  # [T, 7]
    actions = episode.delta_actions()  # [T, 7]
    targets = pose.apply_action(states, actions) if episode.targets is None else np.asarray(episode.targets, np.float64)
    sim_time = np.arange(episode.length) / meta.fps if episode.sim_time is None else np.asarray(episode.sim_time, np.float64)
    sim_ms = np.round(sim_time * 1000).astype(np.int64)
    sim_ns = np.round(sim_time * 1e9).astype(np.int64)
    wall_ms = sim_ms if episode.wall_time_ms is None else np.asarray(episode.wall_time_ms, np.int64)
    arrays: dict[str, np.ndarray] = {
        layout.CARTESIAN_POSITION: np.asarray(episode.cartesian_position, np.float64),
        layout.GRIPPER_POSITION: np.asarray(episode.gripper_position, np.float64),
        layout.ACTION_CARTESIAN_POSITION: targets[:, pose.CARTESIAN],
        layout.ACTION_GRIPPER_POSITION: targets[:, pose.GRIPPER],
        layout.ACTION_DELTA: actions,
        f"{layout.TIMESTAMP_ROBOT}/robot_timestamp_seconds": sim_ns // 1_000_000_000,
        f"{layout.TIMESTAMP_ROBOT}/robot_timestamp_nanos": sim_ns % 1_000_000_000,
        f"{layout.TIMESTAMP_CONTROL}/step_start": wall_ms,
        layout.SKIP_ACTION: np.zeros(episode.length, bool),
        layout.CONTROLLER_SUCCESS: np.zeros(episode.length, bool),
    }
    if meta.success:
        arrays[layout.CONTROLLER_SUCCESS][-1] = True
    if episode.joint_positions is not None:
        arrays[layout.JOINT_POSITIONS] = np.asarray(episode.joint_positions, np.float64)
    if episode.commands is not None:
        arrays[layout.COMMAND] = np.asarray(episode.commands, np.float64)
    for cam in episode.frames:
        if episode.camera_extrinsics is not None:
            arrays[layout.extrinsics_key(cam)] = np.asarray(episode.camera_extrinsics[cam], np.float64)
        arrays[f"{layout.TIMESTAMP_CAMERAS}/{cam}_estimated_capture"] = sim_ms
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        f.attrs["current_task"] = meta.task
        f.attrs["success"] = bool(meta.success)
        f.attrs["failure"] = not meta.success
        f.attrs["time"] = datetime.datetime.now().strftime("%a_%b_%d_%H:%M:%S_%Y")
        f.attrs["version_number"] = H5_VERSION_NUMBER
        f.attrs["robot_serial_number"] = meta.env_id or "sim"
        f.flush()
    fsync_path(path)


def remove_unfinished(out_dir: str | Path) -> list[str]:
    """Remove the hidden temp folders of episodes a killed writer left in `out_dir` -> their names.

    Raises `RuntimeError` if one belongs to a process that is still running (another writer is
    using the folder)."""
    removed = []
    for tmp in sorted(Path(out_dir).glob(f"{layout.TEMP_PREFIX}*")):
        pid = _pid_of_temp(tmp.name)
        if pid is not None and pid != os.getpid() and _alive(pid):
            raise RuntimeError(f"{tmp} is being written by process {pid}: another writer is using {out_dir}")
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
        removed.append(tmp.name)
    return removed


def _pid_of_temp(name: str) -> int | None:
    parts = name.rsplit("-", 2)  # .tmp-<name>-<pid>-<token>
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
