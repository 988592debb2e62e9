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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from jepa_ac.files import atomic


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
COMMAND = "action/command"  # [T, k] ours: the env's / robot's own command sent at row t, as given to it
TIMESTAMP_CAMERAS = "observation/timestamp/cameras"  # <cam>_estimated_capture: [T] int64 ms
TIMESTAMP_CONTROL = "observation/timestamp/control"  # step_start, step_end: [T] int64 ms (wall clock)
TIMESTAMP_ROBOT = "observation/timestamp/robot_state"  # robot_timestamp_seconds / _nanos: [T] (sim clock)
SKIP_ACTION = "observation/timestamp/skip_action"  # [T] bool
CONTROLLER_SUCCESS = "observation/controller_info/success"  # [T] bool


# -- metadata_<uuid>.json fields (ours) --------------------------------------------------------
COMMAND_KEY_FIELD = "command_key"  # h5 key of the command sent at each row; null: none was recorded
COMMAND_SPACE_FIELD = "command_space"  # delta_pose, target_pose (absolute, DROID) or env (the env's own action)


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
TEMP_PREFIX = atomic.TEMP_PREFIX  # in-progress episodes and files: .tmp-<name>-<pid>-<random>

CODEBASE_VERSION = "jepa_ac-droid-v1"


# -- the control contract (measured by jepa_ac.data.contract) ---------------------------------
CONTRACT_FORMAT = "jepa_ac.control_contract"
CONTRACT_VERSION = 1
# what a recorded command is: V-JEPA 2-AC deltas (jepa_ac.model.pose), or the env's / robot's own action vector
COMMAND_SPACES = ("delta_pose", "env")
STEP_PERCENTILE = 95.0  # the step bound a planner gets: this percentile of |achieved move| per dim


def _floats(values: Any, length: int | None, name: str, nullable: bool = False) -> tuple:
    try:
        out = tuple(None if (v is None and nullable) else float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"ControlContract.{name} must be a list of numbers, got {values!r:.80}") from None
    if length is not None and len(out) != length:
        raise ValueError(f"ControlContract.{name} must have {length} entries, got {len(out)}")
    if not all(v is None or math.isfinite(v) for v in out):
        raise ValueError(f"ControlContract.{name} must be finite, got {out}")
    return out


@dataclass(frozen=True)
class ControlContract:
    """How a recording was controlled (rates in Hz, positions in m, moves in action units per step).

    `step_*` are statistics of the achieved move between rows `step_hz` apart (the recording's
    own rate unless measured at a clip rate). The command fit pairs the command sent at row t with
    the move from row t+lag to t+lag+1 (the lag with the best fit): `command_to_delta` [7][k] and
    `delta_offset` [7] are the least-squares map `move ~ M @ command + b`, `fit_r2` its R^2 per
    action dim (None where the dim never moved); `action_scale` [7], for `delta_pose` commands
    only, is achieved / commanded per dim (slope through zero; None where never commanded).
    """

    control_hz: float
    step_hz: float
    episodes: int
    transitions: int  # moves the step statistics were computed from
    step_p95: tuple[float, ...]  # [7] STEP_PERCENTILE-th percentile of |move| per action dim
    step_max: tuple[float, ...]  # [7]
    translation_max: float  # largest Euclidean xyz move of one step (m)
    rotation_max: float  # largest rotation angle of one step (rad)
    position_min: tuple[float, float, float]
    position_max: tuple[float, float, float]
    gripper_min: float
    gripper_max: float
    command_space: str | None = None  # None: no commands recorded
    command_source: str | None = None  # where the commands came from (h5 key or LeRobot columns)
    command_dim: int | None = None
    command_lag: int | None = None
    command_to_delta: tuple[tuple[float, ...], ...] | None = None  # [7][k]
    delta_offset: tuple[float, ...] | None = None  # [7]
    fit_r2: tuple[float | None, ...] | None = None  # [7]
    action_scale: tuple[float | None, ...] | None = None  # [7], delta_pose commands only
    step_percentile: float = STEP_PERCENTILE
    format: str = CONTRACT_FORMAT
    version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        if self.format != CONTRACT_FORMAT:
            raise ValueError(f"ControlContract.format must be {CONTRACT_FORMAT!r}, got {self.format!r}")
        if self.version != CONTRACT_VERSION:
            raise ValueError(f"ControlContract.version {self.version!r} is not supported (this code reads {CONTRACT_VERSION})")
        for name in ("control_hz", "step_hz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"ControlContract.{name} must be a positive number, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("episodes", "transitions"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"ControlContract.{name} must be an int >= 0, got {getattr(self, name)!r}")
        for name, length in (("step_p95", 7), ("step_max", 7), ("position_min", 3), ("position_max", 3)):
            object.__setattr__(self, name, _floats(getattr(self, name), length, name))
        if any(lo > hi for lo, hi in zip(self.position_min, self.position_max)):
            raise ValueError(f"ControlContract.position_min {self.position_min} exceeds position_max {self.position_max}")
        for name in ("translation_max", "rotation_max", "gripper_min", "gripper_max", "step_percentile"):
            object.__setattr__(self, name, _floats([getattr(self, name)], 1, name)[0])
        if self.command_space is None:
            if any(getattr(self, n) is not None for n in ("command_dim", "command_to_delta", "action_scale")):
                raise ValueError("ControlContract: a command fit needs command_space ('delta_pose' or 'env')")
            return
        if self.command_space not in COMMAND_SPACES:
            raise ValueError(f"ControlContract.command_space must be one of {COMMAND_SPACES} or null, got {self.command_space!r}")
        if isinstance(self.command_dim, bool) or not isinstance(self.command_dim, int) or self.command_dim < 1:
            raise ValueError(f"ControlContract.command_dim must be a positive int, got {self.command_dim!r}")
        if self.command_to_delta is not None:
            rows = tuple(_floats(row, self.command_dim, "command_to_delta") for row in self.command_to_delta)
            if len(rows) != 7:
                raise ValueError(f"ControlContract.command_to_delta must have 7 rows, got {len(rows)}")
            object.__setattr__(self, "command_to_delta", rows)
        for name in ("delta_offset",):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _floats(getattr(self, name), 7, name))
        for name in ("fit_r2", "action_scale"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _floats(getattr(self, name), 7, name, nullable=True))
        if self.action_scale is not None and self.command_space != "delta_pose":
            raise ValueError("ControlContract.action_scale is defined for delta_pose commands only")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples -> lists

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ControlContract":
        if not isinstance(values, Mapping):
            raise ValueError(f"control contract must be a JSON object, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"control contract has unknown fields {unknown}; known: {sorted(known)}")
        try:
            return cls(**values)
        except TypeError as err:
            raise ValueError(f"control contract: {err}") from None


@dataclass(frozen=True)
class DatasetInfo:
    """What a collected dataset is: written as `dataset_info.json`, checked on resume.

    `control` (the measured `ControlContract`, see `jepa_ac.data.contract`) is filled in when a
    collection or recording finishes; datasets written before it existed have none.
    """

    env_id: str
    task: str
    fps: float
    image_size: int | tuple[int, int]  # square side, or [H, W] for frames that are not square
    cameras: tuple[str, ...]
    noise: float
    seed: int
    max_steps: int
    codebase_version: str = CODEBASE_VERSION
    features: Mapping[str, Any] = field(default_factory=dict)
    env_options: Mapping[str, Any] = field(default_factory=dict)  # env keywords beyond image_size (exterior_view)
    expert_options: Mapping[str, Any] = field(default_factory=dict)  # the scripted expert's own (grasp_offset)
    control: ControlContract | None = None

    def __post_init__(self) -> None:
        if not self.env_id:
            raise ValueError("DatasetInfo.env_id must be a non-empty env id")
        if not self.fps > 0:
            raise ValueError(f"DatasetInfo.fps must be > 0, got {self.fps!r}")
        sides = [self.image_size] if isinstance(self.image_size, int) else list(self.image_size)
        if len(sides) not in (1, 2) or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 or v % 2 for v in sides):
            raise ValueError(f"DatasetInfo.image_size must be a positive even number or [H, W] of them (H.264 "
                             f"yuv420p), got {self.image_size!r}")
        if not isinstance(self.image_size, int):
            object.__setattr__(self, "image_size", sides[0] if sides[0] == sides[1] else tuple(sides))
        if self.control is not None and not isinstance(self.control, ControlContract):
            raise ValueError(f"DatasetInfo.control must be a ControlContract or None, got {type(self.control).__name__}")
        if not self.cameras:
            raise ValueError("DatasetInfo.cameras must name at least one camera")
        if self.noise < 0:
            raise ValueError(f"DatasetInfo.noise must be >= 0, got {self.noise!r}")
        if self.max_steps <= 0:
            raise ValueError(f"DatasetInfo.max_steps must be > 0, got {self.max_steps!r}")
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "features", dict(self.features))
        object.__setattr__(self, "env_options", dict(self.env_options))
        object.__setattr__(self, "expert_options", dict(self.expert_options))

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["cameras"] = list(self.cameras)
        values["image_size"] = self.image_size if isinstance(self.image_size, int) else list(self.image_size)
        values["control"] = None if self.control is None else self.control.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DatasetInfo":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"dataset info has unknown fields {sorted(unknown)}; known: {sorted(known)}")
        control = values.get("control")
        return cls(**{**values, "cameras": tuple(values.get("cameras", ())),
                      "control": None if control is None else ControlContract.from_dict(control)})

    @classmethod
    def load(cls, path: str | Path) -> "DatasetInfo":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err


def droid_features(cameras: tuple[str, ...], image_size: int | tuple[int, int], joints: bool = True,
                   extrinsics: bool = True, command_dim: int | None = None) -> dict[str, Any]:
    """Shapes and dtypes of what each episode stores (the `features` of `DatasetInfo`)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    features: dict[str, Any] = {
        CARTESIAN_POSITION: {"dtype": "float64", "shape": ["T", 6]},
        GRIPPER_POSITION: {"dtype": "float64", "shape": ["T"]},
    }
    if joints:
        features[JOINT_POSITIONS] = {"dtype": "float64", "shape": ["T", 7]}
    features.update({
        ACTION_CARTESIAN_POSITION: {"dtype": "float64", "shape": ["T", 6]},
        ACTION_GRIPPER_POSITION: {"dtype": "float64", "shape": ["T"]},
        ACTION_DELTA: {"dtype": "float64", "shape": ["T", 7]},
    })
    if command_dim is not None:
        features[COMMAND] = {"dtype": "float64", "shape": ["T", command_dim]}
    for cam in cameras:
        if extrinsics:
            features[extrinsics_key(cam)] = {"dtype": "float64", "shape": ["T", 6]}
        features[mp4_relpath(cam)] = {"dtype": "video/h264-yuv420p", "shape": ["T", h, w, 3]}
    return features
