"""torch `Dataset` view of the numpy clip datasets (imported only when asked for: the core needs no torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class TorchClips(torch.utils.data.Dataset):
    """Items of a `DroidClips` / `LatentClips` as tensors; float16/float64 arrays become float32.

    A module-level class so DataLoader workers started with `spawn` (macOS default) can pickle it.
    """

    def __init__(self, core: Any) -> None:
        self.core = core

    def __len__(self) -> int:
        return len(self.core)

    def __getitem__(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.core[index].items():
            if isinstance(value, np.ndarray):
                if value.dtype in (np.float64, np.float16):
                    value = value.astype(np.float32)
                out[key] = torch.from_numpy(np.ascontiguousarray(value))
            else:
                out[key] = value
        return out
