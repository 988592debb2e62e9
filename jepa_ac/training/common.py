"""Pieces every training run shares: schedules, distributed setup, data order, metrics, resume state."""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from jepa_ac.files import write_atomic


# -- learning-rate schedule ------------------------------------------------------------------


@dataclass(frozen=True)
class WarmupConstantDecay:
    """Linear warmup start_lr -> lr, constant, then linear decay to final_lr over the last steps."""

    lr: float
    start_lr: float
    final_lr: float
    warmup_steps: int
    decay_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        if self.warmup_steps + self.decay_steps > self.total_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) + decay_steps ({self.decay_steps}) exceed total steps "
                f"({self.total_steps})"
            )

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.start_lr + (self.lr - self.start_lr) * step / max(1, self.warmup_steps)
        decay_start = self.total_steps - self.decay_steps
        if step < decay_start:
            return self.lr
        frac = (step - decay_start) / max(1, self.decay_steps)
        return self.lr + (self.final_lr - self.lr) * min(1.0, frac)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warmup start_lr -> lr, then cosine decay to final_lr at total_steps (V-JEPA pretraining)."""

    lr: float
    start_lr: float
    final_lr: float
    warmup_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be in [0, total steps ({self.total_steps})]")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.start_lr + (self.lr - self.start_lr) * step / max(1, self.warmup_steps)
        return cosine(self.lr, self.final_lr, step - self.warmup_steps, self.total_steps - self.warmup_steps)


def cosine(start: float, end: float, step: int, total: int) -> float:
    """Cosine interpolation from start (step 0) to end (step total)."""
    frac = min(1.0, step / max(1, total))
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * frac))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups as upstream: no weight decay on biases and 1-D (norm) parameters."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim == 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# -- distributed --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = None, threads: int = 0) -> DistInfo:
    """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them this is a single process. `threads` > 0
    sets torch's CPU threads (0: torch's default, one per physical core)."""
    if threads:
        torch.set_num_threads(threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev)


def autocast(device: torch.device, dtype: str) -> torch.autocast:
    """The forward passes' autocast context for a trainer's resolved dtype ("float32": disabled)."""
    low = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype, torch.float32)
    return torch.autocast(device_type=device.type, dtype=low, enabled=dtype != "float32")


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.world_size > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= info.world_size
    return value


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()


# -- data order ---------------------------------------------------------------------------------


def batch_indices(step: int, dataset_len: int, global_batch: int, seed: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """The dataset indices this rank trains on at `step`: a pure function of its arguments.

    Epochs are seeded permutations; the global batch of a step is a contiguous slice of the
    concatenated epochs, split across ranks round-robin. Resuming at step s therefore reads
    exactly the data an uninterrupted run would have, with no loader state to save.
    """
    if global_batch % world:
        raise ValueError(f"batch_size {global_batch} must be divisible by the number of processes {world}")
    start = step * global_batch
    out = []
    while len(out) < global_batch:
        epoch, offset = divmod(start + len(out), dataset_len)
        perm = np.random.default_rng([seed, epoch]).permutation(dataset_len)
        out.extend(perm[offset : offset + global_batch - len(out)].tolist())
    return np.asarray(out[rank::world])


# -- reproducibility -----------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- metrics ---------------------------------------------------------------------------------------


class MetricsLog:
    """Append-only JSONL metrics (plus TensorBoard when installed), written by rank 0 only."""

    def __init__(self, path: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self.writer = None
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self.writer = SummaryWriter(str(path.parent / "tensorboard"))
                except ImportError:
                    self.writer = None

    def truncate_after(self, step: int) -> None:
        """On resume, drop records past the checkpoint so the log matches the run exactly once.

        A line cut short by a kill mid-write is dropped too; the file is replaced atomically."""
        if not (self.enabled and self.path.exists()):
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line)
        write_atomic(self.path, "".join(line + "\n" for line in kept))

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": time.time(), **record}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "time"):
                    self.writer.add_scalar(key, value, record.get("step", 0))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(metrics_path: Path, out_png: Path, keys: tuple[str, ...], title: str) -> Path | None:
    """Loss curves from the JSONL log as a PNG (matplotlib, headless)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    records = read_metrics(metrics_path)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=key, marker="o" if len(points) < 30 else None)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def iterate_forever(step: int) -> Iterator[int]:
    while True:
        yield step
        step += 1
