"""V-JEPA pretraining predictor (torch): context tokens + mask tokens at the target positions -> targets.

The context encoder sees only the visible tokens of a clip; this narrow transformer gets their
embeddings plus one learned mask token (of the mask generator that produced the targets) at every
target position, with 3D RoPE at each token's true grid position, and predicts the target
encoder's features there. Only used for pretraining, so there is no MLX mirror.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from jepa_ac.model.config import MaskPredictorConfig
from jepa_ac.model.nn_torch.layers import (Block, compute_dtype, grid_positions, init_transformer_weights, rope_tables,
                                           run_blocks)


class MaskPredictor(nn.Module):
    def __init__(self, config: MaskPredictorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.predictor_embed = nn.Linear(c.embed_dim, c.predictor_embed_dim)
        self.mask_tokens = nn.Parameter(torch.zeros(c.num_mask_tokens, c.predictor_embed_dim))
        self.predictor_blocks = nn.ModuleList(
            Block(c.predictor_embed_dim, c.num_heads, c.mlp_ratio, c.qkv_bias, False, False, c.norm_eps)
            for _ in range(c.depth)
        )
        self.predictor_norm = nn.LayerNorm(c.predictor_embed_dim, eps=c.norm_eps)
        self.predictor_proj = nn.Linear(c.predictor_embed_dim, c.embed_dim)
        init_transformer_weights(self, self.predictor_blocks, c.init_std)
        nn.init.trunc_normal_(self.mask_tokens, std=c.init_std)

    def forward(self, context: torch.Tensor, context_ids: torch.Tensor, target_ids: torch.Tensor,
                grid: tuple[int, int], mask_index: int) -> torch.Tensor:
        """context [B, Kc, D] at flat token ids [B, Kc]; target ids [B, Kt] -> predictions [B, Kt, D].

        `grid` is the (H', W') token grid of a frame, to turn flat ids into (t, h, w) positions.
        """
        if not 0 <= mask_index < self.config.num_mask_tokens:
            raise ValueError(f"mask_index {mask_index} out of range [0, {self.config.num_mask_tokens})")
        B, Kt = target_ids.shape
        x = self.predictor_embed(context)  # [B, Kc, Dp]
        masks = self.mask_tokens[mask_index].expand(B, Kt, -1)  # [B, Kt, Dp]
        x = torch.cat([x, masks], dim=1)  # [B, Kc+Kt, Dp]
        ids = torch.cat([context_ids, target_ids], dim=1)  # [B, Kc+Kt]
        positions = grid_positions(ids, *grid)
        cos, sin = rope_tables(*positions, self.config.head_dim, dtype=compute_dtype(x))  # [B, K, 1, 1, hd]
        x = run_blocks(self.predictor_blocks, x, cos, sin, None, False)
        x = self.predictor_norm(x[:, -Kt:])  # [B, Kt, Dp]
        return self.predictor_proj(x)  # [B, Kt, D]
