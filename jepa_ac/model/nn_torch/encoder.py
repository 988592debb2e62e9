"""V-JEPA 2 / 2.1 video encoder (torch): tubelet patch embedding, 3D-RoPE ViT blocks, output norm(s).

V-JEPA 2: one patch embedding, RoPE with upstream's tiled frequency layout, a final `norm`.
V-JEPA 2.1 (`config.is_v2_1`): an extra image patch embedding (tubelet 1) for inputs of
`img_temporal_dim_size` frames, learned image/video modality embeddings added after the patch
embedding, pairwise RoPE frequencies with height/width positions optionally interpolated to the
pretraining grid, and four `norms_block` LayerNorms: the last one gives the output, all four the
hierarchical features.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from jepa_ac.model.config import V2_1_PRETRAINED_GRID, EncoderConfig
from jepa_ac.model.nn_torch.layers import (Block, compute_dtype, grid_positions, init_transformer_weights, rope_tables,
                                           run_blocks)


class PatchEmbed(nn.Module):
    """Conv3d (tubelet x patch x patch) for video, Conv2d for an image model (num_frames == 1).

    `tubelet` overrides the config's (V-JEPA 2.1's image patch embedding is a Conv3d with tubelet 1).
    """

    def __init__(self, config: EncoderConfig, tubelet: int | None = None) -> None:
        super().__init__()
        p = config.patch_size
        t = config.tubelet_size if tubelet is None else tubelet
        if config.is_video or tubelet is not None:
            self.proj = nn.Conv3d(config.in_chans, config.embed_dim, kernel_size=(t, p, p), stride=(t, p, p))
        else:
            self.proj = nn.Conv2d(config.in_chans, config.embed_dim, kernel_size=p, stride=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C, T, H, W] -> [B, D, T/t, H/p, W/p] -> [B, N, D]
        return self.proj(x).flatten(2).transpose(1, 2)


def encoder_positions(
    config: EncoderConfig, ids: torch.Tensor, grid_h: int, grid_w: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat token indices [..., N] -> (frame, row, column) RoPE positions, float32.

    V-JEPA 2.1 with `interpolate_rope`: row and column are rescaled to the pretraining grid,
    `row * (G - 1) / (grid_h - 1)` (G = 16 for patch 16), in upstream's order of operations, so a
    384 px input spans the same position range as the 256 px one it was pretrained on.
    """
    frame, row, col = grid_positions(ids, grid_h, grid_w)
    if config.is_v2_1 and config.interpolate_rope:
        top = V2_1_PRETRAINED_GRID[config.patch_size] - 1
        row = row * top / (grid_h - 1)
        col = col * top / (grid_w - 1)
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
            self.img_mod_embed = nn.Parameter(torch.zeros(1, 1, D))
            self.video_mod_embed = nn.Parameter(torch.zeros(1, 1, D))
        rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(D, config.num_heads, config.mlp_ratio, config.qkv_bias, config.use_silu,
                  config.wide_silu, config.norm_eps, drop_path=rate)
            for rate in rates
        )
        if config.is_v2_1:
            self.norms_block = nn.ModuleList(
                nn.LayerNorm(D, eps=config.norm_eps) for _ in config.hierarchical_layers
            )
        else:
            self.norm = nn.LayerNorm(D, eps=config.norm_eps)
        init_transformer_weights(self, self.blocks, config.init_std)
        if config.is_v2_1 and config.modality_embedding:
            nn.init.normal_(self.img_mod_embed, std=1e-6)  # upstream init
            nn.init.normal_(self.video_mod_embed, std=1e-6)

    def is_image_input(self, shape: tuple[int, ...]) -> bool:
        """V-JEPA 2.1: a 5-D input with `img_temporal_dim_size` frames takes the image patch embedding."""
        c = self.config
        return c.is_v2_1 and c.img_temporal_dim_size is not None and len(shape) == 5 and shape[2] == c.img_temporal_dim_size

    def token_grid(self, x: torch.Tensor) -> tuple[int, int, int]:
        """Token grid (T', H', W') of an input clip [B, C, T, H, W] or image [B, C, H, W]."""
        c = self.config
        if x.ndim == 5:
            if not c.is_video:
                raise ValueError("this encoder has a 2D patch embedding (num_frames=1); pass [B, C, H, W]")
            _, _, t, h, w = x.shape
            if self.is_image_input(tuple(x.shape)):
                pass  # tubelet 1: one token frame per input frame
            elif t % c.tubelet_size:
                raise ValueError(f"clip length {t} is not a multiple of tubelet_size={c.tubelet_size}")
            else:
                t //= c.tubelet_size
        elif x.ndim == 4:
            if c.is_video:
                hint = ("pass an image as [B, C, 1, H, W]" if c.is_v2_1 and c.img_temporal_dim_size == 1
                        else "repeat an image into a tubelet")
                raise ValueError(f"this encoder takes clips [B, C, T, H, W]; {hint}")
            _, _, h, w = x.shape
            t = 1
        else:
            raise ValueError(f"encoder input must be [B, C, T, H, W] or [B, C, H, W], got {list(x.shape)}")
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

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embedding (+ the 2.1 modality embedding): [B, C, T, H, W] -> [B, N, D]."""
        c = self.config
        image = self.is_image_input(tuple(x.shape))
        x = (self.patch_embed_img if image else self.patch_embed)(x)  # [B, N, D]
        if c.is_v2_1 and c.modality_embedding:
            x = x + (self.img_mod_embed if image else self.video_mod_embed)
        return x

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None, hierarchical: bool = False) -> torch.Tensor:
        """x: [B, C, T, H, W]; masks: optional [B, K] indices of the tokens to keep -> [B, K or N, D].

        `hierarchical` (V-JEPA 2.1): the `norms_block[i]` outputs after the hierarchical layers,
        concatenated on the last axis -> [B, K or N, 4 * D] (D for n_output_distillation=1).
        """
        c = self.config
        if hierarchical and not c.is_v2_1:
            raise ValueError("hierarchical features need a V-JEPA 2.1 encoder (this one is V-JEPA 2)")
        t, gh, gw = self.token_grid(x)
        x = self.embed(x)  # [B, N, D]
        if masks is None:
            ids = torch.arange(t * gh * gw, device=x.device)  # [N]
            positions = encoder_positions(c, ids, gh, gw)
            cos, sin = rope_tables(*positions, c.head_dim, c.is_v2_1, compute_dtype(x))  # [N, 1, 1, hd]
        else:
            x = torch.gather(x, 1, masks[..., None].expand(-1, -1, x.shape[-1]))  # [B, K, D]
            positions = encoder_positions(c, masks, gh, gw)
            cos, sin = rope_tables(*positions, c.head_dim, c.is_v2_1, compute_dtype(x))  # [B, K, 1, 1, hd]
        if not c.is_v2_1:
            x = run_blocks(self.blocks, x, cos, sin, None, c.use_activation_checkpointing)
            return self.norm(x)
        wanted = set(c.hierarchical_outputs) if hierarchical else {len(c.hierarchical_layers) - 1}
        outs, start = [], 0
        for k, layer in enumerate(c.hierarchical_layers):  # the last one is the last block
            x = run_blocks(self.blocks[start : layer + 1], x, cos, sin, None, c.use_activation_checkpointing)
            start = layer + 1
            if k in wanted:
                outs.append(self.norms_block[k](x))
        return torch.cat(outs, dim=-1) if hierarchical else outs[-1]  # [B, N, 4*D] or [B, N, D]
