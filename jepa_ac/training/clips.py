"""Training clips: what the trainers read, whatever the storage.

A clip dataset is a sequence whose items are dicts of numpy arrays:
`{"latents": [T, N, D] float}` (from a latent cache) or `{"frames": [T, H, W, 3] uint8}` (encoded
on the fly), plus `"states": [T, 7]` and `"actions": [T-1, 7]`. Every source checks its states
(finite, inside `jepa_ac.model.pose.StateRanges`): episodes are skipped with a warning, a clips `.npz`
with a bad clip is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from jepa_ac.files import atomic_path
from jepa_ac.model import pose
from jepa_ac.model.pose import DEFAULT_STATE_RANGES, StateRanges


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
        """Write a `.npz` atomically (a temp file beside it, renamed into place)."""
        path = Path(path)
        arrays = {"states": self.states, "actions": self.actions}
        arrays["latents" if self.latents is not None else "frames"] = (
            self.latents if self.latents is not None else self.frames)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: str | Path, ranges: StateRanges = DEFAULT_STATE_RANGES) -> "InMemoryClips":
        """Clips from a `.npz` (never unpickled); refuses NaN/inf or implausible states, NaN/inf actions or latents."""
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("states", "actions") if k not in data] + \
                    ([] if ("latents" in data) != ("frames" in data) else ["latents or frames"])
                if missing:
                    raise ValueError(f"{path} is not a clips .npz: it lacks {missing} (has {sorted(data.files)})")
                clips = cls(data["states"], data["actions"], latents=data["latents"] if "latents" in data else None,
                            frames=data["frames"] if "frames" in data else None)
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"{path} is not a readable clips .npz: {err}") from None
        clips.check(str(path), ranges)
        return clips

    def check(self, source: str, ranges: StateRanges = DEFAULT_STATE_RANGES) -> None:
        """ValueError naming `source`, the clip and the field unless states, actions and latents are usable."""
        if self.states.ndim != 3:
            raise ValueError(f"{source}: states must be [clips, T, 7], got {list(self.states.shape)}")
        for i in range(len(self.states)):
            pose.check_states(self.states[i], f"{source}: clip {i} states", ranges)
        bad = np.flatnonzero(~np.isfinite(self.actions.reshape(len(self.actions), -1)).all(axis=1))
        if len(bad):
            raise ValueError(f"{source}: clip {int(bad[0])} actions are NaN or infinite")
        if self.latents is not None:
            finite = np.isfinite(np.asarray(self.latents).reshape(len(self.latents), -1)).all(axis=1)
            if not finite.all():
                raise ValueError(f"{source}: clip {int(np.flatnonzero(~finite)[0])} latents are NaN or infinite")


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


def open_clips(path: str | Path, frames: int, fps: float, ranges: StateRanges = DEFAULT_STATE_RANGES) -> Any:
    """A clip dataset from a path: a `.zarr` latent cache, DROID-layout episodes (a folder or a
    trajectory list file, encoded on the fly), a LeRobot dataset or spec file, or a clips `.npz`. States outside `ranges` skip their
    episode (or refuse the `.npz`)."""
    path = Path(path)
    if not str(path) or not path.exists():
        raise FileNotFoundError(f"training data not found: {str(path)!r}")
    if path.suffix == ".npz":
        clips = InMemoryClips.load(path, ranges)
        if clips.states.shape[1] != frames:
            raise ValueError(f"{path} holds clips of {clips.states.shape[1]} frames, but frames={frames}")
        return clips
    if path.suffix == ".zarr":
        from jepa_ac.data.latent_cache import LatentClips

        return LatentClips(path, frames_per_clip=frames, fps=fps, state_ranges=ranges)
    from jepa_ac.data.lerobot import is_lerobot_source

    if path.is_dir() or path.suffix in (".txt", ".csv", ".list") or is_lerobot_source(path):
        from jepa_ac.data.reader import ClipConfig, DroidClips

        return DroidClips(path, ClipConfig(frames_per_clip=frames, fps=fps, state_ranges=ranges))
    raise ValueError(f"{path}: unsupported training data (expected a .zarr latent cache, a DROID-layout episode "
                     "folder or trajectory list, a LeRobot dataset or spec file, or a clips .npz)")


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


def parse_state_ranges(overrides: Mapping[str, Any], where: str) -> StateRanges:
    """`StateRanges` with `overrides` (a config's `state_ranges`, e.g. {"max_position": 10.0}); a
    ValueError names an unknown field or a bad value."""
    import dataclasses

    if not isinstance(overrides, Mapping):
        raise ValueError(f"{where} must be a mapping of StateRanges fields, got {overrides!r}")
    known = [f.name for f in dataclasses.fields(StateRanges)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {known}")
    try:
        return StateRanges(**overrides)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _sources(dataset: Any) -> list[Any]:
    """The storage-level datasets under `Subset` / `VideoClips` wrappers (each once)."""
    found, stack = [], [dataset]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        inner = [getattr(item, name) for name in ("dataset", "clips") if hasattr(item, name)]
        if inner:
            stack.extend(inner)
        elif all(item is not f for f in found):
            found.append(item)
    return found


def data_report(*datasets: Any) -> dict[str, Any]:
    """Counts of episodes skipped at indexing and episodes with undecodable frames, for a run's summary."""
    skipped, undecodable = set(), set()
    for source in [s for d in datasets for s in _sources(d)]:
        skipped.update(str(entry[0]) for entry in getattr(source, "skipped", []))
        undecodable.update(getattr(source, "decode_failures", {}))
    return {"skipped_episodes": len(skipped), "undecodable_episodes": len(undecodable)}


def empty_data_message(dataset: Any, data: str) -> str:
    """Why `dataset` has no clips: the reasons its episodes were skipped (the first few)."""
    reasons = [f"{entry[0]}: {entry[1]}" for source in _sources(dataset) for entry in getattr(source, "skipped", [])]
    if not reasons:
        return f"no training clips in {data!r}"
    return (f"no training clips in {data!r}: all {len(reasons)} episodes were skipped; first: {reasons[0]}"
            + (f" (and {len(reasons) - 1} more, see the warnings above)" if len(reasons) > 1 else ""))


def latent_caches(dataset: Any) -> list[Any]:
    """The latent caches a clip dataset reads (none for video or `.npz` clips)."""
    return [source.cache for source in _sources(dataset) if hasattr(source, "cache")]
