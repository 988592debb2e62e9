"""Cross-entropy method over action sequences, as V-JEPA 2-AC plans (upstream `mpc_utils.cem`).

`cem()` is a pure function of (cost function, config, action spec, noise): no environment,
logging or I/O. Noise for all iterations is drawn up front on the host from a seeded numpy
generator, so every backend sees identical samples and the loop has no host-device sync.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from jepa_ac.array_ops import NUMPY_OPS, ArrayOps
from jepa_ac.planning.action_spec import ActionSpec


@dataclass(frozen=True)
class CEMConfig:
    """CEM hyper-parameters. Defaults follow the V-JEPA 2-AC release (800 x 10, top-10, horizon 1;
    momentum 0.15 as its `WorldModel` wrapper sets)."""

    samples: int = 800
    iterations: int = 10
    topk: int = 10
    horizon: int = 1
    momentum_mean: float = 0.15
    momentum_std: float = 0.15
    momentum_mean_gripper: float = 0.15
    momentum_std_gripper: float = 0.15
    init_std_gripper: float = 1.0
    gripper_deadband: float = 0.25  # final gripper deltas smaller than this become 0
    close_gripper_after: int | None = None  # from this horizon step on, force gripper delta 1.0
    warm_start: bool = False  # MPC: start from the previous plan shifted by one step
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("samples", "iterations", "topk", "horizon"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"CEMConfig.{name} must be a positive int, got {getattr(self, name)!r}")
        if self.topk < 2 or self.topk > self.samples:
            raise ValueError(f"CEMConfig.topk must be in [2, samples={self.samples}], got {self.topk}")
        for name in ("momentum_mean", "momentum_std", "momentum_mean_gripper", "momentum_std_gripper"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"CEMConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.init_std_gripper <= 0 or self.gripper_deadband < 0:
            raise ValueError("CEMConfig.init_std_gripper must be > 0 and gripper_deadband >= 0")

    def replace(self, **changes: Any) -> "CEMConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class CEMResult:
    """The plan and the final sampling distribution (numpy)."""

    actions: np.ndarray  # [H, 7] planned actions; actions[0] is executed
    mean: np.ndarray  # [H, F] final mean over the free dims
    std: np.ndarray  # [H, F] final std over the free dims
    elite_costs: np.ndarray  # [iterations, topk] costs of the elites, per iteration


def sample_noise(config: CEMConfig, spec: ActionSpec, rng: np.random.Generator) -> np.ndarray:
    """Standard normal noise for a whole CEM run: [iterations, S, H, F] float32."""
    shape = (config.iterations, config.samples, config.horizon, len(spec.free_names))
    return rng.standard_normal(shape, dtype=np.float32)


def cem(
    cost_fn: Callable[[Any], Any],
    config: CEMConfig,
    spec: ActionSpec,
    noise: np.ndarray,
    ops: ArrayOps,
    init_mean: np.ndarray | None = None,
) -> CEMResult:
    """Minimise `cost_fn(actions [S, H, 7]) -> [S]` over action sequences.

    Each iteration: sample `mean + std * noise`, project into the bounds, evaluate, keep the
    top-k, and move mean/std towards the elites' with momentum (separate for the gripper).
    The result is the final mean (gripper deltas under the deadband zeroed).
    """
    H, F = config.horizon, len(spec.free_names)
    if noise.shape != (config.iterations, config.samples, H, F):
        raise ValueError(f"noise has shape {noise.shape}, expected {(config.iterations, config.samples, H, F)}")
    is_gripper = spec.is_gripper()
    grip = [i for i in range(F) if is_gripper[i]]
    m_mean = np.where(is_gripper, config.momentum_mean_gripper, config.momentum_mean).astype(np.float32)
    m_std = np.where(is_gripper, config.momentum_std_gripper, config.momentum_std).astype(np.float32)

    noise_x = ops.asarray(noise)  # one host->device copy for the whole run
    mean = ops.asarray(np.zeros((H, F), np.float32) if init_mean is None else init_mean)
    std = ops.asarray(np.broadcast_to(spec.initial_std(config.init_std_gripper), (H, F)).copy())
    m_mean_x, m_std_x = ops.asarray(m_mean), ops.asarray(m_std)
    elite_costs = []
    for i in range(config.iterations):
        free = spec.constrain(noise_x[i] * std + mean, ops)  # [S, H, F]
        if config.close_gripper_after is not None and grip:
            free = _force_gripper(free, grip[0], config.close_gripper_after, ops)
        costs = cost_fn(spec.expand(free, ops))  # [S]
        idx = ops.smallest_k(costs, config.topk)  # [k]
        elites = free[idx]  # [k, H, F]
        mean = ops.mean(elites, axis=0) * (1.0 - m_mean_x) + mean * m_mean_x
        std = ops.std(elites, axis=0) * (1.0 - m_std_x) + std * m_std_x
        elite_costs.append(costs[idx])

    mean_np, std_np = ops.to_numpy(mean), ops.to_numpy(std)
    final = mean_np.copy()
    for g in grip:  # upstream `round_small_elements(mean[..., -1:], 0.25)`
        final[..., g] = np.where(np.abs(final[..., g]) < config.gripper_deadband, 0.0, final[..., g])
    actions = spec.expand(final, NUMPY_OPS)
    costs_np = np.stack([ops.to_numpy(c) for c in elite_costs])
    return CEMResult(actions=actions.astype(np.float32), mean=mean_np, std=std_np, elite_costs=costs_np)


def shift_plan(mean: np.ndarray) -> np.ndarray:
    """Warm start for the next MPC step: drop the executed step, repeat the last one. [H, F] -> [H, F]."""
    return np.concatenate([mean[1:], mean[-1:]], axis=0)


def _force_gripper(free: Any, g: int, after: int, ops: ArrayOps) -> Any:
    H = free.shape[1]
    if after >= H:
        return free
    head, tail = free[:, :after], free[:, after:]
    forced = ops.concat([tail[..., :g], ops.zeros(tail[..., g : g + 1].shape, like=tail) + 1.0, tail[..., g + 1 :]], axis=-1)
    return ops.concat([head, forced], axis=1)

