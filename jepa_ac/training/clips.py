"""Training clips: what the trainers read, whatever the storage.

A clip dataset is a sequence whose items are dicts of numpy arrays:
`{"latents": [T, N, D] float}` (from a latent cache) or `{"frames": [T, H, W, 3] uint8}` (encoded
on the fly), plus `"states": [T, 7]` and `"actions": [T-1, 7]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np


class InMemoryClips:
    """Clips held in arrays: latents or frames [C, T, ...], states [C, T, 7], actions [C, T-1, 7]."""

    def __init__(self, states: np.ndarray, actions: np.ndarray, latents: np.ndarray | None = None,
                 frames: np.ndarray | None = None) -> None:
        if (latents is None) == (frames is None):
            raise ValueError("pass exactly one of latents= or frames=")
        self.states = np.asarray(states, np.float32)
        self.actions = np.asarray(actions, np.float32)
        self.latents = latents
        self.frames = frames
        count = len(self.states)
        data = latents if latents is not None else frames
        if len(self.actions) != count or len(data) != count:
            raise ValueError("latents/frames, states and actions must hold the same number of clips")
        if self.actions.shape[1] != self.states.shape[1] - 1:
            raise ValueError(f"each clip needs T-1 actions for T states, got {self.actions.shape} and {self.states.shape}")

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        item = {"states": self.states[i], "actions": self.actions[i]}
        if self.latents is not None:
            item["latents"] = np.asarray(self.latents[i], np.float32)
        else:
            item["frames"] = self.frames[i]
        return item

    def save(self, path: str | Path) -> None:
        arrays = {"states": self.states, "actions": self.actions}
        arrays["latents" if self.latents is not None else "frames"] = (
            self.latents if self.latents is not None else self.frames)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "InMemoryClips":
        with np.load(path) as data:
            return cls(data["states"], data["actions"], latents=data["latents"] if "latents" in data else None,
                       frames=data["frames"] if "frames" in data else None)


def collate(items: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """Stack a list of clip dicts into batched torch tensors."""
    import torch

    out = {}
    for key in items[0]:
        stacked = np.stack([np.asarray(item[key]) for item in items])
        out[key] = torch.from_numpy(stacked)
    return out


def split_indices(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded train/val split of `count` items (at least one of each when count >= 2)."""
    perm = np.random.default_rng(seed).permutation(count)
    n_val = int(round(count * val_fraction))
    if val_fraction > 0 and count >= 2:
        n_val = min(max(1, n_val), count - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class Subset:
    def __init__(self, dataset: Any, indices: np.ndarray) -> None:
        self.dataset, self.indices = dataset, np.asarray(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[int(self.indices[i])]


def open_clips(path: str | Path, frames: int, fps: float) -> Any:
    """A clip dataset from a path: a `.zarr` latent cache, DROID-layout episodes (a folder or a
    trajectory list file, encoded on the fly), or a clips `.npz`."""
    path = Path(path)
    if not str(path) or not path.exists():
        raise FileNotFoundError(f"training data not found: {str(path)!r}")
    if path.suffix == ".npz":
        clips = InMemoryClips.load(path)
        if clips.states.shape[1] != frames:
            raise ValueError(f"{path} holds clips of {clips.states.shape[1]} frames, but frames={frames}")
        return clips
    if path.suffix == ".zarr":
        from jepa_ac.data.latent_cache import LatentClips

        return LatentClips(path, frames_per_clip=frames, fps=fps)
    if path.is_dir() or path.suffix in (".txt", ".csv", ".list"):
        from jepa_ac.data.reader import ClipConfig, DroidClips

        return DroidClips(path, ClipConfig(frames_per_clip=frames, fps=fps))
    raise ValueError(f"{path}: unsupported training data (expected a .zarr latent cache, a DROID-layout episode "
                     "folder or trajectory list, or a clips .npz)")


def episode_ids(dataset: Any) -> np.ndarray:
    """The episode of every clip ([C]); clips without episode structure count as their own episode."""
    windows = getattr(dataset, "windows", None)
    if windows is not None:
        return np.asarray([episode for episode, _ in windows])
    return np.arange(len(dataset))


def split_by_episode(dataset: Any, val_fraction: float, seed: int) -> tuple[Subset, Subset]:
    """Hold out whole episodes (never clips of a training episode) for validation."""
    episodes = episode_ids(dataset)
    unique = np.unique(episodes)
    train_eps, val_eps = split_indices(len(unique), val_fraction, seed)
    val_mask = np.isin(episodes, unique[val_eps])
    return Subset(dataset, np.flatnonzero(~val_mask)), Subset(dataset, np.flatnonzero(val_mask))
