"""V-JEPA 2 / 2.1 video encoder (MLX): tubelet patch embedding, 3D-RoPE ViT blocks, output norm(s).

Same computation and parameter names as `jepa_ac/model/nn_torch/encoder.py` (V-JEPA 2.1: image patch
embedding, modality embeddings, pairwise and interpolated RoPE, `norms_block`); inputs stay in the
torch layout `[B, C, T, H, W]` so both backends take the same preprocessed clips.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from jepa_ac.model.config import V2_1_PRETRAINED_GRID, EncoderConfig
from jepa_ac.model.nn_mlx.layers import Block, grid_positions, rope_cos_sin


class PatchEmbed(nn.Module):
    """Conv3d (tubelet x patch x patch) for video, Conv2d for an image model (num_frames == 1).

    The kernel is stored as MLX's channels-last conv weight `(D, t, p, p, C)` (or `(D, p, p, C)`).
    Stride equals kernel size, so the convolution is computed as one matmul over the cut-out
    patches: the same sums, and faster than a generic conv on CPU. `tubelet` overrides the
    config's (V-JEPA 2.1's image patch embedding is a Conv3d with tubelet 1).
    """

    def __init__(self, config: EncoderConfig, tubelet: int | None = None) -> None:
        super().__init__()
        p = config.patch_size
        t = config.tubelet_size if tubelet is None else tubelet
        video = config.is_video or tubelet is not None
        self.patch, self.tubelet = p, (t if video else 1)
        if video:
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


def encoder_positions(config: EncoderConfig, ids: np.ndarray, grid_h: int, grid_w: int) -> tuple[np.ndarray, ...]:
    """Flat token indices [..., N] -> (frame, row, column) RoPE positions, float32 (see the torch twin:
    V-JEPA 2.1's `interpolate_rope` rescales rows and columns to the pretraining grid)."""
    frame, row, col = grid_positions(ids, grid_h, grid_w)
    if config.is_v2_1 and config.interpolate_rope:
        top = V2_1_PRETRAINED_GRID[config.patch_size] - 1
        row = row * np.float32(top) / np.float32(grid_h - 1)
        col = col * np.float32(top) / np.float32(grid_w - 1)
    return frame, row, col


class VisionTransformer(nn.Module):
    """Encoder: clip [B, 3, T, H, W] -> tokens [B, T/t * H/p * W/p, D] (output norm applied)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        D = config.embed_dim
        self.patch_embed = PatchEmbed(config)
        if config.is_v2_1 and config.img_temporal_dim_size is not None:
            self.patch_embed_img = PatchEmbed(config, tubelet=1)
        if config.is_v2_1 and config.modality_embedding:
            self.img_mod_embed = mx.zeros((1, 1, D))
            self.video_mod_embed = mx.zeros((1, 1, D))
        self.blocks = [
            Block(D, config.num_heads, config.mlp_ratio, config.qkv_bias, config.use_silu,
                  config.wide_silu, config.norm_eps)
            for _ in range(config.depth)
        ]
        if config.is_v2_1:
            self.norms_block = [nn.LayerNorm(D, eps=config.norm_eps) for _ in config.hierarchical_layers]
        else:
            self.norm = nn.LayerNorm(D, eps=config.norm_eps)
        self._rope: dict[tuple[int, int, int], tuple[mx.array, mx.array]] = {}

    @property
    def conv_weights(self) -> tuple[str, ...]:
        """Parameters stored channels-last (conv kernels), for the torch <-> MLX layout change."""
        return ("patch_embed.proj.weight",) + (("patch_embed_img.proj.weight",) if "patch_embed_img" in self else ())

    def is_image_input(self, shape: tuple[int, ...]) -> bool:
        """V-JEPA 2.1: a 5-D input with `img_temporal_dim_size` frames takes the image patch embedding."""
        c = self.config
        return c.is_v2_1 and c.img_temporal_dim_size is not None and len(shape) == 5 and shape[2] == c.img_temporal_dim_size

    def token_grid(self, shape: tuple[int, ...]) -> tuple[int, int, int]:
        """Token grid (T', H', W') of an input clip [B, C, T, H, W] or image [B, C, H, W]."""
        c = self.config
        if len(shape) == 5:
            if not c.is_video:
                raise ValueError("this encoder has a 2D patch embedding (num_frames=1); pass [B, C, H, W]")
            _, ch, t, h, w = shape
            if self.is_image_input(shape):
                pass  # tubelet 1: one token frame per input frame
            elif t % c.tubelet_size:
                raise ValueError(f"clip length {t} is not a multiple of tubelet_size={c.tubelet_size}")
            else:
                t //= c.tubelet_size
        elif len(shape) == 4:
            if c.is_video:
                hint = ("pass an image as [B, C, 1, H, W]" if c.is_v2_1 and c.img_temporal_dim_size == 1
                        else "repeat an image into a tubelet")
                raise ValueError(f"this encoder takes clips [B, C, T, H, W]; {hint}")
            _, ch, h, w = shape
            t = 1
        else:
            raise ValueError(f"encoder input must be [B, C, T, H, W] or [B, C, H, W], got {list(shape)}")
        if ch != c.in_chans:
            raise ValueError(f"encoder input has {ch} channels, expected in_chans={c.in_chans} (layout [B, C, T, H, W])")
        if h % c.patch_size or w % c.patch_size:
            raise ValueError(f"input size {h}x{w} is not a multiple of patch_size={c.patch_size}")
        gh, gw = h // c.patch_size, w // c.patch_size
        if not c.handle_nonsquare_inputs and (gh, gw) != (c.grid_size, c.grid_size):
            raise ValueError(f"input size {h}x{w}: with handle_nonsquare_inputs=False the encoder takes "
                             f"{c.img_size}x{c.img_size} inputs only")
        if c.is_v2_1 and c.interpolate_rope and min(gh, gw) < 2:
            raise ValueError(f"input size {h}x{w}: interpolate_rope needs at least 2 patches a side "
                             "(upstream divides by patches - 1)")
        return t, gh, gw

    def rope_tables(self, t: int, gh: int, gw: int) -> tuple[mx.array, mx.array]:
        """cos, sin [N, hd] for a full (t, gh, gw) token grid, cached."""
        key = (t, gh, gw)
        if key not in self._rope:
            positions = encoder_positions(self.config, np.arange(t * gh * gw), gh, gw)
            self._rope[key] = rope_cos_sin(*positions, self.config.head_dim, self.config.is_v2_1)
        return self._rope[key]

    def embed(self, x: mx.array) -> mx.array:
        """Patch embedding (+ the 2.1 modality embedding): [B, C, T, H, W] -> [B, N, D]."""
        c = self.config
        image = self.is_image_input(tuple(x.shape))
        x = (self.patch_embed_img if image else self.patch_embed)(x)  # [B, N, D]
        if c.is_v2_1 and c.modality_embedding:
            x = x + (self.img_mod_embed if image else self.video_mod_embed)
        return x

    def __call__(self, x: mx.array, masks: mx.array | None = None, hierarchical: bool = False) -> mx.array:
        """x: [B, C, T, H, W]; masks: optional [B, K] indices of the tokens to keep -> [B, K or N, D].

        `hierarchical` (V-JEPA 2.1): the `norms_block[i]` outputs after the hierarchical layers,
        concatenated on the last axis -> [B, K or N, 4 * D] (D for n_output_distillation=1).
        """
        c = self.config
        if hierarchical and not c.is_v2_1:
            raise ValueError("hierarchical features need a V-JEPA 2.1 encoder (this one is V-JEPA 2)")
        t, gh, gw = self.token_grid(tuple(x.shape))
        x = self.embed(x)  # [B, N, D]
        if masks is None:
            cos, sin = self.rope_tables(t, gh, gw)  # [N, hd]
        else:
            ids = np.asarray(masks)
            x = mx.take_along_axis(x, mx.array(ids)[..., None], axis=1)  # [B, K, D]
            cos, sin = rope_cos_sin(*encoder_positions(c, ids, gh, gw), c.head_dim, c.is_v2_1)  # [B, K, hd]
            cos, sin = cos[:, None], sin[:, None]  # [B, 1, K, hd]: broadcast over heads
        if not c.is_v2_1:
            for block in self.blocks:
                x = block(x, cos, sin)
            return self.norm(x)
        wanted = set(c.hierarchical_outputs) if hierarchical else {len(c.hierarchical_layers) - 1}
        taps = {layer: k for k, layer in enumerate(c.hierarchical_layers)}  # block index -> norms_block index
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin)
            if taps.get(i) in wanted:
                outs.append(self.norms_block[taps[i]](x))
        return mx.concatenate(outs, axis=-1) if hierarchical else outs[-1]  # [B, N, 4*D] or [B, N, D]
