"""The control contract a predictor was trained with, stored beside its weights as `control.json`,
and the planning defaults derived from it for the env its data came from.

    control = control_for_data("data/fetch.zarr", fps=5.0)       # train_predictor stores this
    control = CheckpointControl.for_checkpoint("runs/fetch/final")  # None if the checkpoint has none
    defaults = planning_for_env(PlanningDefaults(), control, "my_hooks:FetchReach-v4")

`control.json`:

    {"format": "jepa_ac.checkpoint_control", "version": 1,
     "data": "data/fetch.zarr", "fps": 5.0,                     # the training data and its clip rate
     "env_id": "my_hooks:FetchReach-v4", "image_size": 64,      # the dataset's env and frame size
     "env_options": {"state": "my_hooks:state", ...},           # the hooks it was recorded with
     "contract": {...}}                                         # jepa_ac.data.layout.ControlContract

The contract's step statistics are measured between frames one clip step (`1 / fps`) apart, the
moves the predictor learned as actions; its command fit pairs consecutive rows of the recording
(`jepa_ac.data.contract.measure_contract`). Planning defaults for an env the checkpoint's
`planning.json` does not name come from it (`jepa_ac.data.contract.planning_defaults`: step bounds,
frozen dims, workspace, control rate, image size), and so does the command map of
`jepa_ac.robot.env_adapter`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from jepa_ac.data.layout import ControlContract

logger = logging.getLogger(__name__)

CONTROL_FILE = "control.json"
FORMAT_NAME = "jepa_ac.checkpoint_control"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointControl:
    """What a checkpoint knows of how its training data was controlled."""

    contract: ControlContract
    fps: float | None = None  # training clip rate (None: every recorded row)
    data: str = ""
    env_id: str | None = None  # the dataset's env (None: unknown, e.g. a latent cache whose episodes are gone)
    image_size: int | None = None
    env_options: Mapping[str, Any] = field(default_factory=dict)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.format != FORMAT_NAME or self.version != FORMAT_VERSION:
            raise ValueError(f"{CONTROL_FILE}: format {self.format!r} version {self.version!r} is not "
                             f"{FORMAT_NAME!r} version {FORMAT_VERSION}")
        if not isinstance(self.contract, ControlContract):
            raise ValueError("CheckpointControl.contract must be a ControlContract, got "
                             f"{type(self.contract).__name__}")
        object.__setattr__(self, "env_options", dict(self.env_options))

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["contract"] = self.contract.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: Any, source: str = CONTROL_FILE) -> "CheckpointControl":
        if not isinstance(values, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; known: {sorted(known)}")
        try:
            return cls(**{**values, "contract": ControlContract.from_dict(values.get("contract"))})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def for_checkpoint(cls, checkpoint: str | Path | None) -> "CheckpointControl | None":
        """`control.json` beside a checkpoint folder's weights, or None if it has none."""
        if checkpoint is None or not (Path(checkpoint) / CONTROL_FILE).is_file():
            return None
        path = Path(checkpoint) / CONTROL_FILE
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data, source=str(path))

    def names(self, env_id: str) -> bool:
        """Whether `env_id` is the dataset's env ("module:EnvId" and "EnvId" name the same env)."""
        from jepa_ac.robot.env_adapter import env_name

        return self.env_id is not None and env_name(self.env_id) == env_name(env_id)


# -- measuring it for a training run --------------------------------------------------------------


def control_for_data(data: str | Path, fps: float | None) -> CheckpointControl | None:
    """The control record of training data at clip rate `fps`: a DROID-layout folder or list, a
    LeRobot dataset or spec file, or a latent cache (measured from the episodes it was encoded
    from; from its own states, without commands, if those are gone). None for a clips `.npz`."""
    from jepa_ac.data.contract import contract_for_dataset

    path = Path(data)
    if path.suffix == ".npz":
        return None
    if path.suffix == ".zarr":
        sources, contract = _cache_sources(path, fps)
    else:
        sources, contract = path, contract_for_dataset(path, fps=fps)
    if contract is None:
        contract = contract_for_dataset(sources, fps=fps)
    info = _dataset_info(path if path.is_dir() and path.suffix != ".zarr" else None, sources)
    return CheckpointControl(
        contract=contract, fps=fps, data=str(data), env_id=info.env_id if info else None,
        image_size=info.image_size if info and isinstance(info.image_size, int) else None,
        env_options=dict(info.env_options) if info else {})


def _cache_sources(path: Path, fps: float | None) -> tuple[list[Path], ControlContract | None]:
    """The episode folders a latent cache was encoded from, or (when any is gone) a contract
    measured from the cache's own states."""
    from jepa_ac.data.contract import measure_contract
    from jepa_ac.data.latent_cache import LatentCache
    from jepa_ac.data.lerobot import is_lerobot_episode
    from jepa_ac.data.reader import frame_stride

    cache = LatentCache.open(path)
    groups = [cache.episode(name) for name in cache.episode_names()]
    sources = [Path(str(g.attrs["source"])) for g in groups]
    if sources and all(s.is_dir() or is_lerobot_episode(s) for s in sources):
        return sources, None
    if not groups:
        raise ValueError(f"{path} holds no complete episodes")
    rates = {float(g.attrs["fps"]) for g in groups}
    if len(rates) != 1:
        raise ValueError(f"{path}: episodes were recorded at different rates {sorted(rates)}")
    hz = rates.pop()
    logger.warning("%s: the episodes it was encoded from are gone; measuring the control contract from its states "
                   "(no commands)", path)
    return [], measure_contract(((g["states"][:], None) for g in groups), hz, stride=frame_stride(hz, fps))


def _dataset_info(folder: Path | None, sources: Any) -> Any:
    """The `dataset_info.json` of a dataset folder, or of the folder holding its first episode."""
    from jepa_ac.data import layout
    from jepa_ac.data.layout import DatasetInfo
    from jepa_ac.data.reader import find_episodes

    candidates = [folder] if folder is not None else []
    try:
        episodes = find_episodes(sources) if sources else []
    except (FileNotFoundError, ValueError):
        episodes = []
    candidates += [Path(episodes[0]).parent] if episodes else []
    for candidate in candidates:
        if (candidate / layout.DATASET_INFO_FILE).is_file():
            return DatasetInfo.load(candidate / layout.DATASET_INFO_FILE)
    return None


# -- planning from it ---------------------------------------------------------------------------------


def planning_for_env(base: Any, control: CheckpointControl, env_id: str) -> Any:
    """`base` (a `PlanningDefaults`) for `env_id` with the action bounds, workspace, control rate and
    image size derived from the training data's contract (`planning_defaults`); CEM and MPC stay `base`'s."""
    from jepa_ac.data.contract import planning_defaults

    derived = planning_defaults(control.contract, env_id, control.image_size)
    return base.for_env(env_id).replace(
        f"planning derived from {control.data or 'the training data'}'s control contract",
        action=derived["action"], env={**derived["env"], "exterior_view": None})
