"""Transformer layers shared by the MLX encoder and predictor: RoPE, attention, MLPs, blocks.

Mirrors `jepa_ac/model/nn_torch/layers.py` with the same parameter names (`attn.qkv`, `attn.proj`,
`mlp.fc1`, ...), so a torch state dict loads after the small layout change in `to_mlx_layout`
(convolution kernels are channels-last in MLX). Inference only: no dropout or drop path.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np


def rope_segment_dim(head_dim: int) -> int:
    """Dims rotated per axis (depth, height, width); the rest of the head is left as it is."""
    return 2 * ((head_dim // 3) // 2)


def _axis_angles(pos: np.ndarray, dim: int, pairwise: bool = False) -> np.ndarray:
    """[..., N] positions -> [..., N, dim] angles for one RoPE axis (float32, host side).

    Surprise kept from upstream V-JEPA 2 (`rotate_queries_or_keys`): the dim/2 frequencies are
    tiled twice, not interleaved, while the rotation pairs adjacent dims (2i, 2i+1). Released
    V-JEPA 2 checkpoints were trained this way; V-JEPA 2.1 interleaves them (`pairwise`).
    """
    omega = np.arange(dim // 2, dtype=np.float32)
    omega = np.float32(1.0) / np.float32(10000) ** (omega / np.float32(dim / 2.0))  # [dim/2]
    freq = pos.astype(np.float32)[..., None] * omega  # [..., N, dim/2]
    if pairwise:
        return np.repeat(freq, 2, axis=-1)  # [..., N, dim]: f0 f0 f1 f1 ...
    return np.concatenate([freq, freq], axis=-1)  # [..., N, dim]


def rope_cos_sin(
    pos_d: np.ndarray, pos_h: np.ndarray, pos_w: np.ndarray, head_dim: int, pairwise: bool = False
) -> tuple[mx.array, mx.array]:
    """3D RoPE tables: positions [..., N] per axis -> cos, sin [..., N, head_dim] (float32).

    Tables depend only on the token grid, so they are built once on the host with numpy and
    cached by the callers. Dims past the three rotated segments get angle 0 (pass through).
    `pairwise`: the V-JEPA 2.1 frequency layout.
    """
    seg = rope_segment_dim(head_dim)
    parts = [_axis_angles(pos_d, seg, pairwise), _axis_angles(pos_h, seg, pairwise), _axis_angles(pos_w, seg, pairwise)]
    rest = head_dim - 3 * seg
    if rest:
        parts.append(np.zeros((*pos_d.shape, rest), dtype=np.float32))
    angles = np.concatenate(parts, axis=-1)  # [..., N, head_dim]
    return mx.array(np.cos(angles)), mx.array(np.sin(angles))


def grid_positions(ids: np.ndarray, grid_h: int, grid_w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat token indices [..., N] on a [T, grid_h, grid_w] grid -> (depth, height, width) positions."""
    per_frame = grid_h * grid_w
    frame = ids // per_frame
    within = ids - frame * per_frame
    row = within // grid_w
    col = within - row * grid_w
    return frame.astype(np.float32), row.astype(np.float32), col.astype(np.float32)


def apply_rope(x: mx.array, cos: mx.array, sin: mx.array) -> mx.array:
    """Rotate adjacent pairs (2i, 2i+1): x [B, heads, N, hd], cos/sin broadcastable -> same shape."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)  # [B, heads, N, hd/2, 2]
    rotated = mx.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)  # [B, heads, N, hd]
    return x * cos.astype(x.dtype) + rotated * sin.astype(x.dtype)


class RoPEAttention(nn.Module):
    """Multi-head self-attention with precomputed RoPE tables and an optional boolean mask."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def __call__(self, x: mx.array, cos: mx.array, sin: mx.array, mask: mx.array | None = None) -> mx.array:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)  # [B, N, 3, heads, hd]
        qkv = qkv.transpose(2, 0, 3, 1, 4)  # [3, B, heads, N, hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        x = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=mask)  # [B, heads, N, hd]
        x = x.transpose(0, 2, 1, 3).reshape(B, N, C)  # [B, N, D]
        return self.proj(x)

    def forward_cached(
        self, x: mx.array, cos: mx.array, sin: mx.array, past: tuple[mx.array, mx.array] | None
    ) -> tuple[mx.array, tuple[mx.array, mx.array]]:
        """Attention of new tokens x [B, N, D] to the cached keys/values of earlier tokens plus their own.

        No mask: the new tokens are one whole frame of a block-causal sequence, so each sees every
        earlier token and every new one. Returns the output [B, N, D] and the extended (keys,
        values), each [B, heads, L+N, hd] (RoPE already applied to the keys), as the torch twin.
        """
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)  # [B, N, 3, heads, hd]
        qkv = qkv.transpose(2, 0, 3, 1, 4)  # [3, B, heads, N, hd]
        q, k, v = qkv[0], qkv[1], qkv[2]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if past is not None:
            keys, values = past  # each [B or 1, heads, L, hd]
            k = mx.concatenate([mx.broadcast_to(keys, (B, *keys.shape[1:])), k], axis=2)  # [B, heads, L+N, hd]
            v = mx.concatenate([mx.broadcast_to(values, (B, *values.shape[1:])), v], axis=2)  # [B, heads, L+N, hd]
        x = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale)  # [B, heads, N, hd]
        x = x.transpose(0, 2, 1, 3).reshape(B, N, C)  # [B, N, D]
        return self.proj(x), (k, v)


class MLP(nn.Module):
    """fc1 -> GELU (exact, erf) -> fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(nn.gelu(self.fc1(x)))


def swiglu_hidden_dim(hidden: int, wide_silu: bool) -> int:
    """Upstream SwiGLUFFN width: 2/3 of the MLP width rounded up to a multiple of 8 when wide_silu."""
    if not wide_silu:
        return hidden
    return (int(2 * hidden / 3) + 7) // 8 * 8


class SwiGLU(nn.Module):
    """silu(fc1(x)) * fc2(x) -> fc3."""

    def __init__(self, dim: int, hidden: int, wide_silu: bool) -> None:
        super().__init__()
        hidden = swiglu_hidden_dim(hidden, wide_silu)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(dim, hidden)
        self.fc3 = nn.Linear(hidden, dim)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc3(nn.silu(self.fc1(x)) * self.fc2(x))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, use_silu: bool, wide_silu: bool,
        norm_eps: float,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = RoPEAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        hidden = int(dim * mlp_ratio)  # same expression as upstream, e.g. 1408 * 48/11 -> 6144
        self.mlp = SwiGLU(dim, hidden, wide_silu) if use_silu else MLP(dim, hidden)

    def __call__(self, x: mx.array, cos: mx.array, sin: mx.array, mask: mx.array | None = None) -> mx.array:
        x = x + self.attn(self.norm1(x), cos, sin, mask)
        return x + self.mlp(self.norm2(x))

    def forward_cached(
        self, x: mx.array, cos: mx.array, sin: mx.array, past: tuple[mx.array, mx.array] | None
    ) -> tuple[mx.array, tuple[mx.array, mx.array]]:
        """One new frame with a key/value cache (see `RoPEAttention.forward_cached`)."""
        h, kv = self.attn.forward_cached(self.norm1(x), cos, sin, past)
        x = x + h
        return x + self.mlp(self.norm2(x)), kv


# -- torch <-> MLX parameter layout ------------------------------------------------------------


def to_mlx_layout(value: np.ndarray, is_conv: bool) -> np.ndarray:
    """A torch-layout weight -> MLX layout: conv kernels (O, I, *K) -> (O, *K, I); others unchanged."""
    return np.moveaxis(value, 1, -1) if is_conv else value


def to_torch_layout(value: np.ndarray, is_conv: bool) -> np.ndarray:
    """The inverse of `to_mlx_layout`: conv kernels (O, *K, I) -> (O, I, *K)."""
    return np.moveaxis(value, -1, 1) if is_conv else value


def torch_shape(shape: tuple[int, ...], is_conv: bool) -> tuple[int, ...]:
    """An MLX parameter shape in torch layout."""
    return (shape[0], shape[-1], *shape[1:-1]) if is_conv else tuple(shape)


def as_numpy(value: Any) -> np.ndarray:
    """numpy, MLX or torch array -> numpy (half-precision types widened to float32 where numpy lacks them)."""
    if isinstance(value, mx.array):
        return np.array(value.astype(mx.float32) if value.dtype == mx.bfloat16 else value)
    if type(value).__module__.startswith("torch"):
        from jepa_ac.model.nn_torch.ops import TORCH_OPS  # a torch tensor is already here: torch is importable

        return TORCH_OPS.to_numpy(value)
    return np.asarray(value)
