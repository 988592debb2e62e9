"""V-JEPA multi-block 3D masking on the token grid.

Each generator samples `num_blocks` blocks, each covering `spatial_scale` of the H x W grid with
an aspect ratio in `aspect_ratio` and (by default) the full temporal extent. Their union is the
target (what the predictor must predict); the context is the complement. V-JEPA uses a
short-range generator (8 blocks of 15%) and a long-range one (2 blocks of 70%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BlockMaskSpec:
    num_blocks: int
    spatial_scale: float  # fraction of the H x W grid each block covers
    aspect_ratio: tuple[float, float] = (0.75, 1.5)
    temporal_scale: tuple[float, float] = (1.0, 1.0)  # fraction of T each block spans

    def __post_init__(self) -> None:
        if self.num_blocks < 1:
            raise ValueError(f"BlockMaskSpec.num_blocks must be >= 1, got {self.num_blocks}")
        if not 0 < self.spatial_scale <= 1:
            raise ValueError(f"BlockMaskSpec.spatial_scale must be in (0, 1], got {self.spatial_scale}")
        lo, hi = self.aspect_ratio
        if not 0 < lo <= hi:
            raise ValueError(f"BlockMaskSpec.aspect_ratio must be 0 < low <= high, got {self.aspect_ratio}")
        tlo, thi = self.temporal_scale
        if not 0 < tlo <= thi <= 1:
            raise ValueError(f"BlockMaskSpec.temporal_scale must be in (0, 1], got {self.temporal_scale}")


SHORT_RANGE = BlockMaskSpec(num_blocks=8, spatial_scale=0.15)
LONG_RANGE = BlockMaskSpec(num_blocks=2, spatial_scale=0.7)
VJEPA_MASKS = (SHORT_RANGE, LONG_RANGE)


def sample_target_mask(spec: BlockMaskSpec, grid: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Union of the spec's blocks on a [T, H, W] grid -> bool [T, H, W] (True = target)."""
    T, H, W = grid
    mask = np.zeros(grid, dtype=bool)
    for _ in range(spec.num_blocks):
        ratio = math.exp(rng.uniform(math.log(spec.aspect_ratio[0]), math.log(spec.aspect_ratio[1])))
        area = spec.spatial_scale * H * W
        h = int(min(H, max(1, round(math.sqrt(area * ratio)))))
        w = int(min(W, max(1, round(math.sqrt(area / ratio)))))
        t = int(min(T, max(1, round(T * rng.uniform(*spec.temporal_scale)))))
        top, left, start = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1), rng.integers(0, T - t + 1)
        mask[start : start + t, top : top + h, left : left + w] = True
    return mask


def sample_batch_masks(
    spec: BlockMaskSpec, grid: tuple[int, int, int], batch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Token indices for a batch: context [B, Kc] and target [B, Kt], both sorted per sample.

    As the upstream collator, every sample's index list is truncated to the batch minimum so
    they stack (the dropped indices are random, never shared between context and target).
    """
    contexts, targets = [], []
    for _ in range(batch):
        flat = sample_target_mask(spec, grid, rng).reshape(-1)
        if flat.all():  # keep at least one context token
            flat[rng.integers(flat.size)] = False
        contexts.append(np.flatnonzero(~flat))
        targets.append(np.flatnonzero(flat))
    kc, kt = min(map(len, contexts)), min(map(len, targets))
    pick = lambda idx, k: np.sort(rng.choice(idx, size=k, replace=False)) if len(idx) > k else idx  # noqa: E731
    return np.stack([pick(c, kc) for c in contexts]), np.stack([pick(t, kt) for t in targets])
