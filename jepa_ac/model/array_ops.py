"""The few array operations shared logic needs, one small class per array library.

Planning, pose math and rollouts are written once against `ArrayOps`; numpy, torch and MLX
each provide an implementation (`nn_torch.ops`, `nn_mlx.ops` register theirs); `ops_for(x)` picks
the one matching an array.
"""

from __future__ import annotations

import importlib
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
_OPS_BY_LIBRARY: dict[str, ArrayOps] = {"numpy": NUMPY_OPS}
_WHERE = {"torch": "jepa_ac.model.nn_torch.ops", "mlx": "jepa_ac.model.nn_mlx.ops"}


def register_ops(library: str, ops: ArrayOps) -> None:
    """Make `ops` the `ArrayOps` of arrays whose type lives in module `library` (torch, mlx)."""
    _OPS_BY_LIBRARY[library] = ops


def ops_for(x: Any) -> ArrayOps:
    """The registered `ArrayOps` for an array of numpy, torch or MLX (anything else: numpy's).

    torch's and MLX's register when their module (`_WHERE`) is imported: every backend imports it,
    and the first torch or MLX array seen without one loads it (that library is importable then).
    """
    library = type(x).__module__.split(".")[0]
    if library not in _OPS_BY_LIBRARY and library in _WHERE:
        importlib.import_module(_WHERE[library])
    return _OPS_BY_LIBRARY.get(library, NUMPY_OPS)
