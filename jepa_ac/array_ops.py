"""The few array operations shared logic needs, one small class per array library.

Planning, pose math and rollouts are written once against `ArrayOps`; numpy, torch and MLX
each provide an implementation. `ops_for(x)` picks the one matching an array.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class ArrayOps:
    """numpy implementation; torch/MLX subclasses override what differs."""

    name = "numpy"

    # -- creation / transfer
    def asarray(self, x: Any, like: Any = None) -> Any:
        return np.asarray(x, dtype=np.float32 if like is None else like.dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def zeros(self, shape: Sequence[int], like: Any) -> Any:
        return np.zeros(shape, dtype=like.dtype)

    # -- elementwise
    def sin(self, x: Any) -> Any:
        return np.sin(x)

    def cos(self, x: Any) -> Any:
        return np.cos(x)

    def arcsin(self, x: Any) -> Any:
        return np.arcsin(x)

    def arctan2(self, y: Any, x: Any) -> Any:
        return np.arctan2(y, x)

    def clip(self, x: Any, low: Any, high: Any) -> Any:
        return np.clip(x, low, high)

    def abs(self, x: Any) -> Any:
        return np.abs(x)

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(x)

    # -- shape
    def stack(self, xs: Sequence[Any], axis: int) -> Any:
        return np.stack(xs, axis=axis)

    def concat(self, xs: Sequence[Any], axis: int) -> Any:
        return np.concatenate(xs, axis=axis)

    def broadcast_to(self, x: Any, shape: Sequence[int]) -> Any:
        return np.broadcast_to(x, tuple(shape))

    # -- reductions
    def mean(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return x.mean(axis=axis)

    def std(self, x: Any, axis: int) -> Any:
        """Unbiased (n - 1) standard deviation, as torch.std."""
        return x.std(axis=axis, ddof=1)

    def sum(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return x.sum(axis=axis)

    def min(self, x: Any, axis: int) -> Any:
        return x.min(axis=axis)

    def smallest_k(self, x: Any, k: int) -> Any:
        """Indices of the k smallest entries of a 1-D array, smallest first."""
        idx = np.argpartition(x, k - 1)[:k]
        return idx[np.argsort(x[idx], kind="stable")]

    def layer_norm(self, x: Any, eps: float = 1e-5) -> Any:
        """LayerNorm over the last axis without affine parameters (upstream `normalize_reps`)."""
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps)


NUMPY_OPS = ArrayOps()


def ops_for(x: Any) -> ArrayOps:
    """The `ArrayOps` for an array of numpy, torch or MLX."""
    module = type(x).__module__
    if module.startswith("torch"):
        from jepa_ac.backends.torch_backend import TORCH_OPS

        return TORCH_OPS
    if module.startswith("mlx"):
        from jepa_ac.backends.mlx_backend import MLX_OPS

        return MLX_OPS
    return NUMPY_OPS
