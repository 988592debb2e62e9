"""Read DROID raw episodes (the released data or ours) as V-JEPA 2-AC training clips.

    clips = DroidClips("data/reach", frames_per_clip=8, fps=4.0)   # a folder, a list file, or paths
    clip = clips[0]   # {"frames": [F, H, W, 3] uint8, "states": [F, 7], "actions": [F-1, 7],
                      #  "indices": [F] frame numbers, "episode": index into clips.episodes}

As upstream (`app/vjepa_droid/droid.py`): the left exterior camera (`metadata*.json` ->
`left_mp4_path`), frames every `round(native_fps / fps)` video frames, states =
`cartesian_position ++ gripper_position` at the same rows, actions = the differences of those
states (`jepa_ac.model.pose.actions_from_states`). Unlike upstream, clips are an enumerable list of
windows (deterministic, shardable) and bad episodes are dropped once at indexing, each with a
logged reason, instead of being retried at random inside `__getitem__`. Bad means: files missing,
truncated or unreadable, or states that are NaN or physically absurd (`jepa_ac.model.pose.check_states`
with `ClipConfig.state_ranges`). A frame that fails to decode only shows when a clip is read: that
clip is replaced by the next decodable one (a pure function of the files, so resume stays exact)
and the episode is named in a warning and counted in `decode_failures`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from jepa_ac.model import pose
from jepa_ac.data import layout
from jepa_ac.data.episode import EpisodeError, EpisodeRecord, usable_frames
from jepa_ac.data.video import VideoDecodeError, read_mp4
from jepa_ac.files import write_atomic
from jepa_ac.model.pose import DEFAULT_STATE_RANGES, StateRanges

logger = logging.getLogger(__name__)


# -- finding episodes ----------------------------------------------------------------------------


def read_trajectory_list(path: str | Path) -> list[Path]:
    """Episode folders listed one per line (`#` starts a comment; relative to the list's folder)."""
    path = Path(path)
    episodes = []
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entry_path = Path(entry).expanduser()
            episodes.append(entry_path if entry_path.is_absolute() else path.parent / entry_path)
    return episodes


def write_trajectory_list(path: str | Path, episodes: Iterable[str | Path], header: str = "") -> Path:
    """Write a trajectory list atomically (paths relative to the list's folder where possible)."""
    path = Path(path)
    lines = [f"# {line}" for line in header.splitlines()]
    for episode in episodes:
        episode = Path(episode)
        try:
            lines.append(str(episode.resolve().relative_to(path.parent.resolve())))
        except ValueError:
            lines.append(str(episode.resolve()))
    return write_atomic(path, "\n".join(lines) + "\n")


def find_episodes(source: str | Path | Sequence[str | Path]) -> list[Path]:
    """Episode folders from a dataset folder (searched recursively), a list file, one episode, or a list.

    A folder counts as an episode if it holds `trajectory.h5` or a `metadata_*.json` (so an
    episode missing one of them is reported as broken, not silently ignored). Hidden folders
    (in-progress writes) and `.zarr` stores are never searched.
    """
    if isinstance(source, (list, tuple)):
        return [Path(p) for p in source]
    source = Path(source)
    if _lerobot().is_lerobot_source(source):  # a LeRobot dataset or spec file: references to its episodes
        return _lerobot().find_lerobot_episodes(source)
    if source.is_file():
        return read_trajectory_list(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a dataset folder, an episode folder nor a trajectory list file")
    if _looks_like_episode(source):
        return [source]
    found = []
    stack = [source]
    while stack:
        folder = stack.pop()
        for child in sorted(folder.iterdir(), reverse=True):
            if not child.is_dir() or child.name.startswith(".") or child.suffix == ".zarr":
                continue
            if _looks_like_episode(child):
                found.append(child)
            elif child.name != "recordings":
                stack.append(child)
    return sorted(found)


def _looks_like_episode(folder: Path) -> bool:
    return (folder / layout.TRAJECTORY_FILE).exists() or any(folder.glob(f"{layout.METADATA_PREFIX}*.json"))


# -- one episode --------------------------------------------------------------------------------


def read_metadata(folder: Path) -> dict[str, Any]:
    """The episode's `metadata_<uuid>.json` (DROID writes it last: no metadata = incomplete)."""
    candidates = sorted(folder.glob(f"{layout.METADATA_PREFIX}*.json"))
    if not candidates:
        raise EpisodeError(f"no {layout.METADATA_PREFIX}<uuid>.json (incomplete episode)")
    try:
        return json.loads(candidates[0].read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise EpisodeError(f"{candidates[0].name} is not valid JSON: {err}") from None


def read_h5(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Named arrays from a trajectory.h5; `EpisodeError` for a missing, truncated or incomplete file."""
    import h5py

    if not path.is_file():
        raise EpisodeError(f"{path} is missing")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in keys if k not in f]
            if missing:
                raise EpisodeError(f"{path} lacks {missing}")
            return {k: np.asarray(f[k]) for k in keys}
    except EpisodeError:
        raise
    except Exception as err:  # h5py raises OSError, KeyError, ValueError, ... for damaged files
        raise EpisodeError(f"{path} is unreadable (truncated or corrupt): {err}") from None


def open_episode(folder: str | Path, camera_key: str = layout.LEFT_MP4_KEY,
                 ranges: StateRanges = DEFAULT_STATE_RANGES) -> EpisodeRecord:
    """Validate one episode folder and load its states; raises `EpisodeError` saying what is wrong.

    States must be finite and inside `ranges`: one state of 1e30 (finite) would otherwise turn a
    predictor's weights into NaN a few steps into training."""
    folder = Path(folder)
    if _lerobot().is_lerobot_episode(folder):
        record = _lerobot().open_lerobot_episode(folder, camera_key)
        check_episode_states(record.states, f"{folder} states", ranges)
        return record
    if not folder.is_dir():
        raise EpisodeError("folder does not exist")
    metadata = read_metadata(folder)
    if camera_key not in metadata:
        raise EpisodeError(f"metadata has no {camera_key!r} (has {sorted(k for k in metadata if k.endswith('_path'))})")
    camera = layout.camera_from_mp4_path(str(metadata[camera_key]))
    arrays = read_h5(folder / layout.TRAJECTORY_FILE, [layout.CARTESIAN_POSITION, layout.GRIPPER_POSITION])
    cartesian, gripper = arrays[layout.CARTESIAN_POSITION], arrays[layout.GRIPPER_POSITION].reshape(-1)
    if cartesian.ndim != 2 or cartesian.shape[1] != 6 or len(gripper) != len(cartesian):
        raise EpisodeError(
            f"cartesian_position {list(cartesian.shape)} / gripper_position {list(gripper.shape)} are not [T, 6] / [T]"
        )
    states = np.concatenate([cartesian.astype(np.float64), gripper.astype(np.float64)[:, None]], axis=1)  # [T, 7]
    check_episode_states(states, f"{folder / layout.TRAJECTORY_FILE} states", ranges)
    mp4_path = folder / layout.MP4_DIR / f"{camera}.mp4"
    if not mp4_path.is_file():
        raise EpisodeError(f"video {layout.MP4_DIR}/{camera}.mp4 is missing")
    video, n = usable_frames(mp4_path, len(states), f"episode {folder}", "h5 rows")
    return EpisodeRecord(folder, str(metadata.get("uuid", folder.name)), camera, mp4_path, video.fps,
                         states[:n], metadata)


def check_episode_states(states: np.ndarray, source: str, ranges: StateRanges = DEFAULT_STATE_RANGES) -> None:
    """`EpisodeError` ("bad states: <where>: <field> = <value> ...") unless every state is finite and plausible."""
    try:
        pose.check_states(states, source, ranges)
    except ValueError as err:
        raise EpisodeError(f"bad states: {err}") from None


def load_episode(folder: str | Path, camera_key: str = layout.LEFT_MP4_KEY,
                 ranges: StateRanges = DEFAULT_STATE_RANGES) -> dict[str, Any]:
    """A whole episode: frames [T, H, W, 3], states [T, 7], actions [T-1, 7], and every h5 array."""
    if _lerobot().is_lerobot_episode(folder):
        episode = _lerobot().load_lerobot_episode(folder, camera_key)
        check_episode_states(episode["states"], f"{folder} states", ranges)
        return episode
    record = open_episode(folder, camera_key, ranges)
    import h5py

    arrays: dict[str, np.ndarray] = {}
    h5_path = record.path / layout.TRAJECTORY_FILE
    try:
        with h5py.File(h5_path, "r") as f:
            f.visititems(lambda name, obj: arrays.__setitem__(name, np.asarray(obj)) if isinstance(obj, h5py.Dataset)
                         else None)
    except Exception as err:  # a file truncated past the arrays open_episode read
        raise EpisodeError(f"{h5_path} is unreadable (truncated or corrupt): {err}") from None
    try:
        frames = read_mp4(record.mp4_path, np.arange(record.num_frames))
    except VideoDecodeError as err:
        raise EpisodeError(str(err)) from None
    return {"frames": frames, "states": record.states, "actions": pose.actions_from_states(record.states),
            "arrays": arrays, "metadata": record.metadata, "fps": record.fps, "camera": record.camera}


def index_episodes(
    folders: Sequence[Path], frames_per_clip: int = 1, fps: float | None = None,
    camera_key: str = layout.LEFT_MP4_KEY, ranges: StateRanges = DEFAULT_STATE_RANGES,
) -> tuple[list[EpisodeRecord], list[int], list[tuple[Path, str]]]:
    """Open every episode -> (records, frame strides, skipped (folder, reason)).

    An episode that fails to open, or is too short for one clip of `frames_per_clip` frames at
    `fps`, is skipped with a warning naming it and the reason, and a summary count at the end.
    """
    episodes, strides, skipped = [], [], []
    for folder in folders:
        try:
            record = open_episode(folder, camera_key, ranges)
            stride = frame_stride(record.fps, fps)
            span = (frames_per_clip - 1) * stride + 1
            if record.num_frames < span:
                raise EpisodeError(f"too short: {record.num_frames} frames, a clip of {frames_per_clip} frames "
                                   f"every {stride} needs {span}")
        except EpisodeError as err:
            logger.warning("skipping episode %s: %s", folder, err)
            skipped.append((Path(folder), str(err)))
            continue
        episodes.append(record)
        strides.append(stride)
    if skipped:
        reasons = Counter(reason.split(":")[0] for _, reason in skipped)
        logger.warning("skipped %d of %d episodes (%s)", len(skipped), len(folders),
                       ", ".join(f"{n}x {r}" for r, n in reasons.most_common()))
    return episodes, strides, skipped


def _lerobot() -> Any:
    """LeRobot datasets read through the same functions (`jepa_ac.data.lerobot`); imported on use."""
    from jepa_ac.data import lerobot

    return lerobot


# -- clips ----------------------------------------------------------------------------------------


def frame_stride(native_fps: float, fps: float | None) -> int:
    """Video frames between clip frames: round(native_fps / fps), at least 1 (None = native rate)."""
    if fps is None:
        return 1
    if not fps > 0:
        raise ValueError(f"fps must be > 0 or None, got {fps!r}")
    return max(1, round(native_fps / fps))


def clip_windows(lengths: Sequence[int], strides: Sequence[int], frames_per_clip: int,
                 step: int | None) -> list[tuple[int, int]]:
    """(episode, first frame) of every clip: starts every `step` frames (default: one stride)."""
    windows = []
    for episode, (length, stride) in enumerate(zip(lengths, strides)):
        span = (frames_per_clip - 1) * stride + 1
        windows.extend((episode, start) for start in range(0, length - span + 1, step or stride))
    return windows


@dataclass(frozen=True)
class ClipConfig:
    frames_per_clip: int = 8
    fps: float | None = 4.0  # clip frame rate; None = every video frame
    clip_step: int | None = None  # video frames between clip starts; None = the frame stride
    camera_key: str = layout.LEFT_MP4_KEY
    state_ranges: StateRanges = DEFAULT_STATE_RANGES  # episodes with a state outside are skipped

    def __post_init__(self) -> None:
        if self.frames_per_clip < 2:
            raise ValueError(f"ClipConfig.frames_per_clip must be >= 2 (actions need two frames), got {self.frames_per_clip}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"ClipConfig.fps must be > 0 or None, got {self.fps!r}")
        if self.clip_step is not None and self.clip_step < 1:
            raise ValueError(f"ClipConfig.clip_step must be >= 1, got {self.clip_step}")


class DroidClips:
    """Clips of `frames_per_clip` frames from DROID-layout episodes (numpy; see `torch_clips`)."""

    def __init__(self, source: str | Path | Sequence[str | Path], config: ClipConfig = ClipConfig(),
                 rank: int = 0, world_size: int = 1) -> None:
        check_shard(rank, world_size)
        self.config = config
        folders = find_episodes(source)
        self.episodes, self.strides, self.skipped = index_episodes(folders, config.frames_per_clip, config.fps,
                                                                   config.camera_key, config.state_ranges)
        windows = clip_windows([e.num_frames for e in self.episodes], self.strides, config.frames_per_clip,
                               config.clip_step)
        self.windows = windows[rank::world_size]
        self.source = source
        self.decode_failures: dict[str, str] = {}  # episode folder -> first decoding error
        self._undecodable: set[int] = set()  # windows known to fail
        if not self.windows:
            logger.warning("no clips: %d usable episodes of %d found in %s", len(self.episodes), len(folders), source)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Clip `index`; if its frames cannot be decoded, the next clip that can (wrapping around)."""
        for offset in range(len(self.windows)):
            candidate = (index + offset) % len(self.windows)
            if candidate in self._undecodable:
                continue
            try:
                return self._clip(candidate)
            except VideoDecodeError as err:
                self._undecodable.add(candidate)
                folder = str(self.episodes[self.windows[candidate][0]].path)
                if folder not in self.decode_failures:
                    self.decode_failures[folder] = str(err)
                    logger.warning("episode %s: %s; its clips that cannot be decoded are replaced by the next "
                                   "decodable clip", folder, err)
        raise EpisodeError(f"no clip of {self.source} can be decoded (episodes: {sorted(self.decode_failures)})")

    def _clip(self, index: int) -> dict[str, Any]:
        episode_index, start = self.windows[index]
        episode, stride = self.episodes[episode_index], self.strides[episode_index]
        indices = start + stride * np.arange(self.config.frames_per_clip)  # [F]
        states = episode.states[indices]  # [F, 7]
        return {
            "frames": read_mp4(episode.mp4_path, indices),  # [F, H, W, 3] uint8
            "states": states,
            "actions": pose.actions_from_states(states),  # [F-1, 7]
            "indices": indices,
            "episode": np.int64(episode_index),  # position in self.episodes (numbers only: collate-friendly)
        }


def torch_clips(clips: Any):
    """Wrap `DroidClips` / `LatentClips` as a `torch.utils.data.Dataset` of tensors (float32 states)."""
    from jepa_ac.data.torch_dataset import TorchClips

    return TorchClips(clips)


def check_shard(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
