"""A zarr (v3) cache of frozen-encoder latents for every frame of every episode.

    cache = LatentCache.create(path, encoder_hash=wm.encoder_hash(), encoder_info={...})
    encode_episodes(find_episodes("data/reach"), lambda f: np.asarray(wm.encode(f)), cache)
    clips = LatentClips(path, frames_per_clip=8, fps=4.0, rank=rank, world_size=world_size)

Layout (one group per episode, named by the episode's uuid):

    cache.zarr/                attrs: format, version, encoder_hash, encoder, latent_dtype, N, D
      episodes/<uuid>/         attrs: source, fps, length, camera, complete
        latents  [T, N, D]     float16 (default), chunks of `chunk_frames` frames, zstd
        states   [T, 7]        float64, as stored in trajectory.h5
        actions  [T-1, 7]      float64, between consecutive rows (clips at another rate recompute them)

The cache is keyed by the sha256 of the encoder weights, and records the encoder's config and
checkpoint: writing into it with another encoder, or training a predictor on it with another
encoder (`check_same_encoder`), is an error that names both. An episode counts only once its
`complete` attr is set (written last), so an interrupted run is resumed by re-encoding just the
unfinished episodes; an episode whose video fails to decode is skipped and reported. Reading
checks states as `DroidClips` does (finite, inside `StateRanges`: other episodes are skipped) and
latents for NaN/inf.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from jepa_ac.model import pose
from jepa_ac.data import layout
from jepa_ac.data.reader import (
    EpisodeError,
    EpisodeRecord,
    check_episode_states,
    check_shard,
    clip_windows,
    frame_stride,
    open_episode,
)
from jepa_ac.data.video import VideoDecodeError, iter_mp4
from jepa_ac.model.pose import DEFAULT_STATE_RANGES, StateRanges

logger = logging.getLogger(__name__)

CACHE_FORMAT = "jepa_ac.latent_cache"
CACHE_VERSION = 1
LATENT_DTYPES = ("float16", "float32", "bfloat16")
EPISODES_GROUP = "episodes"


class CacheError(ValueError):
    """The store is not a latent cache, or belongs to another encoder."""


@dataclass(frozen=True)
class CacheInfo:
    """The typed root record of a latent cache (stored as the store's attrs)."""

    encoder_hash: str
    latent_dtype: str = "float16"
    encoder: Mapping[str, Any] = field(default_factory=dict)  # checkpoint path, encoder key, EncoderConfig
    tokens_per_frame: int | None = None  # N, known once the first episode is written
    embed_dim: int | None = None  # D
    format: str = CACHE_FORMAT
    version: int = CACHE_VERSION

    def __post_init__(self) -> None:
        if self.format != CACHE_FORMAT:
            raise CacheError(f"not a latent cache (format={self.format!r}, expected {CACHE_FORMAT!r})")
        if self.version != CACHE_VERSION:
            raise CacheError(f"latent cache version {self.version!r}; this code reads version {CACHE_VERSION}")
        if not self.encoder_hash or not isinstance(self.encoder_hash, str):
            raise ValueError(f"CacheInfo.encoder_hash must be a non-empty sha256 string, got {self.encoder_hash!r}")
        if self.latent_dtype not in LATENT_DTYPES:
            raise ValueError(f"CacheInfo.latent_dtype must be one of {LATENT_DTYPES}, got {self.latent_dtype!r}")

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "CacheInfo":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in attrs.items() if k in known})  # other attrs (e.g. "runs") are logs


class LatentCache:
    """Read/write access to a latent cache store."""

    def __init__(self, group: Any, path: Path) -> None:
        self.group = group
        self.path = path
        attrs = dict(group.attrs)
        if attrs.get("format") != CACHE_FORMAT:
            raise CacheError(f"{path} is not a latent cache (attrs format={attrs.get('format')!r})")
        try:
            self.info = CacheInfo.from_attrs(attrs)
        except (CacheError, ValueError, TypeError) as err:
            raise CacheError(f"{path}: {err}") from None
        self.encoder_hash = self.info.encoder_hash
        self.latent_dtype = self.info.latent_dtype
        self.attrs = attrs

    @classmethod
    def create(
        cls, path: str | Path, encoder_hash: str, encoder_info: Mapping[str, Any] | None = None,
        latent_dtype: str = "float16",
    ) -> "LatentCache":
        """Open `path` for writing, creating it if needed; refuses a store made with another encoder."""
        import zarr

        if latent_dtype not in LATENT_DTYPES:
            raise ValueError(f"latent_dtype must be one of {LATENT_DTYPES}, got {latent_dtype!r}")
        path = Path(path)
        if path.exists():
            cache = cls.open(path, mode="a")
            if cache.encoder_hash != encoder_hash:
                raise CacheError(
                    f"{path} holds latents of encoder {cache.encoder_hash[:12]}..., not {encoder_hash[:12]}...: "
                    "refusing to mix latent spaces (write to a new --out)"
                )
            if cache.latent_dtype != latent_dtype:
                raise CacheError(f"{path} stores {cache.latent_dtype} latents, not {latent_dtype}")
            return cache
        info = CacheInfo(encoder_hash=encoder_hash, latent_dtype=latent_dtype, encoder=dict(encoder_info or {}))
        group = zarr.open_group(str(path), mode="w-", zarr_format=3)
        group.attrs.update(dataclasses.asdict(info))
        group.create_group(EPISODES_GROUP)
        return cls(group, path)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> "LatentCache":
        import zarr

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"latent cache {path} does not exist")
        try:
            group = zarr.open_group(str(path), mode=mode, zarr_format=3)
        except Exception as err:  # zarr raises several types for a non-store folder
            raise CacheError(f"{path} is not a zarr v3 latent cache: {err}") from None
        return cls(group, path)

    def _episodes(self) -> Any:
        return self.group[EPISODES_GROUP]

    def episode_names(self) -> list[str]:
        """Complete episodes, sorted."""
        episodes = self._episodes()
        return sorted(name for name, g in episodes.groups() if g.attrs.get("complete"))

    def has_episode(self, name: str) -> bool:
        episodes = self._episodes()
        return name in episodes and bool(episodes[name].attrs.get("complete"))

    def episode(self, name: str) -> Any:
        if not self.has_episode(name):
            raise KeyError(f"{self.path} has no complete episode {name!r}")
        return self._episodes()[name]

    def begin_episode(
        self, name: str, length: int, tokens: int, dim: int, states: np.ndarray, attrs: Mapping[str, Any],
        chunk_frames: int = 16,
    ) -> Any:
        """(Re)create an episode group with empty latents [T, N, D]; returns the latents array."""
        from zarr.codecs import ZstdCodec

        episodes = self._episodes()
        if name in episodes:
            del episodes[name]  # an unfinished earlier attempt
        group = episodes.create_group(name)
        group.attrs.update({**dict(attrs), "length": int(length), "complete": False})
        latents = group.create_array("latents", shape=(length, tokens, dim), chunks=(min(chunk_frames, length), tokens, dim),
                                     dtype=self.latent_dtype, compressors=ZstdCodec(level=3))
        group.create_array("states", data=np.asarray(states, np.float64), compressors=ZstdCodec(level=3))
        group.create_array("actions", data=np.asarray(pose.actions_from_states(states), np.float64).reshape(-1, 7),
                           compressors=ZstdCodec(level=3))
        return latents

    def finish_episode(self, name: str) -> None:
        self._episodes()[name].attrs["complete"] = True

    def discard_episode(self, name: str) -> None:
        """Remove an unfinished episode (e.g. its video failed to decode part-way)."""
        episodes = self._episodes()
        if name in episodes:
            del episodes[name]


def check_same_encoder(cache: LatentCache, encoder_hash: str, encoder_config: Mapping[str, Any] | None,
                       encoder_source: str) -> None:
    """`CacheError` naming both encoders unless the cache's latents come from this encoder (weights
    sha256, and config where the cache recorded it): a predictor trained on another encoder's latents
    would be bundled with an encoder whose latent space it never saw."""
    import json

    made_by = cache.info.encoder.get("checkpoint", "an unrecorded checkpoint") if cache.info.encoder else \
        "an unrecorded checkpoint"
    if cache.encoder_hash != encoder_hash:
        raise CacheError(
            f"{cache.path} holds latents of encoder sha256 {cache.encoder_hash[:16]}... (made from {made_by}), but "
            f"the encoder given, {encoder_source}, has sha256 {encoder_hash[:16]}...: re-encode the data with "
            f"`python -m jepa_ac.encode_dataset --checkpoint {encoder_source}`, or train with the encoder that made "
            f"the cache")
    recorded = cache.info.encoder.get("config") if cache.info.encoder else None
    if recorded is not None and encoder_config is not None:
        ours = json.loads(json.dumps(dict(encoder_config)))  # tuples -> lists, as stored
        differing = sorted(k for k in set(recorded) | set(ours) if recorded.get(k) != ours.get(k))
        if differing:
            raise CacheError(f"{cache.path} holds latents of the same encoder weights but another config "
                             f"({', '.join(f'{k}: {recorded.get(k)!r} there vs {ours.get(k)!r} here' for k in differing)}); "
                             f"re-encode the data with {encoder_source}")


def episode_key(record: EpisodeRecord) -> str:
    """A zarr-safe group name for an episode: its uuid."""
    return record.uuid.replace("/", "_").lstrip("_") or record.path.name


def encode_episodes(
    folders: Sequence[Path],
    encode_fn: Callable[[np.ndarray], Any],
    cache: LatentCache,
    batch_frames: int = 16,
    camera_key: str = layout.LEFT_MP4_KEY,
    progress: Callable[[Iterable], Iterable] | None = None,
    ranges: StateRanges = DEFAULT_STATE_RANGES,
) -> dict[str, Any]:
    """Encode every frame of every usable episode once; complete episodes already cached are skipped.

    `encode_fn(frames_uint8 [b, H, W, 3]) -> latents [b, N, D]`. Returns counts for a summary; an
    episode that cannot be used (see `open_episode`) or whose video fails to decode is skipped,
    with a warning and its reason in `summary["skipped"]`.
    """
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    summary: dict[str, Any] = {"encoded": [], "already_cached": [], "skipped": [], "frames": 0}
    for folder in (progress or (lambda x: x))(folders):
        try:
            record = open_episode(folder, camera_key, ranges)
        except EpisodeError as err:
            logger.warning("skipping episode %s: %s", folder, err)
            summary["skipped"].append({"episode": str(folder), "reason": str(err)})
            continue
        name = episode_key(record)
        if cache.has_episode(name):
            summary["already_cached"].append(name)
            continue
        latents = None
        written = 0
        try:
            for chunk in _frame_batches(record, batch_frames):
                z = np.asarray(encode_fn(chunk))  # [b, N, D]
                if z.ndim != 3 or len(z) != len(chunk):
                    raise ValueError(f"encode_fn returned shape {list(z.shape)} for {len(chunk)} frames; "
                                     "expected [b, N, D]")
                if latents is None:
                    attrs = {"source": str(Path(folder).resolve()), "fps": record.fps, "camera": record.camera,
                             "uuid": record.uuid, "task": record.metadata.get("current_task", "")}
                    latents = cache.begin_episode(name, record.num_frames, z.shape[1], z.shape[2], record.states,
                                                  attrs)
                    _record_token_shape(cache, z.shape[1], z.shape[2])
                latents[written : written + len(z)] = z.astype(latents.dtype)
                written += len(z)
        except VideoDecodeError as err:
            logger.warning("skipping episode %s: %s", folder, err)
            summary["skipped"].append({"episode": str(folder), "reason": str(err)})
            cache.discard_episode(name)
            continue
        if written < record.num_frames:  # the video ended early: never mark a partly filled episode complete
            reason = f"{record.mp4_path}: {written} frames decoded, {record.num_frames} expected"
            logger.warning("skipping episode %s: %s", folder, reason)
            summary["skipped"].append({"episode": str(folder), "reason": reason})
            cache.discard_episode(name)
            continue
        cache.finish_episode(name)
        summary["encoded"].append(name)
        summary["frames"] += written
    return summary


def _frame_batches(record: EpisodeRecord, batch_frames: int) -> Iterable[np.ndarray]:
    batch: list[np.ndarray] = []
    for i, frame in enumerate(iter_mp4(record.mp4_path)):
        if i >= record.num_frames:
            break
        batch.append(frame)
        if len(batch) == batch_frames:
            yield np.stack(batch)  # [b, H, W, 3]
            batch = []
    if batch:
        yield np.stack(batch)


def _record_token_shape(cache: LatentCache, tokens: int, dim: int) -> None:
    known = (cache.attrs.get("tokens_per_frame"), cache.attrs.get("embed_dim"))
    if known == (None, None):
        cache.group.attrs.update({"tokens_per_frame": tokens, "embed_dim": dim})
        cache.attrs.update({"tokens_per_frame": tokens, "embed_dim": dim})
        cache.info = dataclasses.replace(cache.info, tokens_per_frame=tokens, embed_dim=dim)
    elif known != (tokens, dim):
        raise CacheError(f"{cache.path}: latents are [N={known[0]}, D={known[1]}] but the encoder gave [{tokens}, {dim}]")


class LatentClips:
    """Clips of cached latents for predictor training, sharded by rank for torchrun.

    Item: {"latents": [F, N, D] float32, "states": [F, 7], "actions": [F-1, 7], "indices": [F] frame
    numbers, "episode": position in `names`} (numbers only, so any collate can stack them).
    Windows are enumerated as in `DroidClips` and dealt round-robin: rank r keeps windows r, r+W, ...
    """

    def __init__(self, path: str | Path, frames_per_clip: int = 8, fps: float | None = 4.0,
                 clip_step: int | None = None, rank: int = 0, world_size: int = 1,
                 encoder_hash: str | None = None, state_ranges: StateRanges = DEFAULT_STATE_RANGES) -> None:
        check_shard(rank, world_size)
        if frames_per_clip < 2:
            raise ValueError(f"frames_per_clip must be >= 2, got {frames_per_clip}")
        self.cache = LatentCache.open(path)
        if encoder_hash is not None and encoder_hash != self.cache.encoder_hash:
            raise CacheError(f"{path} holds latents of encoder {self.cache.encoder_hash[:12]}..., "
                             f"not the expected {encoder_hash[:12]}...")
        self.frames_per_clip = frames_per_clip
        self.names, self.states, self.strides, self.latents = [], [], [], []
        self.skipped: list[tuple[str, str]] = []  # (episode, reason)
        for name in self.cache.episode_names():
            group = self.cache.episode(name)
            stride = frame_stride(float(group.attrs["fps"]), fps)
            states = np.asarray(group["states"][:])
            try:
                check_episode_states(states, f"{path} episode {name} states", state_ranges)
            except EpisodeError as err:
                logger.warning("skipping latent cache episode %s: %s", name, err)
                self.skipped.append((name, str(err)))
                continue
            if len(states) < (frames_per_clip - 1) * stride + 1:
                logger.warning("latent cache episode %s: too short (%d frames) for a clip of %d every %d",
                               name, len(states), frames_per_clip, stride)
                continue
            self.names.append(name)
            self.states.append(states)
            self.strides.append(stride)
            self.latents.append(group["latents"])
        windows = clip_windows([len(s) for s in self.states], self.strides, frames_per_clip, clip_step)
        self.windows = windows[rank::world_size]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        episode, start = self.windows[index]
        indices = start + self.strides[episode] * np.arange(self.frames_per_clip)  # [F]
        latents = np.asarray(self.latents[episode].oindex[indices], np.float32)  # [F, N, D]
        if not np.isfinite(latents).all():
            frame = int(indices[np.flatnonzero(~np.isfinite(latents).reshape(len(indices), -1).all(axis=1))[0]])
            raise CacheError(f"{self.cache.path} episode {self.names[episode]}: the latents of frame {frame} are "
                             "NaN or infinite (a damaged cache: re-encode this episode)")
        states = self.states[episode][indices]  # [F, 7]
        return {
            "latents": latents,  # [F, N, D]
            "states": states,
            "actions": pose.actions_from_states(states),  # [F-1, 7]
            "indices": indices,
            "episode": np.int64(episode),
        }
