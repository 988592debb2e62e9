"""On-disk names of DROID's raw episode layout, and the typed info record of a stored dataset.

One episode is one folder (as in the released DROID raw data, `gs://gresearch/robotics/droid_raw`):

    <episode>/
      metadata_<uuid>.json       uuid, left_mp4_path (relative), trajectory_length, success, ...
      trajectory.h5              observation/robot_state/..., observation/camera_extrinsics/...,
                                 action/..., observation/timestamp/...
      recordings/MP4/<cam>.mp4   one H.264 video per camera, one frame per h5 row

V-JEPA 2-AC (`app/vjepa_droid/droid.py`) reads `metadata*.json` -> `left_mp4_path`, and from
`trajectory.h5` the `cartesian_position`, `gripper_position` and `<cam>_left` extrinsics; every
name it reads is a constant here. Rows are control steps: row t holds the observation at step t
and the command sent from it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

# -- episode folder ---------------------------------------------------------------------------
TRAJECTORY_FILE = "trajectory.h5"
METADATA_PREFIX = "metadata_"  # metadata_<uuid>.json; its presence marks a complete DROID episode
MP4_DIR = "recordings/MP4"
LEFT_MP4_KEY = "left_mp4_path"  # metadata key of the left exterior camera (what V-JEPA 2-AC trains on)
RIGHT_MP4_KEY = "right_mp4_path"
WRIST_MP4_KEY = "wrist_mp4_path"

# -- trajectory.h5 ----------------------------------------------------------------------------
CARTESIAN_POSITION = "observation/robot_state/cartesian_position"  # [T, 6] xyz + extrinsic xyz Euler
GRIPPER_POSITION = "observation/robot_state/gripper_position"  # [T] closedness in [0, 1]
JOINT_POSITIONS = "observation/robot_state/joint_positions"  # [T, 7]
CAMERA_EXTRINSICS = "observation/camera_extrinsics"  # group of <cam>_left: [T, 6]
ACTION_CARTESIAN_POSITION = "action/cartesian_position"  # [T, 6] absolute pose target (DROID)
ACTION_GRIPPER_POSITION = "action/gripper_position"  # [T] absolute gripper target (DROID)
ACTION_DELTA = "action/delta_pose"  # [T, 7] ours: the V-JEPA 2-AC action sent at row t
TIMESTAMP_CAMERAS = "observation/timestamp/cameras"  # <cam>_estimated_capture: [T] int64 ms
TIMESTAMP_CONTROL = "observation/timestamp/control"  # step_start, step_end: [T] int64 ms (wall clock)
TIMESTAMP_ROBOT = "observation/timestamp/robot_state"  # robot_timestamp_seconds / _nanos: [T] (sim clock)
SKIP_ACTION = "observation/timestamp/skip_action"  # [T] bool
CONTROLLER_SUCCESS = "observation/controller_info/success"  # [T] bool


def extrinsics_key(camera: str) -> str:
    """h5 key of a camera's (left-lens) extrinsics, as upstream builds it from the mp4 name."""
    return f"{CAMERA_EXTRINSICS}/{camera}_left"


def mp4_relpath(camera: str) -> str:
    return f"{MP4_DIR}/{camera}.mp4"


def camera_from_mp4_path(mp4_path: str) -> str:
    """'lab/success/.../recordings/MP4/22008760.mp4' -> '22008760' (upstream's rule)."""
    return mp4_path.split("recordings/MP4/")[-1].rsplit(".", 1)[0]


# -- dataset-level files (ours) ---------------------------------------------------------------
DATASET_INFO_FILE = "dataset_info.json"
TRAJECTORY_LIST_FILE = "trajectories.txt"  # one episode folder per line, as upstream's data_path
SUMMARY_FILE = "collect_summary.json"
EPISODE_DIR_FORMAT = "episode_{index:06d}"
TEMP_PREFIX = ".tmp-"  # in-progress episodes: .tmp-<name>-<pid>-<random>

CODEBASE_VERSION = "jepa_ac-droid-v1"


@dataclass(frozen=True)
class DatasetInfo:
    """What a collected dataset is: written once as `dataset_info.json`, checked on resume."""

    env_id: str
    task: str
    fps: float
    image_size: int
    cameras: tuple[str, ...]
    noise: float
    seed: int
    max_steps: int
    codebase_version: str = CODEBASE_VERSION
    features: Mapping[str, Any] = field(default_factory=dict)
    env_options: Mapping[str, Any] = field(default_factory=dict)  # env keywords beyond image_size (exterior_view)

    def __post_init__(self) -> None:
        if not self.env_id:
            raise ValueError("DatasetInfo.env_id must be a non-empty env id")
        if not self.fps > 0:
            raise ValueError(f"DatasetInfo.fps must be > 0, got {self.fps!r}")
        if self.image_size <= 0 or self.image_size % 2:
            raise ValueError(f"DatasetInfo.image_size must be a positive even number (H.264 yuv420p), got {self.image_size!r}")
        if not self.cameras:
            raise ValueError("DatasetInfo.cameras must name at least one camera")
        if self.noise < 0:
            raise ValueError(f"DatasetInfo.noise must be >= 0, got {self.noise!r}")
        if self.max_steps <= 0:
            raise ValueError(f"DatasetInfo.max_steps must be > 0, got {self.max_steps!r}")
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "features", dict(self.features))
        object.__setattr__(self, "env_options", dict(self.env_options))

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["cameras"] = list(self.cameras)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DatasetInfo":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"dataset info has unknown fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{**values, "cameras": tuple(values.get("cameras", ()))})

    @classmethod
    def load(cls, path: str | Path) -> "DatasetInfo":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err


def droid_features(cameras: tuple[str, ...], image_size: int) -> dict[str, Any]:
    """Shapes and dtypes of what each episode stores (the `features` of `DatasetInfo`)."""
    features: dict[str, Any] = {
        CARTESIAN_POSITION: {"dtype": "float64", "shape": ["T", 6]},
        GRIPPER_POSITION: {"dtype": "float64", "shape": ["T"]},
        JOINT_POSITIONS: {"dtype": "float64", "shape": ["T", 7]},
        ACTION_CARTESIAN_POSITION: {"dtype": "float64", "shape": ["T", 6]},
        ACTION_GRIPPER_POSITION: {"dtype": "float64", "shape": ["T"]},
        ACTION_DELTA: {"dtype": "float64", "shape": ["T", 7]},
    }
    for cam in cameras:
        features[extrinsics_key(cam)] = {"dtype": "float64", "shape": ["T", 6]}
        features[mp4_relpath(cam)] = {"dtype": "video/h264-yuv420p", "shape": ["T", image_size, image_size, 3]}
    return features
