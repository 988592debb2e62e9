"""Video clips for self-supervised pretraining, and V-JEPA's random-resized-crop augmentation.

    clips = VideoClips("data/sim128/all.txt", frames=4, fps=4.0, preload=True)
    batch = random_resized_crop(np.stack([clips[i] for i in idx]), size=64, crop=CropSpec(), rng=rng)
    # batch: [B, 3, T, 64, 64] float32, ImageNet-normalised (what the encoder takes)

Clips come from DROID-layout episodes (ours or the released DROID) through `DroidClips`, so the
camera, frame rate and bad-episode rules are the predictor training's. `preload=True` decodes
every episode once into memory (fast for small simulated datasets; leave it off for DROID); an
episode whose video fails to decode there is skipped, named in a warning and counted in
`decode_failures` (without preload, `DroidClips` replaces each undecodable clip instead).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from jepa_ac.data.reader import ClipConfig, DroidClips
from jepa_ac.data.video import VideoDecodeError, read_mp4
from jepa_ac.model.pose import DEFAULT_STATE_RANGES, StateRanges
from jepa_ac.model.preprocess import IMAGENET_MEAN, IMAGENET_STD

logger = logging.getLogger(__name__)


class VideoClips:
    """uint8 clips [T, H, W, 3] of `frames` frames at `fps` from DROID-layout episodes."""

    def __init__(self, source: str | Path | Sequence[str | Path], frames: int, fps: float | None,
                 preload: bool = False, rank: int = 0, world_size: int = 1,
                 state_ranges: StateRanges = DEFAULT_STATE_RANGES) -> None:
        self.clips = DroidClips(source, ClipConfig(frames_per_clip=frames, fps=fps, state_ranges=state_ranges),
                                rank, world_size)
        self.windows = self.clips.windows  # [(episode, start)]: episode structure for splits
        self.frames = frames
        self.preloaded = preload
        self._videos: dict[int, np.ndarray] = {}
        if preload:
            from tqdm import tqdm

            needed = sorted({episode for episode, _ in self.windows})
            for episode in tqdm(needed, desc="decoding videos", mininterval=2.0):
                try:
                    self._videos[episode] = read_mp4(self.clips.episodes[episode].mp4_path)  # [F, H, W, 3]
                except VideoDecodeError as err:
                    folder = str(self.clips.episodes[episode].path)
                    logger.warning("skipping episode %s: %s", folder, err)
                    self.clips.decode_failures[folder] = str(err)
            if self.clips.decode_failures:
                self.windows = [w for w in self.windows if w[0] in self._videos]
                logger.warning("skipped %d of %d episodes whose video cannot be decoded", len(self.clips.decode_failures),
                               len(needed))

    @property
    def decode_failures(self) -> dict[str, str]:
        return self.clips.decode_failures

    @property
    def skipped(self) -> list:
        return self.clips.skipped

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> np.ndarray:
        episode, start = self.windows[index]
        if not self.preloaded:
            return self.clips[index]["frames"]
        stride = self.clips.strides[episode]
        return self._videos[episode][start + stride * np.arange(self.frames)]  # [T, H, W, 3]


@dataclass(frozen=True)
class CropSpec:
    """Random-resized-crop: area fraction in `scale`, aspect ratio (w/h) in `ratio`, same for all frames."""

    scale: tuple[float, float] = (0.3, 1.0)
    ratio: tuple[float, float] = (0.75, 1.35)
    repeat_frame_prob: float = 0.0  # probability a clip becomes one frame repeated (how planning encodes images)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))
        object.__setattr__(self, "ratio", tuple(float(v) for v in self.ratio))
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"CropSpec.scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"CropSpec.ratio must satisfy 0 < low <= high, got {self.ratio}")
        if not 0 <= self.repeat_frame_prob <= 1:
            raise ValueError(f"CropSpec.repeat_frame_prob must be in [0, 1], got {self.repeat_frame_prob}")


def crop_box(height: int, width: int, spec: CropSpec, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop with the spec's area and aspect ratio (whole frame as fallback)."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*spec.scale)
        aspect = math.exp(rng.uniform(math.log(spec.ratio[0]), math.log(spec.ratio[1])))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def random_resized_crop(clips: np.ndarray, size: int, spec: CropSpec, rng: np.random.Generator):
    """uint8 clips [B, T, H, W, 3] -> normalised torch float32 [B, 3, T, size, size].

    Each clip gets its own crop (the same for all its frames), resized with antialiased bicubic
    interpolation; with probability `repeat_frame_prob` a clip is replaced by one of its frames
    repeated T times.
    """
    import torch
    import torch.nn.functional as F

    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8:
        raise ValueError(f"clips must be uint8 [B, T, H, W, 3], got {clips.dtype} {list(clips.shape)}")
    B, T, H, W, _ = clips.shape
    mean = torch.as_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.as_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = []
    for clip in clips:
        top, left, h, w = crop_box(H, W, spec, rng)
        if rng.uniform() < spec.repeat_frame_prob:
            clip = np.repeat(clip[rng.integers(T)][None], T, axis=0)
        x = torch.from_numpy(np.ascontiguousarray(clip[:, top : top + h, left : left + w]))  # [T, h, w, 3]
        x = x.permute(0, 3, 1, 2).float() / 255.0  # [T, 3, h, w]
        # antialiased bicubic, as `preprocess.resize_center_crop` (PIL) does at planning time
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        out.append(((x - mean) / std).permute(1, 0, 2, 3))  # [3, T, size, size]
    return torch.stack(out)  # [B, 3, T, size, size]
