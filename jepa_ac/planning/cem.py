"""Cross-entropy method over action sequences, as V-JEPA 2-AC plans (upstream `mpc_utils.cem`).

`cem()` is a pure function of (cost function, config, action spec, noise): no environment,
logging or I/O. Noise for all iterations is drawn up front on the host from a seeded numpy
generator, so every backend sees identical samples and the loop has no host-device sync.

Options beyond upstream (all off by default, which is upstream's CEM):
- `keep_elites` (iCEM elite reuse): a fraction of each iteration's elites replaces as many fresh
  samples in the next iteration; with `warm_start`, the previous MPC step's final elites (shifted
  by one step) enter the first iteration too. The number of evaluated samples is unchanged.
- `hold_unless_better` (CEMPlanner): execute the zero action when the model predicts that holding
  still ends at least as close to the goal as the plan (no drifting away once at the goal).
- `repeat_action` (straight-line plans): each candidate is one action held for all `horizon`
  steps. CEM searches F dims instead of H x F, while the imagined rollout still spans the
  horizon, so a goal several steps away is scored where the move would end.
- `horizon_energy="min"`: a candidate's energy is the lowest over its imagined steps (the closest
  it comes to the goal) instead of its last step's. With `repeat_action` this lets one plan
  cover a goal anywhere from one to `horizon` steps away.

How CEM draws its candidates is the one extension point of the loop: a `Sampler` (`cem(...,
sampler=)`, `CEMPlanner(..., sampler=)`). The default is upstream's Gaussian; variants that were
measured and did not ship (iCEM's coloured noise, adaptive sample counts) are samplers in
`experiments/planning_quality/run.py`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from jepa_ac.model.array_ops import NUMPY_OPS, ArrayOps
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
    warm_start: bool = False  # MPC: start from the previous plan shifted by one step
    keep_elites: float = 0.0  # iCEM: fraction of the top-k carried into the next iteration's samples
    surprise_gate: float | None = None  # skip CEM when the observed latent is this close to the predicted one
    max_skips: int = 2  # at most this many skipped re-plans in a row
    hold_unless_better: bool = False  # send the zero action unless the plan is predicted to end closer to the goal
    repeat_action: bool = False  # straight-line plans: one action held for the whole horizon
    horizon_energy: str = "last"  # a rollout's energy: its "last" frame's (upstream) or the "min" over its frames
    goal_change_weighting: float = 0.0  # 0: plain L1 (upstream); up to 1: weigh tokens by how much the goal changes them
    ensemble: bool = False  # the energy is the mean over the world model's predictor and its ensemble members
    predictor: str | None = None  # score with the ensemble member of this name instead of the model's own predictor
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
        if not 0.0 <= self.keep_elites <= 1.0:
            raise ValueError(f"CEMConfig.keep_elites must be in [0, 1], got {self.keep_elites!r}")
        if self.surprise_gate is not None and not self.surprise_gate > 0:
            raise ValueError(f"CEMConfig.surprise_gate must be > 0 or null, got {self.surprise_gate!r}")
        if not isinstance(self.max_skips, int) or self.max_skips < 1:
            raise ValueError(f"CEMConfig.max_skips must be a positive int, got {self.max_skips!r}")
        if not isinstance(self.repeat_action, bool):
            raise ValueError(f"CEMConfig.repeat_action must be true or false, got {self.repeat_action!r}")
        if not isinstance(self.ensemble, bool):
            raise ValueError(f"CEMConfig.ensemble must be true or false, got {self.ensemble!r}")
        if self.predictor is not None and (not isinstance(self.predictor, str) or not self.predictor):
            raise ValueError(f"CEMConfig.predictor must be an ensemble member's name or null, got {self.predictor!r}")
        if self.predictor is not None and self.ensemble:
            raise ValueError("CEMConfig.predictor (one member scores) and ensemble (all of them, averaged) exclude "
                             "each other: set one")
        if not 0.0 <= self.goal_change_weighting <= 1.0:
            raise ValueError(f"CEMConfig.goal_change_weighting must be in [0, 1], got {self.goal_change_weighting!r}")
        if self.horizon_energy not in ("last", "min"):
            raise ValueError(f"CEMConfig.horizon_energy must be 'last' or 'min', got {self.horizon_energy!r}")

    @property
    def search_horizon(self) -> int:
        """Steps CEM samples actions for: 1 with `repeat_action` (the action is held), else `horizon`."""
        return 1 if self.repeat_action else self.horizon

    @property
    def kept_elites(self) -> int:
        """How many elites `keep_elites` carries into the next iteration."""
        return int(round(self.keep_elites * self.topk))

    def replace(self, **changes: Any) -> "CEMConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class CEMResult:
    """The plan and the final sampling distribution (numpy)."""

    actions: np.ndarray  # [H, 7] planned actions; actions[0] is executed
    mean: np.ndarray  # [Hs, F] final mean over the free dims (Hs = config.search_horizon)
    std: np.ndarray  # [Hs, F] final std over the free dims
    elite_costs: np.ndarray  # [iterations, topk] costs of the elites, per iteration
    elites: np.ndarray | None = None  # [topk, Hs, F] the last iteration's elites (free dims), best first
    evaluated: int = 0  # samples whose cost was evaluated, over all iterations
    skipped: bool = False  # True when the surprise gate reused the previous plan instead of running CEM
    surprise: float | None = None  # L1 between the observed latent and the one predicted at the previous step
    held: bool = False  # True when `hold_unless_better` replaced the plan by holding still


class Sampler:
    """How CEM draws its candidates: the one extension point of the loop. This base class is upstream's
    Gaussian sampling; a variant subclasses it and overrides one or both steps.

    `noise` draws the standard normal noise of a whole run up front, on the host from the planner's
    seeded generator, so every backend sees identical samples. `propose` turns iteration i's noise
    into candidates around the current mean and std; the action spec's bounds apply after it.
    """

    def noise(self, config: CEMConfig, spec: ActionSpec, rng: np.random.Generator) -> np.ndarray:
        """[iterations, S, Hs, F] float32 standard normal noise, Hs = `config.search_horizon`."""
        shape = (config.iterations, config.samples, config.search_horizon, len(spec.free_names))
        return rng.standard_normal(shape, dtype=np.float32)

    def propose(self, i: int, noise: Any, mean: Any, std: Any, ops: ArrayOps) -> Any:
        """Iteration `i`'s candidates [n, Hs, F] from its noise [S, Hs, F] (backend array) and the
        distribution's `mean`, `std` [Hs, F]: `mean + std * noise`, all S of them."""
        return noise * std + mean


GAUSSIAN = Sampler()


def sample_noise(config: CEMConfig, spec: ActionSpec, rng: np.random.Generator) -> np.ndarray:
    """Upstream's noise for a whole CEM run: [iterations, S, Hs, F] float32 (`Sampler.noise`)."""
    return GAUSSIAN.noise(config, spec, rng)


def cem(
    cost_fn: Callable[[Any], Any],
    config: CEMConfig,
    spec: ActionSpec,
    noise: np.ndarray,
    ops: ArrayOps,
    init_mean: np.ndarray | None = None,
    init_elites: np.ndarray | None = None,
    position: np.ndarray | None = None,
    sampler: Sampler = GAUSSIAN,
) -> CEMResult:
    """Minimise `cost_fn(actions [S, H, 7]) -> [S]` over action sequences.

    Each iteration: draw candidates (`sampler.propose`: `mean + std * noise`), project them into the
    bounds, evaluate, keep the top-k, and move mean/std towards the elites' with momentum (separate
    for the gripper). The result is the final mean (gripper deltas under the deadband zeroed). `init_elites`
    [n, Hs, F] (the previous MPC step's shifted elites) replace the first fresh samples of the
    first iteration when `config.keep_elites` > 0. `position` [3]: the current TCP position, for
    an action spec with a workspace (samples and the final mean keep the TCP inside it).
    With `config.repeat_action` the distribution is over one action (Hs = 1), held for the
    horizon when evaluated.
    """
    H, F = config.search_horizon, len(spec.free_names)
    if noise.shape != (config.iterations, config.samples, H, F):
        raise ValueError(f"noise has shape {noise.shape}, expected {(config.iterations, config.samples, H, F)}")
    is_gripper = spec.is_gripper()
    m_mean = np.where(is_gripper, config.momentum_mean_gripper, config.momentum_mean).astype(np.float32)
    m_std = np.where(is_gripper, config.momentum_std_gripper, config.momentum_std).astype(np.float32)

    noise_x = ops.asarray(noise)  # one host->device copy for the whole run
    mean = ops.asarray(np.zeros((H, F), np.float32) if init_mean is None else init_mean)
    std = ops.asarray(np.broadcast_to(spec.initial_std(config.init_std_gripper), (H, F)).copy())
    m_mean_x, m_std_x = ops.asarray(m_mean), ops.asarray(m_std)
    keep = config.kept_elites
    carried = None  # [n, Hs, F] elites that replace fresh samples this iteration
    if keep and init_elites is not None and len(init_elites):
        carried = ops.asarray(np.asarray(init_elites, np.float32)[:keep])
    elite_costs, evaluated = [], 0
    for i in range(config.iterations):
        free = spec.constrain(sampler.propose(i, noise_x[i], mean, std, ops), ops, position)  # [n, Hs, F]
        if carried is not None:  # elite reuse: the carried elites take the first fresh samples' places
            free = ops.concat([carried, free[carried.shape[0]:]], axis=0)
        costs = cost_fn(spec.expand(_sequences(free, config, spec, ops, position), ops))  # [n]
        evaluated += int(free.shape[0])
        idx = ops.smallest_k(costs, config.topk)  # [k]
        elites = free[idx]  # [k, Hs, F]
        mean = ops.mean(elites, axis=0) * (1.0 - m_mean_x) + mean * m_mean_x
        std = ops.std(elites, axis=0) * (1.0 - m_std_x) + std * m_std_x
        elite_costs.append(costs[idx])
        carried = elites[:keep] if keep else None

    mean_np, std_np = ops.to_numpy(mean), ops.to_numpy(std)
    if spec.has_workspace and position is not None:  # the momentum share of a warm start may lie outside
        mean_np = spec.constrain(mean_np, NUMPY_OPS, position)
    costs_np = np.stack([ops.to_numpy(c) for c in elite_costs])
    return CEMResult(actions=plan_actions(mean_np, config, spec), mean=mean_np, std=std_np, elite_costs=costs_np,
                     elites=ops.to_numpy(elites), evaluated=evaluated)


def _sequences(free: Any, config: CEMConfig, spec: ActionSpec, ops: ArrayOps, position: np.ndarray | None) -> Any:
    """Sampled free dims [n, Hs, F] -> the sequences they stand for [n, H, F]: as they are, or with
    `repeat_action` the one action held for the horizon (stopping at a workspace's walls)."""
    if not config.repeat_action or config.horizon == 1:
        return free
    held = ops.concat([free] * config.horizon, axis=1)  # [n, H, F]
    if spec.has_workspace and position is not None:
        held = spec.constrain(held, ops, position)
    return held


def plan_actions(mean: np.ndarray, config: CEMConfig, spec: ActionSpec) -> np.ndarray:
    """The actions a plan's mean [Hs, F] executes: [H, 7] float32 (with `repeat_action` the one action
    held for the horizon), gripper deltas under the deadband zeroed (upstream
    `round_small_elements(mean[..., -1:], 0.25)`)."""
    final = mean.copy()
    if config.repeat_action:
        final = np.repeat(final[..., :1, :], config.horizon, axis=-2)
    for g in np.flatnonzero(spec.is_gripper()):
        final[..., g] = np.where(np.abs(final[..., g]) < config.gripper_deadband, 0.0, final[..., g])
    return spec.expand(final, NUMPY_OPS).astype(np.float32)


def shift_plan(mean: np.ndarray) -> np.ndarray:
    """Warm start for the next MPC step: drop the executed step, repeat the last one.
    [H, F] -> [H, F], or per sequence [n, H, F] -> [n, H, F]."""
    return np.concatenate([mean[..., 1:, :], mean[..., -1:, :]], axis=-2)

