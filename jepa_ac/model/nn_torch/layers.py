"""Transformer layers shared by the torch encoder and predictor: RoPE, attention, MLPs, blocks.

Parameter names follow upstream V-JEPA 2 (`attn.qkv`, `attn.proj`, `mlp.fc1`, ...), so upstream
state dicts load after stripping their `module.` / `module.backbone.` prefixes.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def rope_segment_dim(head_dim: int) -> int:
    """Dims rotated per axis (depth, height, width); the rest of the head is left as it is."""
    return 2 * ((head_dim // 3) // 2)


def _axis_angles(pos: torch.Tensor, dim: int, pairwise: bool = False) -> torch.Tensor:
    """[..., N] positions -> [..., N, dim] rotation angles for one RoPE axis.

    Surprise kept from upstream V-JEPA 2 (`rotate_queries_or_keys`): the dim/2 frequencies are
    tiled twice (`repeat`), not interleaved, while the rotation pairs adjacent dims (2i, 2i+1). So
    pair i is rotated by frequency (2i mod dim/2) and (2i+1 mod dim/2) on its two halves.
    The released V-JEPA 2 checkpoints were trained this way. V-JEPA 2.1 fixed it (`pairwise`:
    `repeat_interleave(2)`, so both dims of pair i turn by frequency i).
    """
    omega = torch.arange(dim // 2, dtype=torch.float32, device=pos.device)
    omega = 1.0 / 10000 ** (omega / (dim / 2.0))  # [dim/2]
    freq = pos.to(torch.float32)[..., None] * omega  # [..., N, dim/2]
    if pairwise:
        return freq.repeat_interleave(2, dim=-1)  # [..., N, dim]: f0 f0 f1 f1 ...
    return torch.cat([freq, freq], dim=-1)  # [..., N, dim]: f0 f1 ... f0 f1 ...


def rope_tables(
    pos_d: torch.Tensor,
    pos_h: torch.Tensor,
    pos_w: torch.Tensor,
    head_dim: int,
    pairwise: bool = False,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """3D RoPE tables for `apply_rope`: positions [..., N] per axis -> (cos, signed sin), each
    [..., N, 1, 1, head_dim] in `dtype`, to broadcast over a [..., N, 2, heads, head_dim] query/key pair.

    Dims past the three rotated segments get angle 0 (cos 1, sin 0), i.e. pass through exactly.
    A token with height/width position 0 is rotated by its depth (time) position only, which is
    how upstream treats the predictor's action and state tokens. `pairwise`: the V-JEPA 2.1
    frequency layout (see `_axis_angles`). The sine of each pair's first dim is negated (see
    `apply_rope`). Built once per forward, in the blocks' dtype, not once per block.
    """
    seg = rope_segment_dim(head_dim)
    parts = [_axis_angles(pos_d, seg, pairwise), _axis_angles(pos_h, seg, pairwise), _axis_angles(pos_w, seg, pairwise)]
    rest = head_dim - 3 * seg
    if rest:
        parts.append(torch.zeros(*pos_d.shape, rest, dtype=torch.float32, device=pos_d.device))
    angles = torch.cat(parts, dim=-1)  # [..., N, head_dim]
    sign = torch.tensor([-1.0, 1.0], device=angles.device).repeat(head_dim // 2)  # [head_dim]: - + - + ...
    cos, sin = angles.cos(), angles.sin() * sign  # [..., N, head_dim]
    return cos[..., None, None, :].to(dtype), sin[..., None, None, :].to(dtype)  # [..., N, 1, 1, head_dim]


def grid_positions(ids: torch.Tensor, grid_h: int, grid_w: int) -> tuple[torch.Tensor, ...]:
    """Flat token indices [..., N] on a [T, grid_h, grid_w] grid -> (depth, height, width) positions."""
    per_frame = grid_h * grid_w
    frame = ids // per_frame
    within = ids - frame * per_frame
    row = within // grid_w
    col = within - row * grid_w
    return frame.float(), row.float(), col.float()


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype the blocks' matmuls run in: autocast's while it is on for x's device, else x's own."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (2i, 2i+1): x [..., hd] and `rope_tables` broadcastable to it -> x's shape.

    (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin), written as x * cos + swap(x) * signed_sin with
    swap(x0, x1) = (x1, x0) and the sine of x0's slot negated: the same products and sum as
    upstream's (-x1, x0) * sin, bit for bit, in one fewer pass over x.
    """
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # [..., hd]: x1 x0 x3 x2 ...
    return x * cos + swapped * signed_sin


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd)) v: q [B, heads, N, hd], k/v [B, heads, L, hd], mask [N, L] (bool, True:
    attend; or float, added to the scores) as `F.scaled_dot_product_attention` takes it.

    torch's fused kernel, except for bf16/fp16 on the CPU, where it is slower than the three plain
    ops at our head sizes (the shipped predictor's 4 x 66 x 24 heads: 4.4 vs 2.4 ms per call, one
    thread; experiments/latency/README.md). The plain form rounds the softmax to the low precision
    (max abs error 0.017 vs 0.004 on unit-scale random inputs); planning in bf16 was measured with it.
    """
    if q.dtype == torch.float32 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # [B, heads, N, L]
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    elif attn_mask is not None:
        scores = scores + attn_mask
    return torch.softmax(scores, dim=-1) @ v  # [B, heads, N, hd]


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch per sample while training."""

    def __init__(self, drop_prob: float) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class RoPEAttention(nn.Module):
    """Multi-head self-attention with precomputed RoPE tables and an optional boolean mask."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def _rotated_qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """x [B, N, D] -> q, k (RoPE applied), v, each [B, heads, N, hd]; q and k are rotated together."""
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))  # [B, N, 3, heads, hd]
        qk = apply_rope(qkv[:, :, :2], cos, sin)  # [B, N, 2, heads, hd]
        q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, N, hd]
        return q, k, qkv[:, :, 2].transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self._rotated_qkv(x, cos, sin)  # each [B, heads, N, hd]
        x = attention(q, k, v, attn_mask)  # [B, heads, N, hd]
        x = x.transpose(1, 2).reshape(B, N, C)  # [B, N, D]
        return self.proj(x)

    def forward_cached(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attention of new tokens x [B, N, D] to the cached keys/values of earlier tokens plus their own.

        No mask: every new token sees all earlier tokens and every new token (the new tokens are one
        whole frame of a block-causal sequence). Returns the output [B, N, D] and the extended
        (keys, values), each [B, heads, L+N, hd] (RoPE already applied to the keys).
        """
        B, N, C = x.shape
        q, k, v = self._rotated_qkv(x, cos, sin)  # each [B, heads, N, hd]
        if past is not None:
            k = torch.cat([past[0].expand(B, -1, -1, -1), k], dim=2)  # [B, heads, L+N, hd]
            v = torch.cat([past[1].expand(B, -1, -1, -1), v], dim=2)  # [B, heads, L+N, hd]
        x = attention(q, k, v)  # [B, heads, N, hd]
        x = x.transpose(1, 2).reshape(B, N, C)  # [B, N, D]
        return self.proj(x), (k, v)


class MLP(nn.Module):
    """fc1 -> GELU (exact) -> fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.silu(self.fc1(x)) * self.fc2(x))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        qkv_bias: bool,
        use_silu: bool,
        wide_silu: bool,
        norm_eps: float,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = RoPEAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        hidden = int(dim * mlp_ratio)  # same expression as upstream, e.g. 1408 * 48/11 -> 6144
        self.mlp = SwiGLU(dim, hidden, wide_silu) if use_silu else MLP(dim, hidden)
        self.drop_path = DropPath(drop_path)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), cos, sin, attn_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward_cached(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Inference step over one new frame with a key/value cache (see `RoPEAttention.forward_cached`)."""
        h, kv = self.attn.forward_cached(self.norm1(x), cos, sin, past)
        x = x + h
        return x + self.mlp(self.norm2(x)), kv


def init_transformer_weights(module: nn.Module, blocks: nn.ModuleList, init_std: float) -> None:
    """Upstream init: truncated-normal linear/conv weights, zero biases, unit LayerNorms, and
    `attn.proj` / `mlp.fc2` of block i scaled by 1/sqrt(2 i)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.trunc_normal_(m.weight, std=init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for layer_id, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer_id))
            # upstream rescales `mlp.fc2` also for SwiGLU, where fc2 is the gate's second input
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer_id))


def run_blocks(
    blocks: nn.ModuleList,
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    attn_mask: torch.Tensor | None,
    checkpointing: bool,
) -> torch.Tensor:
    """Apply the blocks in order, with activation checkpointing while training if asked."""
    for block in blocks:
        if checkpointing and torch.is_grad_enabled():
            x = torch.utils.checkpoint.checkpoint(block, x, cos, sin, attn_mask, use_reentrant=False)
        else:
            x = block(x, cos, sin, attn_mask)
    return x
