"""V-JEPA 2 video encoder (torch): tubelet patch embedding, 3D-RoPE ViT blocks, final norm."""

from __future__ import annotations

import torch
import torch.nn as nn

from jepa_ac.config import EncoderConfig
from jepa_ac.nn_torch.layers import Block, grid_positions, init_transformer_weights, rope_cos_sin, run_blocks


class PatchEmbed(nn.Module):
    """Conv3d (tubelet x patch x patch) for video, Conv2d for an image model (num_frames == 1)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        p, t = config.patch_size, config.tubelet_size
        if config.is_video:
            self.proj = nn.Conv3d(config.in_chans, config.embed_dim, kernel_size=(t, p, p), stride=(t, p, p))
        else:
            self.proj = nn.Conv2d(config.in_chans, config.embed_dim, kernel_size=p, stride=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # [B, C, T, H, W] -> [B, D, T/t, H/p, W/p] -> [B, N, D]
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """Encoder: clip [B, 3, T, H, W] -> tokens [B, T/t * H/p * W/p, D] (final LayerNorm applied)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbed(config)
        rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(config.embed_dim, config.num_heads, config.mlp_ratio, config.qkv_bias, config.use_silu,
                  config.wide_silu, config.norm_eps, drop_path=rate)
            for rate in rates
        )
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        init_transformer_weights(self, self.blocks, config.init_std)

    def token_grid(self, x: torch.Tensor) -> tuple[int, int, int]:
        """Token grid (T', H', W') of an input clip [B, C, T, H, W] or image [B, C, H, W]."""
        c = self.config
        if x.ndim == 5:
            if not c.is_video:
                raise ValueError("this encoder has a 2D patch embedding (num_frames=1); pass [B, C, H, W]")
            _, _, t, h, w = x.shape
            if t % c.tubelet_size:
                raise ValueError(f"clip length {t} is not a multiple of tubelet_size={c.tubelet_size}")
            t //= c.tubelet_size
        elif x.ndim == 4:
            if c.is_video:
                raise ValueError("this encoder takes clips [B, C, T, H, W]; repeat an image into a tubelet")
            _, _, h, w = x.shape
            t = 1
        else:
            raise ValueError(f"encoder input must be [B, C, T, H, W] or [B, C, H, W], got {list(x.shape)}")
        if h % c.patch_size or w % c.patch_size:
            raise ValueError(f"input size {h}x{w} is not a multiple of patch_size={c.patch_size}")
        return t, h // c.patch_size, w // c.patch_size

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, C, T, H, W]; masks: optional [B, K] indices of the tokens to keep -> [B, K or N, D]."""
        t, gh, gw = self.token_grid(x)
        x = self.patch_embed(x)  # [B, N, D]
        if masks is None:
            ids = torch.arange(t * gh * gw, device=x.device)  # [N]
            cos, sin = rope_cos_sin(*grid_positions(ids, gh, gw), self.config.head_dim)  # [N, hd]
        else:
            x = torch.gather(x, 1, masks[..., None].expand(-1, -1, x.shape[-1]))  # [B, K, D]
            cos, sin = rope_cos_sin(*grid_positions(masks, gh, gw), self.config.head_dim)  # [B, K, hd]
            cos, sin = cos[:, None], sin[:, None]  # [B, 1, K, hd]: broadcast over heads
        x = run_blocks(self.blocks, x, cos, sin, None, self.config.use_activation_checkpointing)
        return self.norm(x)
