"""Read LeRobot datasets (v2.0 / v2.1 and v3.0: parquet + mp4) as DROID-layout episodes.

    python -m jepa_ac.encode_dataset --data ~/lerobot/my_robot --checkpoint CKPT --out my_robot.zarr
    python -m jepa_ac.train_predictor --data ~/lerobot/my_robot --encoder-checkpoint CKPT ...
    clips = DroidClips("~/lerobot/my_robot", ClipConfig(frames_per_clip=8, fps=4.0))

    source = LeRobotSource("~/lerobot/aloha", LeRobotSpec(video_key="observation.images.top", state_fn=to_droid))
    clips = DroidClips(source.episodes(), ClipConfig(...))   # a Python mapping function works in-process

Wherever the readers take a DROID-layout folder (`jepa_ac.data.reader.find_episodes`,
`open_episode`, so `DroidClips`, the latent cache, `encode_dataset`, `train_predictor`), they also
take a LeRobot dataset folder (one with `meta/info.json`) or a spec file naming one. Each
LeRobot episode is an `EpisodeRecord` whose path is a reference `<dataset or spec>/episode_NNNNNN`
(no such folder exists; trajectory lists may list them).

How a LeRobot episode maps to ours (`LeRobotSpec`; unset fields are found from `meta/info.json`):

- frames: the video feature `video_key` (default: the first one whose name does not say wrist);
  `--camera-key` may name another video feature.
- states `[x, y, z, roll, pitch, yaw, gripper]`: the columns `state_keys` concatenated, then
  `state_indices` picked (7 of them), or `state_fn(columns) -> [T, 7]` ("module:function" or, in
  Python, any callable; `columns` maps every non-video feature to its [T, ...] array). Default:
  DROID's release layout (`observation.state.cartesian_position` + `.gripper_position`) when
  present, else `observation.state` if it has 7 entries.
- commands, for the control contract only: `command_keys` concatenated, read as `command_space`
  ("env", "delta_pose" or "target_pose"); default none (DROID's release: its absolute targets).

A spec file is JSON: {"format": "jepa_ac.lerobot_source", "root": "path (relative to the file)",
 "video_key": ..., "state_keys": [...], "state_indices": [...], "state_fn": "module:function",
 "command_keys": [...], "command_space": ..., "cache_dir": ...}; pass the file where a dataset
folder goes.

v3.0 keeps many episodes per video file. The first time an episode is opened its packets are
copied, without re-encoding, into its own file under `<dataset>/.jepa_ac_cache/` (or `cache_dir`,
or `$JEPA_AC_LEROBOT_CACHE`; `~/.cache/jepa_ac/lerobot` if the dataset is read-only), so a clip
decodes from the episode's first frame rather than the file's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from jepa_ac.model import pose
from jepa_ac.data import layout
from jepa_ac.files import temp_name
from jepa_ac.data.episode import EpisodeCommands, EpisodeError, EpisodeRecord, usable_frames

logger = logging.getLogger(__name__)

# -- LeRobot's on-disk names (lerobot/datasets/utils.py) ---------------------------------------------
INFO_PATH = "meta/info.json"
V2_EPISODES_PATH = "meta/episodes.jsonl"  # v2.x: {"episode_index", "tasks", "length"} per line
V3_EPISODES_DIR = "meta/episodes"  # v3.0: chunk-XXX/file-XXX.parquet, one row per episode
SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")
VIDEO_DTYPE = "video"
EPISODE_INDEX = "episode_index"
FRAME_INDEX = "frame_index"
DEFAULT_STATE_KEY = "observation.state"
# DROID as LeRobot publishes it (lerobot/droid_1.0.1)
DROID_STATE_KEYS = ("observation.state.cartesian_position", "observation.state.gripper_position")
DROID_COMMAND_KEYS = ("action.cartesian_position", "action.gripper_position")

# -- ours --------------------------------------------------------------------------------------------
SPEC_FORMAT = "jepa_ac.lerobot_source"
CACHE_DIR = ".jepa_ac_cache"
CACHE_ENV = "JEPA_AC_LEROBOT_CACHE"
COMMAND_SPACES = ("env", "delta_pose", "target_pose")
EPISODE_REF = re.compile(r"episode_(\d{6,})")  # layout.EPISODE_DIR_FORMAT


@dataclass(frozen=True)
class LeRobotSpec:
    """How a LeRobot dataset's features map to DROID episodes (see the module doc); None = found."""

    video_key: str | None = None
    state_keys: tuple[str, ...] | None = None
    state_indices: tuple[int, ...] | None = None
    state_fn: str | Callable[[Mapping[str, np.ndarray]], Any] | None = None
    command_keys: tuple[str, ...] | None = None
    command_space: str = "env"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("state_keys", "state_indices", "command_keys"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                    raise ValueError(f"LeRobotSpec.{name} must be a list, got {value!r}")
                object.__setattr__(self, name, tuple(value))
        if self.state_indices is not None and len(self.state_indices) != 7:
            raise ValueError(f"LeRobotSpec.state_indices must pick 7 entries (x, y, z, roll, pitch, yaw, gripper), "
                             f"got {len(self.state_indices)}")
        if self.state_fn is not None and (self.state_indices is not None or self.state_keys is not None):
            raise ValueError("LeRobotSpec.state_fn replaces state_keys / state_indices: give one or the other")
        if isinstance(self.state_fn, str) and ":" not in self.state_fn:
            raise ValueError(f"LeRobotSpec.state_fn must be module:function, got {self.state_fn!r}")
        if self.command_space not in COMMAND_SPACES:
            raise ValueError(f"LeRobotSpec.command_space must be one of {COMMAND_SPACES}, got {self.command_space!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "LeRobot spec") -> "LeRobotSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown fields {unknown}; known: {sorted(known)}")
        return cls(**values)


def read_spec_file(path: str | Path) -> tuple[Path, LeRobotSpec]:
    """A spec file -> (dataset folder, spec)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a readable JSON spec ({err})") from None
    if not isinstance(values, dict) or values.pop("format", None) != SPEC_FORMAT:
        raise ValueError(f"{path}: a LeRobot spec file needs \"format\": \"{SPEC_FORMAT}\"")
    if "root" not in values:
        raise ValueError(f"{path}: a LeRobot spec file needs \"root\", the dataset folder")
    root = Path(values.pop("root")).expanduser()
    return (root if root.is_absolute() else path.parent / root), LeRobotSpec.from_dict(values, str(path))


# -- telling LeRobot data apart (the reader's hooks call these) ------------------------------------------


def is_lerobot_dataset(path: str | Path) -> bool:
    """A folder with a LeRobot `meta/info.json` of a supported codebase version."""
    info = Path(path) / INFO_PATH
    if not info.is_file():
        return False
    try:
        version = json.loads(info.read_text()).get("codebase_version", "")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(version, str) and version.startswith(("v2", "v3"))


def is_lerobot_source(path: str | Path) -> bool:
    """A LeRobot dataset folder or a LeRobot spec file."""
    path = Path(path).expanduser()
    if path.is_dir():
        return is_lerobot_dataset(path)
    if path.suffix == ".json" and path.is_file():
        try:
            return json.loads(path.read_text()).get("format") == SPEC_FORMAT
        except (OSError, ValueError, AttributeError):
            return False
    return False


def is_lerobot_episode(path: str | Path) -> bool:
    """An episode reference `<LeRobot dataset or spec>/episode_NNNNNN`."""
    path = Path(path)
    return bool(EPISODE_REF.fullmatch(path.name)) and not path.exists() and is_lerobot_source(path.parent)


_SOURCES: dict[str, tuple[float, "LeRobotSource"]] = {}  # opened in this process: resolved path -> (mtime, source)


def open_source(path: str | Path) -> "LeRobotSource":
    """The source of a dataset folder or spec file (opened once per process, again if it changed)."""
    path = Path(path).expanduser()
    key = str(path.resolve())
    stamp = (path / INFO_PATH if path.is_dir() else path).stat().st_mtime
    cached = _SOURCES.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    if path.is_dir():
        source = LeRobotSource(path, ref_base=path)
    else:
        root, spec = read_spec_file(path)
        source = LeRobotSource(root, spec, ref_base=path)
    _SOURCES[key] = (stamp, source)
    return source


def find_lerobot_episodes(path: str | Path) -> list[Path]:
    return open_source(path).episodes()


def open_lerobot_episode(ref: str | Path, camera_key: str = layout.LEFT_MP4_KEY) -> EpisodeRecord:
    ref = Path(ref)
    return open_source(ref.parent).open_episode(int(EPISODE_REF.fullmatch(ref.name).group(1)), camera_key)


def load_lerobot_episode(ref: str | Path, camera_key: str = layout.LEFT_MP4_KEY) -> dict[str, Any]:
    """As `jepa_ac.data.reader.load_episode`: frames, states, actions, and every non-video column ("arrays")."""
    from jepa_ac.data.video import read_mp4

    record = open_lerobot_episode(ref, camera_key)
    source = open_source(Path(ref).parent)
    frames = read_mp4(record.mp4_path, np.arange(record.num_frames))
    return {"frames": frames, "states": record.states, "actions": pose.actions_from_states(record.states),
            "arrays": source.columns(record.metadata["lerobot"]["episode_index"]), "metadata": record.metadata,
            "fps": record.fps, "camera": record.camera}


def lerobot_commands(record: EpisodeRecord) -> Any:
    """The commands of an opened LeRobot episode (`jepa_ac.data.episode.EpisodeCommands`) or None."""
    return open_source(Path(record.path).parent).commands(record)


# -- one dataset ---------------------------------------------------------------------------------------


class LeRobotSource:
    """A LeRobot dataset read through a `LeRobotSpec`: episode references, columns, states, videos."""

    def __init__(self, root: str | Path, spec: LeRobotSpec | None = None, ref_base: str | Path | None = None) -> None:
        self.root = Path(root).expanduser()
        if not (self.root / INFO_PATH).is_file():
            raise FileNotFoundError(f"{self.root} is not a LeRobot dataset (no {INFO_PATH})")
        self.info = json.loads((self.root / INFO_PATH).read_text())
        self.version = str(self.info.get("codebase_version", ""))
        if self.version not in SUPPORTED_VERSIONS:
            raise ValueError(f"{self.root}: LeRobot codebase_version {self.version!r}; this reader reads {SUPPORTED_VERSIONS}")
        self.ref_base = Path(ref_base) if ref_base is not None else self.root
        self.fps = float(self.info["fps"])
        self.features: dict[str, Any] = self.info["features"]
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == VIDEO_DTYPE]
        if not self.video_keys:
            raise ValueError(f"{self.root}: no video features (image-only LeRobot datasets are not supported)")
        self.spec = self._resolve(spec or LeRobotSpec())
        self.meta = self._read_episodes()  # {episode_index: its row of meta/episodes}
        self._state_fn = self._load_state_fn()
        self._table: tuple[Path, Any, np.ndarray] | None = None  # the last data file read (v3 holds many episodes)

    # -- the mapping --------------------------------------------------------------------------------
    def _resolve(self, spec: LeRobotSpec) -> LeRobotSpec:
        """Fill unset fields from the features; a mapping that cannot give 7-D states is an error now."""
        features = self.features
        video = spec.video_key or next((k for k in self.video_keys if "wrist" not in k.lower()), self.video_keys[0])
        if video not in self.video_keys:
            raise ValueError(f"{self.root}: video_key {video!r} is not a video feature; they are {self.video_keys}")
        droid = all(k in features for k in DROID_STATE_KEYS)
        state_keys, commands, space = spec.state_keys, spec.command_keys, spec.command_space
        if spec.state_fn is None and state_keys is None:
            state_keys = DROID_STATE_KEYS if droid else (DEFAULT_STATE_KEY,)
            if droid and commands is None and all(k in features for k in DROID_COMMAND_KEYS):
                commands, space = DROID_COMMAND_KEYS, "target_pose"
        for key in (*(state_keys or ()), *(commands or ())):
            if key not in features:
                raise ValueError(f"{self.root}: no feature {key!r}; features are {sorted(features)}")
        if spec.state_fn is None:
            width = sum(int(np.prod(features[k]["shape"])) for k in state_keys)
            if spec.state_indices is not None:
                bad = [i for i in spec.state_indices if not -width <= i < width]
                if bad:
                    raise ValueError(f"{self.root}: state_indices {bad} are outside the {width} state entries of {list(state_keys)}")
            elif width != 7:
                names = {k: features[k].get("names") for k in state_keys}
                raise ValueError(
                    f"{self.root}: {list(state_keys)} hold {width} entries ({names}), not the 7 of a DROID state "
                    "[x, y, z, roll, pitch, yaw, gripper]: give state_indices, state_keys or a state_fn "
                    "(a LeRobotSpec, or a spec file; see jepa_ac.data.lerobot)")
        return dataclasses.replace(spec, video_key=video, state_keys=state_keys, command_keys=commands or (),
                                   command_space=space)

    def _load_state_fn(self) -> Callable[[Mapping[str, np.ndarray]], Any] | None:
        fn = self.spec.state_fn
        if isinstance(fn, str):
            from jepa_ac.data.hooks import load_hook

            return load_hook(fn, f"{self.root}: state_fn")
        return fn

    def video_key(self, camera_key: str = layout.LEFT_MP4_KEY) -> str:
        """The video feature a reader's camera key means: the spec's for DROID's left camera key."""
        if camera_key == layout.LEFT_MP4_KEY:
            return self.spec.video_key
        if camera_key not in self.video_keys:
            raise EpisodeError(f"camera {camera_key!r} is not a video feature of {self.root}; they are {self.video_keys}")
        return camera_key

    # -- episodes -------------------------------------------------------------------------------------
    def _read_episodes(self) -> dict[int, dict[str, Any]]:
        if self.version.startswith("v2"):
            path = self.root / V2_EPISODES_PATH
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            pq = _pyarrow_parquet()
            rows = []
            for path in sorted((self.root / V3_EPISODES_DIR).glob("*/*.parquet")):
                names = pq.read_schema(path).names
                rows += pq.read_table(path, columns=[n for n in names if not n.startswith("stats/")]).to_pylist()
        if not rows:
            raise ValueError(f"{self.root}: no episodes listed in its meta folder")
        return {int(row[EPISODE_INDEX]): row for row in rows}

    def episodes(self) -> list[Path]:
        """References of every episode, in index order (and this source answers for them in this process)."""
        key = str(self.ref_base.resolve())
        stamp = (self.ref_base / INFO_PATH if self.ref_base.is_dir() else self.ref_base).stat().st_mtime
        _SOURCES[key] = (stamp, self)
        return [self.ref_base / layout.EPISODE_DIR_FORMAT.format(index=i) for i in sorted(self.meta)]

    def columns(self, index: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The episode's rows of the non-video features `keys` (default all) -> {key: [T, ...]}."""
        pq = _pyarrow_parquet()
        if index not in self.meta:
            raise EpisodeError(f"{self.root} has no episode {index}")
        episode = self.meta[index]
        if self.version.startswith("v2"):
            path = self.root / self.info["data_path"].format(episode_chunk=index // int(self.info.get("chunks_size", 1000)),
                                                             episode_index=index)
        else:
            path = self.root / self.info["data_path"].format(chunk_index=int(episode["data/chunk_index"]),
                                                             file_index=int(episode["data/file_index"]))
        if self._table is None or self._table[0] != path:
            if not path.is_file():
                raise EpisodeError(f"data file {path.relative_to(self.root)} is missing")
            try:
                table = pq.read_table(path)
            except Exception as err:  # pyarrow raises its own types for damaged files
                raise EpisodeError(f"data file {path.name} is unreadable: {err}") from None
            self._table = (path, table, np.asarray(table.column(EPISODE_INDEX).to_numpy()))
        _, table, episode_of_row = self._table
        rows = np.flatnonzero(episode_of_row == index)
        if not len(rows):
            raise EpisodeError(f"data file {path.name} holds no rows of episode {index}")
        order = np.argsort(np.asarray(table.column(FRAME_INDEX).take(rows).to_numpy()), kind="stable")
        rows = rows[order]
        wanted = keys if keys is not None else [k for k in table.column_names
                                                 if self.features.get(k, {}).get("dtype") not in (VIDEO_DTYPE, "image")]
        missing = [k for k in wanted if k not in table.column_names]
        if missing:
            raise EpisodeError(f"data file {path.name} lacks columns {missing}")
        return {k: _to_numpy(table.column(k).take(rows)) for k in wanted}

    def states(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """[T, 7] DROID states of an episode's columns, through the spec."""
        if self._state_fn is not None:
            states = np.asarray(self._state_fn(columns), np.float64)
            t = len(next(iter(columns.values())))
            if states.shape != (t, 7):
                raise EpisodeError(f"state_fn returned shape {list(states.shape)}, expected [{t}, 7]")
            return states
        parts = [np.asarray(columns[k], np.float64).reshape(len(columns[k]), -1) for k in self.spec.state_keys]
        states = np.concatenate(parts, axis=1)  # [T, S]
        return states[:, list(self.spec.state_indices)] if self.spec.state_indices is not None else states

    def open_episode(self, index: int, camera_key: str = layout.LEFT_MP4_KEY) -> EpisodeRecord:
        """Validate one episode and load its states; `EpisodeError` says what is wrong."""
        key = self.video_key(camera_key)
        needed = None if self._state_fn is not None else list(self.spec.state_keys)
        states = self.states(self.columns(index, needed))  # checked by the reader, with its caller's ranges
        mp4 = self.episode_video(index, key)
        video, n = usable_frames(mp4, len(states), f"LeRobot episode {index} of {self.root}")
        tasks = self.meta[index].get("tasks") or []
        ref = self.ref_base / layout.EPISODE_DIR_FORMAT.format(index=index)
        metadata = {"uuid": f"lerobot+{self.root.name}+episode_{index:06d}", "current_task": tasks[0] if tasks else "",
                    "trajectory_length": n, "fps": self.fps,
                    "lerobot": {"root": str(self.root), "codebase_version": self.version, "episode_index": index,
                                "video_key": key, "robot_type": self.info.get("robot_type")}}
        return EpisodeRecord(ref, metadata["uuid"], key, mp4, self.fps, states[:n], metadata)

    def commands(self, record: EpisodeRecord) -> Any:
        """The spec's command columns of an opened episode as `EpisodeCommands` (None if the spec has none)."""
        if not self.spec.command_keys:
            return None
        columns = self.columns(record.metadata["lerobot"]["episode_index"], list(self.spec.command_keys))
        n = record.num_frames
        values = np.concatenate([np.asarray(columns[k], np.float64).reshape(len(columns[k]), -1)
                                 for k in self.spec.command_keys], axis=1)[:n]  # [T, k]
        source = "lerobot:" + "+".join(self.spec.command_keys)
        if self.spec.command_space == "env":
            return EpisodeCommands(values, "env", source)
        if values.shape[1] != 7:
            raise ValueError(f"{self.root}: {self.spec.command_space} commands {list(self.spec.command_keys)} have "
                             f"{values.shape[1]} entries, not 7")
        if self.spec.command_space == "target_pose":
            values = pose.action_between(record.states, values)
        return EpisodeCommands(values, "delta_pose", source)

    # -- videos ---------------------------------------------------------------------------------------
    def episode_video(self, index: int, key: str) -> Path:
        """An mp4 holding exactly the episode's frames of video `key`, from frame 0."""
        from jepa_ac.data.video import probe_mp4

        episode = self.meta[index]
        if self.version.startswith("v2"):
            path = self.root / self.info["video_path"].format(
                episode_chunk=index // int(self.info.get("chunks_size", 1000)), video_key=key, episode_index=index)
            if not path.is_file():
                raise EpisodeError(f"video {path.relative_to(self.root)} is missing")
            return path
        chunk, file = int(episode[f"videos/{key}/chunk_index"]), int(episode[f"videos/{key}/file_index"])
        start = float(episode[f"videos/{key}/from_timestamp"])
        path = self.root / self.info["video_path"].format(video_key=key, chunk_index=chunk, file_index=file)
        if not path.is_file():
            raise EpisodeError(f"video {path.relative_to(self.root)} is missing")
        length = int(episode["length"])
        if start < 0.5 / self.fps and probe_mp4(path).num_frames == length:
            return path  # the file is this episode alone
        cut = self.cache_dir() / "videos" / key / f"episode_{index:06d}-c{chunk:03d}f{file:03d}-{round(start * 1e6)}us.mp4"
        if not cut.is_file():
            try:
                cut_video(path, cut, start, length, self.fps)
            except (OSError, ValueError) as err:
                raise EpisodeError(f"cannot cut episode {index} out of {path.name}: {err}") from None
        return cut

    def cache_dir(self) -> Path:
        """Where cut v3 episode videos go (see the module doc)."""
        if self.spec.cache_dir:
            return Path(self.spec.cache_dir).expanduser()
        tag = f"{self.root.name}-{hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:10]}"
        if os.environ.get(CACHE_ENV):
            return Path(os.environ[CACHE_ENV]).expanduser() / tag
        if os.access(self.root, os.W_OK):
            return self.root / CACHE_DIR
        return Path("~/.cache/jepa_ac/lerobot").expanduser() / tag


def cut_video(src: Path, dst: Path, start_s: float, frames: int, fps: float) -> Path:
    """Copy the `frames` frames from `start_s` of `src` into `dst` without re-encoding (the segment
    must start on a key frame, as LeRobot's concatenated episodes do); re-encode if it does not."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(temp_name(dst.name))
    lo, hi = start_s - 0.5 / fps, start_s + (frames - 0.5) / fps  # frame i sits at start + i / fps
    try:
        copied = _copy_packets(src, tmp, lo, hi)
        if not copied or _frame_count(tmp) != frames:
            logger.warning("%s: the episode at %.3f s does not start on a key frame; re-encoding it", src, start_s)
            _reencode(src, tmp, lo, hi, fps)
        if _frame_count(tmp) != frames:
            raise ValueError(f"found {_frame_count(tmp)} frames between {start_s:.3f} s and {hi:.3f} s, expected {frames}")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def _copy_packets(src: Path, dst: Path, lo: float, hi: float) -> bool:
    """Stream-copy the packets shown in [lo, hi) s; False if the first is not a key frame."""
    import av

    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        base = stream.time_base
        with av.open(str(dst), "w", format="mp4") as out:
            target = out.add_stream_from_template(stream, opaque=True)  # copy packets: no encoder needed
            offset = None
            for packet in inp.demux(stream):
                if packet.pts is None:
                    continue  # the demuxer's final empty packet
                shown = float(packet.pts * base)
                if shown >= hi and packet.dts is not None and float(packet.dts * base) >= hi:
                    break
                if not lo <= shown < hi:
                    continue
                if offset is None:
                    if not packet.is_keyframe:
                        return False
                    offset = packet.dts if packet.dts is not None else packet.pts
                packet.pts -= offset
                if packet.dts is not None:
                    packet.dts -= offset
                packet.stream = target
                out.mux(packet)
    return offset is not None


def _reencode(src: Path, dst: Path, lo: float, hi: float, fps: float) -> None:
    import av

    from jepa_ac.data.video import write_mp4

    with av.open(str(src)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])
                  if f.time is not None and lo <= f.time < hi]
    if not frames:
        raise ValueError(f"no frames between {lo:.3f} s and {hi:.3f} s")
    write_mp4(dst, np.stack(frames), fps)


def _frame_count(path: Path) -> int:
    from jepa_ac.data.video import probe_mp4

    return probe_mp4(path).num_frames


def _to_numpy(column: Any) -> np.ndarray:
    """A pyarrow column -> numpy: [T] scalars, or [T, n] for (nested) list features."""
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or pa.types.is_fixed_size_list(array.type):
        values = _to_numpy(array.flatten())
        return values.reshape(len(array), -1) if len(array) else values.reshape(0, 0)
    return array.to_numpy(zero_copy_only=False)


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError("reading LeRobot datasets needs pyarrow: pip install 'jepa_ac[lerobot]'") from err
    return pq
