"""Trajectory data in DROID's raw layout: writer, reader, clips for training, latent cache.

    from jepa_ac.data import DroidClips, ClipConfig, write_episode, EpisodeData, EpisodeMeta
    clips = DroidClips("data/reach", ClipConfig(frames_per_clip=8, fps=4.0))

The core is numpy-only; `torch_clips` wraps a clip dataset for `torch.utils.data.DataLoader`
and the latent cache (`jepa_ac.data.latent_cache`) needs zarr.
"""

from jepa_ac.data import layout
from jepa_ac.data.layout import DatasetInfo
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
from jepa_ac.data.writer import EpisodeData, EpisodeMeta, write_episode

__all__ = [
    "layout", "DatasetInfo", "ClipConfig", "DroidClips", "EpisodeError", "EpisodeRecord", "find_episodes",
    "load_episode", "open_episode", "read_trajectory_list", "torch_clips", "write_trajectory_list",
    "EpisodeData", "EpisodeMeta", "write_episode",
]
