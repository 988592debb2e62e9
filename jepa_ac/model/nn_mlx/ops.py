"""`ArrayOps` over MLX arrays, registered for `ops_for`."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import mlx.core as mx

from jepa_ac.model.array_ops import ArrayOps, register_ops
from jepa_ac.model.nn_mlx.layers import as_numpy


class MLXOps(ArrayOps):
    """`ArrayOps` over MLX arrays."""

    name = "mlx"

    def __init__(self, dtype: mx.Dtype = mx.float32) -> None:
        self.dtype = dtype

    def asarray(self, x: Any, like: Any = None) -> mx.array:
        dtype = self.dtype if like is None else like.dtype
        if isinstance(x, mx.array):
            return x if x.dtype == dtype else x.astype(dtype)
        x = as_numpy(x)
        if x.dtype == np.float64:  # MLX has no float64 on the GPU: narrow on the host
            x = x.astype(np.float32)
        return mx.array(x).astype(dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return as_numpy(x)

    def zeros(self, shape: Sequence[int], like: Any) -> mx.array:
        return mx.zeros(tuple(shape), dtype=like.dtype)

    def sin(self, x: Any) -> Any:
        return mx.sin(x)

    def cos(self, x: Any) -> Any:
        return mx.cos(x)

    def arcsin(self, x: Any) -> Any:
        return mx.arcsin(x)

    def arctan2(self, y: Any, x: Any) -> Any:
        return mx.arctan2(y, x)

    def clip(self, x: Any, low: Any, high: Any) -> Any:
        return mx.clip(x, low, high)

    def abs(self, x: Any) -> Any:
        return mx.abs(x)

    def sqrt(self, x: Any) -> Any:
        return mx.sqrt(x)

    def stack(self, xs: Sequence[Any], axis: int) -> Any:
        return mx.stack(list(xs), axis=axis)

    def concat(self, xs: Sequence[Any], axis: int) -> Any:
        return mx.concatenate(list(xs), axis=axis)

    def broadcast_to(self, x: Any, shape: Sequence[int]) -> Any:
        return mx.broadcast_to(x, tuple(shape))

    def mean(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return mx.mean(x, axis=axis)

    def std(self, x: Any, axis: int) -> Any:
        return mx.std(x, axis=axis, ddof=1)  # unbiased, as upstream (torch.std)

    def sum(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return mx.sum(x, axis=axis)

    def min(self, x: Any, axis: int) -> Any:
        return mx.min(x, axis=axis)

    def smallest_k(self, x: Any, k: int) -> Any:
        """Indices of the k smallest entries, smallest first. Evaluates: this is where CEM's lazy
        rollout graph of one iteration runs."""
        idx = mx.argpartition(x, kth=k - 1)[:k]  # [k], unordered
        idx = idx[mx.argsort(x[idx])]  # [k], smallest first
        mx.eval(idx)
        return idx

    def layer_norm(self, x: Any, eps: float = 1e-5) -> Any:
        return mx.fast.layer_norm(x, None, None, eps)


MLX_OPS = MLXOps()
register_ops("mlx", MLX_OPS)
