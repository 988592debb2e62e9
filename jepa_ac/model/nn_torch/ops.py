"""`ArrayOps` over torch tensors, registered for `ops_for`."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from jepa_ac.model.array_ops import ArrayOps, register_ops


class TorchOps(ArrayOps):
    """`ArrayOps` over torch tensors."""

    name = "torch"

    def __init__(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype

    def asarray(self, x: Any, like: Any = None) -> torch.Tensor:
        dtype = self.dtype if like is None else like.dtype
        device = self.device if like is None else like.device
        if isinstance(x, torch.Tensor):
            return x.to(device=device, dtype=dtype)
        return torch.as_tensor(np.asarray(x), device=device).to(dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            x = x.detach()
            return (x.float() if x.dtype in (torch.bfloat16, torch.float16) else x).cpu().numpy()
        return np.asarray(x)

    def zeros(self, shape: Sequence[int], like: Any) -> torch.Tensor:
        return torch.zeros(tuple(shape), dtype=like.dtype, device=like.device)

    def sin(self, x: Any) -> Any:
        return torch.sin(x)

    def cos(self, x: Any) -> Any:
        return torch.cos(x)

    def arcsin(self, x: Any) -> Any:
        return torch.arcsin(x)

    def arctan2(self, y: Any, x: Any) -> Any:
        return torch.atan2(y, x)

    def clip(self, x: Any, low: Any, high: Any) -> Any:
        if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
            return torch.minimum(torch.maximum(x, low), high)
        return torch.clamp(x, low, high)

    def abs(self, x: Any) -> Any:
        return torch.abs(x)

    def sqrt(self, x: Any) -> Any:
        return torch.sqrt(x)

    def stack(self, xs: Sequence[Any], axis: int) -> Any:
        return torch.stack(list(xs), dim=axis)

    def concat(self, xs: Sequence[Any], axis: int) -> Any:
        return torch.cat(list(xs), dim=axis)

    def broadcast_to(self, x: Any, shape: Sequence[int]) -> Any:
        return x.expand(*shape)

    def mean(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return x.mean(dim=axis)

    def std(self, x: Any, axis: int) -> Any:
        return x.std(dim=axis)  # unbiased, as upstream

    def sum(self, x: Any, axis: int | tuple[int, ...]) -> Any:
        return x.sum(dim=axis)

    def min(self, x: Any, axis: int) -> Any:
        return x.amin(dim=axis)

    def smallest_k(self, x: Any, k: int) -> Any:
        return torch.topk(x, k, largest=False, sorted=True).indices

    def layer_norm(self, x: Any, eps: float = 1e-5) -> Any:
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), eps=eps)


TORCH_OPS = TorchOps()
register_ops("torch", TORCH_OPS)
