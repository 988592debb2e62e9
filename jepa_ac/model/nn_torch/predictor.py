"""V-JEPA 2-AC action-conditioned predictor (torch).

Per frame the token sequence is `[action, state, (extrinsics), N patch tokens]`; attention is
block-causal over frames (a token sees every token of its own and earlier frames). Patch tokens
get 3D RoPE; conditioning tokens are rotated by their frame index only.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from jepa_ac.model.config import PredictorConfig
from jepa_ac.model.nn_torch.layers import Block, compute_dtype, init_transformer_weights, rope_tables, run_blocks

KVCache = list  # one (keys, values) pair per block, each [B, heads, L, hd]


def block_causal_mask(frames: int, tokens_per_frame: int, device: torch.device | None = None) -> torch.Tensor:
    """[T*K, T*K] boolean mask, True where a query token (row) may attend to a key token (column)."""
    frame_of = torch.arange(frames, device=device).repeat_interleave(tokens_per_frame)  # [T*K]
    return frame_of[:, None] >= frame_of[None, :]


def predictor_positions(config: PredictorConfig, frames: int, device: torch.device | None = None):
    """(depth, height, width) positions [T*K] of the interleaved sequence; K = cond + H*W per frame.

    Patch positions are snapped to the configured grid as upstream does (`h *= grid_size / H`),
    which is the identity for the predictor's own grid. Conditioning tokens sit at (t, 0, 0).
    """
    g, k = config.grid_size, config.cond_tokens
    rows = torch.arange(g, device=device, dtype=torch.float32).repeat_interleave(g)  # [H*W]
    cols = torch.arange(g, device=device, dtype=torch.float32).repeat(g)  # [H*W]
    zeros = torch.zeros(k, device=device)
    height = torch.cat([zeros, rows]).repeat(frames)  # [T*K]
    width = torch.cat([zeros, cols]).repeat(frames)  # [T*K]
    depth = torch.arange(frames, device=device, dtype=torch.float32).repeat_interleave(k + g * g)  # [T*K]
    return depth, height, width


class ACPredictor(nn.Module):
    """(z [B, T*N, D], actions [B, T, A], states [B, T, A], extrinsics [B, T, A-1]?) -> [B, T*N, D]."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        if config.embed_dim is None:
            raise ValueError("PredictorConfig.embed_dim is unset; use config.with_encoder(encoder_config)")
        self.config = config
        width = config.predictor_embed_dim
        self.predictor_embed = nn.Linear(config.embed_dim, width)
        self.action_encoder = nn.Linear(config.action_embed_dim, width)
        self.state_encoder = nn.Linear(config.action_embed_dim, width)
        # upstream always creates (and checkpoints) the extrinsics encoder, used or not
        self.extrinsics_encoder = nn.Linear(config.action_embed_dim - 1, width)
        rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()
        self.predictor_blocks = nn.ModuleList(
            Block(width, config.num_heads, config.mlp_ratio, config.qkv_bias, config.use_silu,
                  config.wide_silu, config.norm_eps, drop_path=rate)
            for rate in rates
        )
        self.predictor_norm = nn.LayerNorm(width, eps=config.norm_eps)
        self.predictor_proj = nn.Linear(width, config.embed_dim)
        init_transformer_weights(self, self.predictor_blocks, config.init_std)

    def forward(
        self,
        z: torch.Tensor,
        actions: torch.Tensor,
        states: torch.Tensor,
        extrinsics: torch.Tensor | None = None,
    ) -> torch.Tensor:
        c = self.config
        n = c.tokens_per_frame
        B, TN, _ = z.shape
        T = TN // n
        if TN != T * n or actions.shape[:2] != (B, T) or states.shape[:2] != (B, T):
            raise ValueError(
                f"predictor inputs disagree: z {list(z.shape)} ({n} tokens per frame), "
                f"actions {list(actions.shape)}, states {list(states.shape)}; expected [B, T*{n}, D], [B, T, A]"
            )
        x = self.predictor_embed(z).view(B, T, n, -1)  # [B, T, N, W]
        cond = [self.action_encoder(actions), self.state_encoder(states)]  # each [B, T, W]
        if c.use_extrinsics:
            if extrinsics is None:
                raise ValueError("this predictor uses extrinsics (use_extrinsics=True); pass extrinsics [B, T, A-1]")
            cond.append(self.extrinsics_encoder(extrinsics))
        x = torch.cat([torch.stack(cond, dim=2), x], dim=2).flatten(1, 2)  # [B, T*(K+N), W]

        positions = predictor_positions(c, T, x.device)
        cos, sin = rope_tables(*positions, c.head_dim, dtype=compute_dtype(x))  # [T*(K+N), 1, 1, hd]
        mask = block_causal_mask(T, c.cond_tokens + n, x.device) if c.is_frame_causal else None
        x = run_blocks(self.predictor_blocks, x, cos, sin, mask, c.use_activation_checkpointing)

        x = x.view(B, T, c.cond_tokens + n, -1)[:, :, c.cond_tokens :].flatten(1, 2)  # [B, T*N, W]
        return self.predictor_proj(self.predictor_norm(x))  # [B, T*N, D]

    # -- inference with a key/value cache (planning) -------------------------------------------
    # Frame t of a block-causal sequence depends only on frames <= t, so a rollout can run one
    # frame at a time, keeping every block's keys/values of the frames already run. The result
    # equals `forward` on the whole sequence (tests/test_planning_reference.py checks it).

    def embed_context(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder latents [B, N, D] -> predictor-width patch tokens [B, N, W]."""
        return self.predictor_embed(z)

    def frame_step(
        self,
        x: torch.Tensor,
        actions: torch.Tensor,
        states: torch.Tensor,
        frame: int,
        past: KVCache | None,
        extrinsics: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """Predict frame `frame`'s tokens given the earlier frames' cache.

        x [B or 1, N, W] embedded patch tokens of that frame, actions/states [B, A], extrinsics
        [B, A-1]? -> (output tokens [B, N, D] as `forward` gives them for that frame, new cache).
        """
        c = self.config
        n, k = c.tokens_per_frame, c.cond_tokens
        B = actions.shape[0]
        cond = [self.action_encoder(actions), self.state_encoder(states)]  # each [B, W]
        if c.use_extrinsics:
            if extrinsics is None:
                raise ValueError("this predictor uses extrinsics (use_extrinsics=True); pass extrinsics [B, A-1]")
            cond.append(self.extrinsics_encoder(extrinsics))
        x = torch.cat([torch.stack(cond, dim=1), x.expand(B, -1, -1)], dim=1)  # [B, K+N, W]
        positions = predictor_positions(c, frame + 1, x.device)
        cos, sin = rope_tables(*positions, c.head_dim, dtype=compute_dtype(x))  # [(t+1)*(K+N), 1, 1, hd]
        cos, sin = cos[-(k + n) :], sin[-(k + n) :]  # [K+N, 1, 1, hd]: this frame's positions
        cache = []
        for i, block in enumerate(self.predictor_blocks):
            x, kv = block.forward_cached(x, cos, sin, None if past is None else past[i])
            cache.append(kv)
        return self.predictor_proj(self.predictor_norm(x[:, k:])), cache  # [B, N, D]
