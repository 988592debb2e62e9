"""V-JEPA 2 video encoder (MLX): tubelet patch embedding, 3D-RoPE ViT blocks, final norm.

Same computation and parameter names as `jepa_ac/nn_torch/encoder.py`; inputs stay in the
torch layout `[B, C, T, H, W]` so both backends take the same preprocessed clips.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from jepa_ac.config import EncoderConfig
from jepa_ac.nn_mlx.layers import Block, grid_positions, rope_cos_sin


class PatchEmbed(nn.Module):
    """Conv3d (tubelet x patch x patch) for video, Conv2d for an image model (num_frames == 1).

    The kernel is stored as MLX's channels-last conv weight `(D, t, p, p, C)` (or `(D, p, p, C)`).
    Stride equals kernel size, so the convolution is computed as one matmul over the cut-out
    patches: the same sums, and faster than a generic conv on CPU.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        p, t = config.patch_size, config.tubelet_size
        self.patch, self.tubelet = p, (t if config.is_video else 1)
        if config.is_video:
            self.proj = nn.Conv3d(config.in_chans, config.embed_dim, kernel_size=(t, p, p), stride=(t, p, p))
        else:
            self.proj = nn.Conv2d(config.in_chans, config.embed_dim, kernel_size=p, stride=p)

    def __call__(self, x: mx.array) -> mx.array:
        """x [B, C, T, H, W] (video) or [B, C, H, W] (image) -> [B, N, D], tokens in (t, h, w) order."""
        if x.ndim == 4:
            x = x[:, :, None]  # [B, C, 1, H, W]
        B, C, T, H, W = x.shape
        t, p = self.tubelet, self.patch
        x = x.reshape(B, C, T // t, t, H // p, p, W // p, p)
        x = x.transpose(0, 2, 4, 6, 3, 5, 7, 1)  # [B, T/t, H/p, W/p, t, p, p, C]
        x = x.reshape(B, (T // t) * (H // p) * (W // p), -1)  # [B, N, t*p*p*C]
        weight = self.proj.weight.reshape(self.proj.weight.shape[0], -1)  # [D, t*p*p*C]
        return x @ weight.T + self.proj.bias  # [B, N, D]


class VisionTransformer(nn.Module):
    """Encoder: clip [B, 3, T, H, W] -> tokens [B, T/t * H/p * W/p, D] (final LayerNorm applied)."""

    conv_weights = ("patch_embed.proj.weight",)

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(config)
        self.blocks = [
            Block(config.embed_dim, config.num_heads, config.mlp_ratio, config.qkv_bias, config.use_silu,
                  config.wide_silu, config.norm_eps)
            for _ in range(config.depth)
        ]
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self._rope: dict[tuple[int, int, int], tuple[mx.array, mx.array]] = {}

    def token_grid(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """Token grid (T', H', W') of an input clip [B, C, T, H, W] or image [B, C, H, W]."""
        c = self.config
        if len(shape) == 5:
            if not c.is_video:
                raise ValueError("this encoder has a 2D patch embedding (num_frames=1); pass [B, C, H, W]")
            _, ch, t, h, w = shape
            if t % c.tubelet_size:
                raise ValueError(f"clip length {t} is not a multiple of tubelet_size={c.tubelet_size}")
            t //= c.tubelet_size
        elif len(shape) == 4:
            if c.is_video:
                raise ValueError("this encoder takes clips [B, C, T, H, W]; repeat an image into a tubelet")
            _, ch, h, w = shape
            t = 1
        else:
            raise ValueError(f"encoder input must be [B, C, T, H, W] or [B, C, H, W], got {list(shape)}")
        if ch != c.in_chans:
            raise ValueError(f"encoder input has {ch} channels, expected in_chans={c.in_chans} (layout [B, C, T, H, W])")
        if h % c.patch_size or w % c.patch_size:
            raise ValueError(f"input size {h}x{w} is not a multiple of patch_size={c.patch_size}")
        return t, h // c.patch_size, w // c.patch_size

    def rope_tables(self, t: int, gh: int, gw: int) -> tuple[mx.array, mx.array]:
        """cos, sin [N, hd] for a full (t, gh, gw) token grid, cached."""
        key = (t, gh, gw)
        if key not in self._rope:
            self._rope[key] = rope_cos_sin(*grid_positions(np.arange(t * gh * gw), gh, gw), self.config.head_dim)
        return self._rope[key]

    def __call__(self, x: mx.array, masks: mx.array | None = None) -> mx.array:
        """x: [B, C, T, H, W]; masks: optional [B, K] indices of the tokens to keep -> [B, K or N, D]."""
        t, gh, gw = self.token_grid(tuple(x.shape))
        x = self.patch_embed(x)  # [B, N, D]
        if masks is None:
            cos, sin = self.rope_tables(t, gh, gw)  # [N, hd]
        else:
            ids = np.asarray(masks)
            x = mx.take_along_axis(x, mx.array(ids)[..., None], axis=1)  # [B, K, D]
            cos, sin = rope_cos_sin(*grid_positions(ids, gh, gw), self.config.head_dim)  # [B, K, hd]
            cos, sin = cos[:, None], sin[:, None]  # [B, 1, K, hd]: broadcast over heads
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.norm(x)
