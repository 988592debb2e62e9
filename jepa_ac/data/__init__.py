"""Trajectory data in DROID's raw layout: writer, recorder, reader (also of LeRobot datasets), clips
for training, the control contract, latent cache.

    from jepa_ac.data import DroidClips, ClipConfig, Recorder, LeRobotSource
    from jepa_ac.data.contract import contract_for_dataset, planning_defaults
    clips = DroidClips("data/reach", ClipConfig(frames_per_clip=8, fps=4.0))   # or a LeRobot dataset folder

The core is numpy-only; `torch_clips` wraps a clip dataset for `torch.utils.data.DataLoader`
and the latent cache (`jepa_ac.data.latent_cache`) needs zarr.
"""

from jepa_ac.data import layout
from jepa_ac.data.layout import ControlContract, DatasetInfo
from jepa_ac.data.lerobot import LeRobotSource, LeRobotSpec
from jepa_ac.data.reader import (
    ClipConfig,
    DroidClips,
    EpisodeError,
    EpisodeRecord,
    find_episodes,
    load_episode,
    open_episode,
    read_trajectory_list,
    torch_clips,
    write_trajectory_list,
)
from jepa_ac.data.recorder import EpisodeBuffer, Recorder
from jepa_ac.data.writer import EpisodeData, EpisodeMeta, write_episode

__all__ = [
    "layout", "DatasetInfo", "ClipConfig", "DroidClips", "EpisodeError", "EpisodeRecord", "find_episodes",
    "load_episode", "open_episode", "read_trajectory_list", "torch_clips", "write_trajectory_list",
    "EpisodeData", "EpisodeMeta", "write_episode", "Recorder", "EpisodeBuffer", "ControlContract",
    "LeRobotSource", "LeRobotSpec",
]
