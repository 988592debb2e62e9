"""Record any env or robot loop as a DROID-layout dataset that `encode_dataset` and `train_predictor` read.

    from jepa_ac.data import Recorder

    with Recorder("data/my_robot", env_id="my_lab/ur5", task="push", fps=10.0, command_space="env") as rec:
        for _ in range(20):
            obs = robot.reset()
            for _ in range(100):
                command = policy(obs)
                rec.add_step(obs["image"], to_droid_state(obs), command=command)   # row t: what was seen, what was sent
                obs = robot.step(command)
            rec.add_step(obs["image"], to_droid_state(obs))   # the final observation: nothing sent from it
            rec.end_episode(success=True)

Each `end_episode` writes `out/episode_NNNNNN/` atomically (`jepa_ac.data.writer.write_episode`),
then rewrites `dataset_info.json` and `trajectories.txt`, so a crash keeps every finished episode.
`close()` (the end of the `with` block) measures the control contract and stores it in
`dataset_info.json`. Opening a folder that already holds a recording of the same env, task, rate
and cameras appends to it (episode numbers continue); a different one is refused.

A state is DROID's `[x, y, z, roll, pitch, yaw, gripper]` in the robot base frame (m, extrinsic
xyz Euler in rad, gripper closedness 0 open .. 1 closed). `command_space` says what `command` is:
"env" (the env's or robot's own action vector, any size), "delta_pose" (V-JEPA 2-AC deltas) or
"target_pose" (absolute 7-D target states, as DROID records them); None records no commands.
Frames of one episode are held in memory until `end_episode` (H*W*3 bytes each).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from jepa_ac.model import pose
from jepa_ac.data import layout
from jepa_ac.data.layout import DatasetInfo, droid_features
from jepa_ac.data.video import DEFAULT_CRF
from jepa_ac.data.writer import EpisodeData, EpisodeMeta, remove_unfinished, write_episode
from jepa_ac.files import write_json_atomic

RECORDED_COMMAND_SPACES = ("env", "delta_pose", "target_pose")
DEFAULT_CAMERA = "exterior"


def command_fields(command_space: str | None) -> dict[str, Any]:
    """The episode metadata naming where the commands of `command_space` are stored."""
    key = {None: None, "env": layout.COMMAND, "delta_pose": layout.ACTION_DELTA,
           "target_pose": layout.ACTION_CARTESIAN_POSITION}[command_space]
    return {layout.COMMAND_KEY_FIELD: key, layout.COMMAND_SPACE_FIELD: command_space}


@dataclass
class _Row:
    frames: dict[str, np.ndarray]
    state: np.ndarray
    command: np.ndarray | None
    joints: np.ndarray | None
    extrinsics: dict[str, np.ndarray] | None
    time_s: float | None
    wall_ms: int


class EpisodeBuffer:
    """The rows of one episode as they arrive, checked as they come; `episode()` builds `EpisodeData`."""

    def __init__(self, cameras: Sequence[str] = (DEFAULT_CAMERA,)) -> None:
        if not cameras or len(set(cameras)) != len(cameras):
            raise ValueError(f"cameras must be distinct names, got {list(cameras)}")
        self.cameras = tuple(cameras)
        self.rows: list[_Row] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, frames: np.ndarray | Mapping[str, np.ndarray], state: Any, command: Any = None, *,
            joints: Any = None, extrinsics: Any = None, time_s: float | None = None) -> None:
        """One row: the frame(s) and state observed, and the command sent from them (None: nothing sent)."""
        row = len(self.rows)
        if not isinstance(frames, Mapping):
            frames = {self.cameras[0]: frames}
        if set(frames) != set(self.cameras):
            raise ValueError(f"row {row}: frames for cameras {sorted(frames)}, expected {list(self.cameras)}")
        checked = {}
        for cam in self.cameras:
            frame = np.asarray(frames[cam])
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
                raise ValueError(f"row {row}: frame of camera {cam!r} must be uint8 [H, W, 3], got {frame.dtype} {list(frame.shape)}")
            if self.rows and frame.shape != self.rows[0].frames[cam].shape:
                raise ValueError(f"row {row}: frame of camera {cam!r} is {list(frame.shape)}, earlier rows "
                                 f"{list(self.rows[0].frames[cam].shape)}")
            checked[cam] = frame.copy()
        state = pose.check_states(np.asarray(state, np.float64).reshape(-1), f"row {row}: state")
        if command is not None:
            command = np.asarray(command, np.float64).reshape(-1)
            if not np.all(np.isfinite(command)):
                raise ValueError(f"row {row}: command {command.tolist()} contains NaN or inf")
            sizes = {len(r.command) for r in self.rows if r.command is not None}
            if sizes and len(command) not in sizes:
                raise ValueError(f"row {row}: command has {len(command)} dims, earlier rows {sizes.pop()}")
        if joints is not None:
            joints = np.asarray(joints, np.float64).reshape(-1)
            if joints.shape != (7,) or not np.all(np.isfinite(joints)):
                raise ValueError(f"row {row}: joints must be 7 finite numbers, got {joints.tolist()}")
        if extrinsics is not None:
            if not isinstance(extrinsics, Mapping):
                extrinsics = {self.cameras[0]: extrinsics}
            extrinsics = {cam: np.asarray(v, np.float64).reshape(-1) for cam, v in extrinsics.items()}
            if set(extrinsics) != set(self.cameras) or any(v.shape != (6,) for v in extrinsics.values()):
                raise ValueError(f"row {row}: extrinsics must give [x, y, z, roll, pitch, yaw] for cameras {list(self.cameras)}")
        self.rows.append(_Row(checked, state, command, joints, extrinsics, time_s, int(time.time() * 1000)))

    def episode(self, command_space: str | None = None, fps: float | None = None) -> EpisodeData:
        """The rows as `EpisodeData` (commands stored as `command_space` says; see the module doc)."""
        if command_space not in (None, *RECORDED_COMMAND_SPACES):
            raise ValueError(f"command_space must be one of {RECORDED_COMMAND_SPACES} or None, got {command_space!r}")
        t = len(self.rows)
        if t < 2:
            raise ValueError(f"an episode needs at least 2 rows (a move), got {t}")
        states = np.stack([r.state for r in self.rows])  # [T, 7]
        commands = None
        if command_space is not None:
            missing = [i for i, r in enumerate(self.rows[:-1]) if r.command is None]
            if missing:
                raise ValueError(f"command_space={command_space!r} but rows {missing[:5]} have no command "
                                 "(every row but the last must say what was sent from it)")
            last = self.rows[-1].command
            commands = np.stack([r.command for r in self.rows[:-1]]
                                + [np.zeros_like(self.rows[0].command) if last is None else last])  # [T, k]
            if command_space != "env" and commands.shape[1] != 7:
                raise ValueError(f"{command_space} commands must have 7 dims, got {commands.shape[1]}")
        actions = targets = None
        if command_space == "delta_pose":
            actions = commands
        elif command_space == "target_pose":
            targets = commands.copy()
            targets[-1] = states[-1] if self.rows[-1].command is None else targets[-1]  # nothing sent: hold
            actions = pose.action_between(states, targets)
        for name in ("joints", "extrinsics", "time_s"):
            given = [getattr(r, name) is not None for r in self.rows]
            if any(given) and not all(given):
                raise ValueError(f"{name} given for some rows of the episode but not row {given.index(False)}")
        times = None
        if self.rows[0].time_s is not None:
            times = np.asarray([r.time_s for r in self.rows], np.float64)
        elif fps is not None:
            times = np.arange(t) / fps
        return EpisodeData(
            frames={cam: np.stack([r.frames[cam] for r in self.rows]) for cam in self.cameras},
            cartesian_position=states[:, pose.CARTESIAN], gripper_position=states[:, pose.GRIPPER],
            joint_positions=None if self.rows[0].joints is None else np.stack([r.joints for r in self.rows]),
            camera_extrinsics=None if self.rows[0].extrinsics is None else
            {cam: np.stack([r.extrinsics[cam] for r in self.rows]) for cam in self.cameras},
            actions=actions, sim_time=times, wall_time_ms=np.asarray([r.wall_ms for r in self.rows], np.int64),
            targets=targets, commands=commands if command_space == "env" else None,
        )


class Recorder:
    """Record episodes into a DROID-layout dataset folder (see the module doc)."""

    def __init__(self, out: str | Path, env_id: str, task: str, fps: float, cameras: Sequence[str] = (DEFAULT_CAMERA,),
                 command_space: str | None = None, seed: int = 0, env_options: Mapping[str, Any] | None = None,
                 crf: int = DEFAULT_CRF) -> None:
        if command_space not in (None, *RECORDED_COMMAND_SPACES):
            raise ValueError(f"Recorder.command_space must be one of {RECORDED_COMMAND_SPACES} or None, got {command_space!r}")
        if not fps > 0:
            raise ValueError(f"Recorder.fps must be > 0, got {fps!r}")
        if not env_id or not task:
            raise ValueError("Recorder.env_id and Recorder.task must be non-empty")
        self.out = Path(out)
        self.env_id, self.task, self.fps, self.cameras = env_id, task, float(fps), tuple(cameras)
        self.command_space, self.seed, self.crf = command_space, seed, crf
        self.env_options = dict(env_options or {})
        self.out.mkdir(parents=True, exist_ok=True)
        remove_unfinished(self.out)
        self.info: DatasetInfo | None = None
        self.episodes: list[Path] = sorted(p.parent for p in self.out.glob(f"episode_*/{layout.METADATA_PREFIX}*.json"))
        info_path = self.out / layout.DATASET_INFO_FILE
        if info_path.exists():
            self.info = DatasetInfo.load(info_path)
            self._check_same(self.info)
        self._next = 1 + max((int(p.name.rsplit("_", 1)[1]) for p in self.episodes if p.name.rsplit("_", 1)[1].isdigit()),
                             default=-1)
        self._buffer = EpisodeBuffer(self.cameras)
        self._closed = False

    def _check_same(self, info: DatasetInfo) -> None:
        ours = {"env_id": self.env_id, "task": self.task, "fps": self.fps, "cameras": self.cameras,
                "env_options": self.env_options}
        for name, value in ours.items():
            if getattr(info, name) != value:
                raise ValueError(f"{self.out} holds a recording with {name}={getattr(info, name)!r}, this one has "
                                 f"{name}={value!r}: refusing to mix datasets (use another folder)")

    # -- rows and episodes ------------------------------------------------------------------------
    def add_step(self, frames: np.ndarray | Mapping[str, np.ndarray], state: Any, command: Any = None, *,
                 joints: Any = None, extrinsics: Any = None, time: float | None = None) -> None:
        """Add row t: frames ([H, W, 3] uint8 of the first camera, or {camera: frame}), the 7-D state,
        and the command sent from this observation (None on the final row). `joints` [7],
        `extrinsics` ([6] or {camera: [6]}) and `time` (s since the episode began; default row / fps)
        are optional, but given for every row of an episode or none."""
        if self._closed:
            raise RuntimeError("Recorder is closed")
        self._buffer.add(frames, state, command, joints=joints, extrinsics=extrinsics, time_s=time)

    def end_episode(self, success: bool = False, task: str | None = None, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the episode's rows as `episode_NNNNNN/` and update the dataset files -> its folder."""
        buffer, self._buffer = self._buffer, EpisodeBuffer(self.cameras)
        episode = buffer.episode(self.command_space, self.fps)
        index = self._next
        name = layout.EPISODE_DIR_FORMAT.format(index=index)
        meta = EpisodeMeta(uuid=f"{_safe(self.env_id)}+{_safe(task or self.task)}+{time.strftime('%Y%m%d')}-{index:06d}",
                           fps=self.fps, task=task or self.task, success=bool(success), env_id=self.env_id,
                           seed=self.seed, extra={"episode_index": index, **command_fields(self.command_space),
                                                  **dict(extra or {})})
        path = write_episode(self.out, name, episode, meta, crf=self.crf)
        self._next += 1
        self.episodes.append(path)
        self._write_dataset_files(episode)
        return path

    def discard_episode(self) -> int:
        """Drop the rows added since the last `end_episode` -> how many."""
        count = len(self._buffer)
        self._buffer = EpisodeBuffer(self.cameras)
        return count

    def _write_dataset_files(self, episode: EpisodeData | None = None, measure: bool = False) -> None:
        from jepa_ac.data.reader import write_trajectory_list

        if episode is not None:
            first = next(iter(episode.frames.values()))
            size = first.shape[1] if first.shape[1] == first.shape[2] else (first.shape[1], first.shape[2])
            steps = max(episode.length - 1, self.info.max_steps if self.info else 1)
            command_dim = None if episode.commands is None else episode.commands.shape[1]
            features = droid_features(self.cameras, size, joints=episode.joint_positions is not None,
                                      extrinsics=episode.camera_extrinsics is not None, command_dim=command_dim)
            info = DatasetInfo(env_id=self.env_id, task=self.task, fps=self.fps, image_size=size, cameras=self.cameras,
                               noise=0.0, seed=self.seed, max_steps=steps, features=features,
                               env_options=self.env_options)
            self.info = info if self.info is None else replace(self.info, max_steps=steps)
        if self.info is None:
            return
        if measure:
            from jepa_ac.data.contract import contract_for_dataset

            self.info = replace(self.info, control=contract_for_dataset(self.episodes, control_hz=self.fps))
        write_json_atomic(self.out / layout.DATASET_INFO_FILE, self.info.to_dict())
        write_trajectory_list(self.out / layout.TRAJECTORY_LIST_FILE, self.episodes,
                              header=f"{self.env_id} {self.task}, recorded with jepa_ac.data.Recorder")

    def close(self) -> None:
        """Drop unfinished rows, measure the control contract and store it with the dataset info."""
        if self._closed:
            return
        self._closed = True
        self.discard_episode()
        if self.episodes:
            self._write_dataset_files(measure=True)

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()  # an exception mid-episode drops that episode; finished ones stay


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
