"""V-JEPA 2-AC action-conditioned predictor (MLX).

Same computation and parameter names as `jepa_ac/model/nn_torch/predictor.py`. Per frame the token
sequence is `[action, state, (extrinsics), N patch tokens]`; attention is block-causal over
frames. RoPE tables and the mask depend only on the number of frames and are cached.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from jepa_ac.model.config import PredictorConfig
from jepa_ac.model.nn_mlx.layers import Block, rope_cos_sin


def block_causal_mask(frames: int, tokens_per_frame: int) -> mx.array:
    """[T*K, T*K] boolean mask, True where a query token (row) may attend to a key token (column)."""
    frame_of = np.repeat(np.arange(frames), tokens_per_frame)  # [T*K]
    return mx.array(frame_of[:, None] >= frame_of[None, :])


def predictor_positions(config: PredictorConfig, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(depth, height, width) positions [T*K] of the interleaved sequence; K = cond + H*W per frame.

    Conditioning tokens sit at (t, 0, 0); patch tokens at (t, row, col) of the predictor's grid.
    """
    g, k = config.grid_size, config.cond_tokens
    rows = np.repeat(np.arange(g, dtype=np.float32), g)  # [H*W]
    cols = np.tile(np.arange(g, dtype=np.float32), g)  # [H*W]
    zeros = np.zeros(k, dtype=np.float32)
    height = np.tile(np.concatenate([zeros, rows]), frames)  # [T*K]
    width = np.tile(np.concatenate([zeros, cols]), frames)  # [T*K]
    depth = np.repeat(np.arange(frames, dtype=np.float32), k + g * g)  # [T*K]
    return depth, height, width


class ACPredictor(nn.Module):
    """(z [B, T*N, D], actions [B, T, A], states [B, T, A], extrinsics [B, T, A-1]?) -> [B, T*N, D]."""

    conv_weights: tuple[str, ...] = ()

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
        self.predictor_blocks = [
            Block(width, config.num_heads, config.mlp_ratio, config.qkv_bias, config.use_silu,
                  config.wide_silu, config.norm_eps)
            for _ in range(config.depth)
        ]
        self.predictor_norm = nn.LayerNorm(width, eps=config.norm_eps)
        self.predictor_proj = nn.Linear(width, config.embed_dim)
        self._tables: dict[int, tuple[mx.array, mx.array, mx.array | None]] = {}

    def tables(self, frames: int) -> tuple[mx.array, mx.array, mx.array | None]:
        """cos, sin [T*K, hd] and the block-causal mask [T*K, T*K] (None if not frame-causal), cached per T."""
        if frames not in self._tables:
            c = self.config
            cos, sin = rope_cos_sin(*predictor_positions(c, frames), c.head_dim)
            mask = block_causal_mask(frames, c.cond_tokens + c.tokens_per_frame) if c.is_frame_causal else None
            self._tables[frames] = (cos, sin, mask)
        return self._tables[frames]

    def check_inputs(self, z_shape, actions_shape, states_shape, extrinsics_shape) -> int:
        """Validate input shapes; returns T."""
        c = self.config
        n = c.tokens_per_frame
        if len(z_shape) != 3 or len(actions_shape) != 3 or len(states_shape) != 3:
            raise ValueError(
                f"predictor inputs must be z [B, T*N, D], actions/states [B, T, A]; got z {list(z_shape)}, "
                f"actions {list(actions_shape)}, states {list(states_shape)}"
            )
        B, TN, D = z_shape
        T = TN // n
        if TN != T * n or tuple(actions_shape[:2]) != (B, T) or tuple(states_shape[:2]) != (B, T) or D != c.embed_dim:
            raise ValueError(
                f"predictor inputs disagree: z {list(z_shape)} ({n} tokens per frame, D={c.embed_dim}), "
                f"actions {list(actions_shape)}, states {list(states_shape)}; expected [B, T*{n}, D], [B, T, A]"
            )
        if c.use_extrinsics and extrinsics_shape is None:
            raise ValueError("this predictor uses extrinsics (use_extrinsics=True); pass extrinsics [B, T, A-1]")
        return T

    def __call__(
        self, z: mx.array, actions: mx.array, states: mx.array, extrinsics: mx.array | None = None
    ) -> mx.array:
        c = self.config
        n = c.tokens_per_frame
        T = self.check_inputs(z.shape, actions.shape, states.shape, None if extrinsics is None else extrinsics.shape)
        cos, sin, mask = self.tables(T)
        return self.forward(z, actions, states, extrinsics, cos, sin, mask)

    def forward(self, z, actions, states, extrinsics, cos, sin, mask) -> mx.array:
        """The network proper, given the tables (a pure function of arrays: `mx.compile`-able)."""
        c = self.config
        n = c.tokens_per_frame
        B, TN, _ = z.shape
        T = TN // n
        x = self.predictor_embed(z).reshape(B, T, n, -1)  # [B, T, N, W]
        cond = [self.action_encoder(actions), self.state_encoder(states)]  # each [B, T, W]
        if c.use_extrinsics:
            cond.append(self.extrinsics_encoder(extrinsics))
        x = mx.concatenate([mx.stack(cond, axis=2), x], axis=2)  # [B, T, K+N, W]
        x = x.reshape(B, T * (c.cond_tokens + n), -1)  # [B, T*(K+N), W]
        for block in self.predictor_blocks:
            x = block(x, cos, sin, mask)
        x = x.reshape(B, T, c.cond_tokens + n, -1)[:, :, c.cond_tokens :]  # [B, T, N, W]
        x = x.reshape(B, T * n, -1)  # [B, T*N, W]
        return self.predictor_proj(self.predictor_norm(x))  # [B, T*N, D]

    def embed_context(self, z: mx.array) -> mx.array:
        """Encoder latents [B, N, D] -> predictor-width patch tokens [B, N, W]."""
        return self.predictor_embed(z)

    def frame_step(
        self, x: mx.array, actions: mx.array, states: mx.array, frame: int, past: list | None,
        extrinsics: mx.array | None = None,
    ) -> tuple[mx.array, list]:
        """Predict frame `frame`'s tokens given the earlier frames' key/value cache (the torch twin's
        `frame_step`): x [B or 1, N, W] embedded patch tokens of that frame, actions/states [B, A],
        extrinsics [B, A-1]? -> (output tokens [B, N, D] as `forward` gives them for that frame, the
        new cache: per block (keys, values) [B, heads, (frame+1)*(K+N), hd])."""
        c = self.config
        n, k = c.tokens_per_frame, c.cond_tokens
        B = actions.shape[0]
        cond = [self.action_encoder(actions), self.state_encoder(states)]  # each [B, W]
        if c.use_extrinsics:
            if extrinsics is None:
                raise ValueError("this predictor uses extrinsics (use_extrinsics=True); pass extrinsics [B, A-1]")
            cond.append(self.extrinsics_encoder(extrinsics))
        x = mx.concatenate([mx.stack(cond, axis=1), mx.broadcast_to(x, (B, *x.shape[1:]))], axis=1)  # [B, K+N, W]
        cos, sin, _ = self.tables(frame + 1)  # [(frame+1)*(K+N), hd]
        cos, sin = cos[-(k + n) :], sin[-(k + n) :]  # [K+N, hd]: this frame's positions
        cache = []
        for i, block in enumerate(self.predictor_blocks):
            x, kv = block.forward_cached(x, cos, sin, None if past is None else past[i])
            cache.append(kv)
        return self.predictor_proj(self.predictor_norm(x[:, k:])), cache  # [B, N, D]
