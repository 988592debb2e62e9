"""What the data readers hand each other about one episode: the validated record, the commands
it recorded, and the error for an episode that cannot be used. DROID-layout folders
(`jepa_ac.data.reader`) and LeRobot datasets (`jepa_ac.data.lerobot`) both produce them; the control
contract (`jepa_ac.data.contract`) reads them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class EpisodeError(ValueError):
    """An episode folder that cannot be used; the message says why."""


@dataclass(frozen=True)
class EpisodeRecord:
    """An indexed, validated episode (states in memory, video left on disk)."""

    path: Path
    uuid: str
    camera: str
    mp4_path: Path
    fps: float  # native video frame rate
    states: np.ndarray  # [T, 7] float64, T = usable rows (min of h5 rows and video frames)
    metadata: dict[str, Any] = field(repr=False)

    @property
    def num_frames(self) -> int:
        return len(self.states)


@dataclass(frozen=True)
class EpisodeCommands:
    """The commands an episode recorded, as the contract reads them."""

    values: np.ndarray  # [T, k] the command sent from each row (the last row's is unused)
    space: str  # "delta_pose" or "env" (absolute targets are converted to delta_pose)
    source: str  # where they came from: an h5 key, or LeRobot columns


def usable_frames(mp4: Path, rows: int, episode: str, rows_name: str = "rows") -> tuple[Any, int]:
    """The episode's video (`jepa_ac.data.video.VideoInfo`) and how many rows it can use: the shorter
    of its `rows` and the video's frames (a warning when they differ). `EpisodeError` when the video
    is unreadable or nothing is left; `episode` and `rows_name` word the messages."""
    from jepa_ac.data.video import probe_mp4

    try:
        video = probe_mp4(mp4)
    except Exception as err:  # PyAV raises its own error types for damaged files
        raise EpisodeError(f"video {mp4.name} is unreadable: {err}") from None
    n = min(rows, video.num_frames)
    if video.num_frames != rows:
        logger.warning("%s: %d %s but %d video frames; using the first %d", episode, rows, rows_name, video.num_frames, n)
    if n == 0:
        raise EpisodeError(f"no frames ({rows} {rows_name}, {video.num_frames} video frames)")
    return video, n
