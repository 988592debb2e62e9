"""A literal reference planner: upstream V-JEPA 2-AC's CEM step by step, for speed and equality checks.

It follows facebookresearch/vjepa2 `notebooks/utils/mpc_utils.py::cem` with the
`world_model_wrapper.py::infer_next_action` step function, written out again here:

- the context latent, goal latent and pose are repeated S times up front;
- each CEM iteration re-runs the predictor on the whole frame sequence from scratch (context
  embedding and block-causal mask included, no cache) once per horizon step;
- each horizon step also composes the next pose per sample with scipy `Rotation` in a Python loop
  on the host (`compute_new_pose`), which syncs with the device;
- the elites are the top-k of the L1 distance to the goal; mean/std move towards them with
  momentum (separate for the gripper); the gripper of the final mean is rounded to 0 under 0.25.

The only deliberate difference: the standard normal noise is passed in (`noise [iterations, S, H, F]`,
as `cem()` takes it) instead of drawn with `torch.randn` inside the loop, so this planner and the
fast path see identical samples. It is torch only (upstream is) and supports the upstream action
layout (`ActionSpec()` defaults: xyz box-bounded, rotation frozen at 0, gripper free).

    ref = reference_plan(wm, frame_uint8, state, goal_latent, CEMConfig(), noise)
    ref.actions[0], ref.elite_indices   # [7], [iterations, topk]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from jepa_ac.model.pose import GRIPPER_COLUMN, POSITION, ROTATION
from jepa_ac.planning.action_spec import ActionSpec
from jepa_ac.planning.cem import CEMConfig, CEMResult, cem
from jepa_ac.world_model import REPS_LAYER_NORM_EPS

UPSTREAM_FREE = ("dx", "dy", "dz", "dgripper")


@dataclass
class ReferenceResult:
    """What the reference planner chose and which samples were elites (numpy)."""

    actions: np.ndarray  # [H, 7]
    mean: np.ndarray  # [H, 4] final mean over (dx, dy, dz, dgripper)
    std: np.ndarray  # [H, 4]
    elite_indices: np.ndarray  # [iterations, topk] sample indices, best first
    elite_costs: np.ndarray  # [iterations, topk]
    elite_actions: np.ndarray  # [iterations, topk, H, 7]


def compute_new_pose(pose: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Upstream `compute_new_pose`: pose/action [S, 1, 7] -> [S, 1, 7], one sample at a time on the host."""
    device, dtype = pose.device, pose.dtype
    pose_np, action_np = pose[:, 0].cpu().numpy(), action[:, 0].cpu().numpy()  # host sync
    new_xyz = pose_np[:, POSITION] + action_np[:, POSITION]
    matrices = [Rotation.from_euler("xyz", theta).as_matrix() for theta in pose_np[:, ROTATION]]
    deltas = [Rotation.from_euler("xyz", theta).as_matrix() for theta in action_np[:, ROTATION]]
    angles = np.stack([Rotation.from_matrix(d @ m).as_euler("xyz") for d, m in zip(deltas, matrices)])  # [S, 3]
    closedness = np.clip(pose_np[:, GRIPPER_COLUMN] + action_np[:, GRIPPER_COLUMN], 0, 1)
    new_pose = np.concatenate([new_xyz, angles, closedness], axis=-1)  # [S, 7]
    return torch.from_numpy(new_pose).to(device).to(dtype)[:, None]


def check_upstream_layout(spec: ActionSpec) -> None:
    if type(spec) is not ActionSpec or spec.free_names != UPSTREAM_FREE or any(v for _, v in spec.frozen):
        raise ValueError(
            "the reference planner supports upstream's action layout only (an ActionSpec with free dims dx, dy, "
            f"dz, dgripper and rotation frozen at 0), got a {type(spec).__name__} with free={spec.free_names}, "
            f"frozen={dict(spec.frozen)}"
        )


def reference_plan(
    wm: Any,
    frame: np.ndarray,
    state: Any,
    goal_latent: Any,
    config: CEMConfig,
    noise: np.ndarray,
    spec: ActionSpec | None = None,
) -> ReferenceResult:
    """Encode `frame` (uint8 [H, W, 3]) and plan from `state` [7] towards `goal_latent` [1, N, D].

    `wm` is a torch `WorldModel`; `noise` is `sample_noise(config, spec, rng)`.
    """
    spec = spec or ActionSpec()
    check_upstream_layout(spec)
    if wm.backend.name != "torch":
        raise ValueError(f"the reference planner runs on the torch backend, got {wm.backend.name!r}")
    S, H, k = config.samples, config.horizon, config.topk
    if noise.shape != (config.iterations, S, H, 4):
        raise ValueError(f"noise has shape {noise.shape}, expected {(config.iterations, S, H, 4)}")
    predictor, dtype = wm.backend.predictor, wm.backend.dtype
    maxnorm, max_gripper = spec.max_translation, spec.max_gripper_delta

    with torch.no_grad():
        rep = wm.encode(frame)  # [1, N, D] layer-normed
        device = rep.device
        N, D = rep.shape[-2:]
        context_frame = rep.reshape(1, 1, N, D).repeat(S, 1, 1, 1)  # [S, 1, N, D]
        goal_frame = torch.as_tensor(goal_latent, device=device).reshape(1, 1, N, D).repeat(S, 1, 1, 1)  # [S, 1, N, D]
        context_pose = torch.as_tensor(np.asarray(state, np.float32), device=device).reshape(1, 1, 7).repeat(S, 1, 1)
        noise_t = torch.as_tensor(noise, device=device)

        def step_predictor(reps, actions, poses):  # [S, T, N, D], [S, T, 7], [S, T, 7]
            B, T = reps.shape[:2]
            out = predictor(reps.flatten(1, 2).to(dtype), actions.to(dtype), poses.to(dtype)).float()
            next_rep = F.layer_norm(out[:, -N:], (D,), eps=REPS_LAYER_NORM_EPS)  # [S, N, D]
            next_pose = compute_new_pose(poses[:, -1:], actions[:, -1:])  # [S, 1, 7]
            return next_rep.view(B, 1, N, D), next_pose

        mean = torch.zeros(H, 4, device=device)
        std = torch.cat([torch.full((H, 3), maxnorm, device=device),
                         torch.full((H, 1), config.init_std_gripper, device=device)], dim=-1)  # [H, 4]
        elite_indices, elite_costs, elite_actions = [], [], []
        for i in range(config.iterations):
            action_traj, frame_traj, pose_traj = None, context_frame, context_pose
            for h in range(H):
                samples = noise_t[i, :, h] * std[h] + mean[h]  # [S, 4] upstream's free dims: dx, dy, dz, dgripper
                samples[:, :3] = torch.clip(samples[:, :3], min=-maxnorm, max=maxnorm)
                samples[:, -1:] = torch.clip(samples[:, -1:], min=-max_gripper, max=max_gripper)
                samples = torch.cat([samples[:, :3], torch.zeros(S, 3, device=device), samples[:, -1:]], dim=-1)[:, None]
                action_traj = samples if action_traj is None else torch.cat([action_traj, samples], dim=1)
                next_frame, next_pose = step_predictor(frame_traj, action_traj, pose_traj)
                frame_traj = torch.cat([frame_traj, next_frame], dim=1)  # [S, h+2, N, D]
                pose_traj = torch.cat([pose_traj, next_pose], dim=1)  # [S, h+2, 7]
            sims = torch.mean(torch.abs(frame_traj[:, -1].flatten(1) - goal_frame.flatten(1)), dim=-1)  # [S]
            top = sims.topk(k, largest=False)
            elite_indices.append(top.indices.cpu().numpy())
            elite_costs.append(top.values.cpu().numpy())
            selected = action_traj[top.indices]  # [k, H, 7]
            elite_actions.append(selected.cpu().numpy())
            sel = torch.cat([selected[..., POSITION], selected[..., GRIPPER_COLUMN]], dim=-1)  # [k, H, 4]
            m_mean = torch.tensor([config.momentum_mean] * 3 + [config.momentum_mean_gripper], device=device)
            m_std = torch.tensor([config.momentum_std] * 3 + [config.momentum_std_gripper], device=device)
            mean = sel.mean(dim=0) * (1.0 - m_mean) + mean * m_mean
            std = sel.std(dim=0) * (1.0 - m_std) + std * m_std

        gripper = mean[..., -1:].clone()
        gripper[torch.abs(gripper) < config.gripper_deadband] = 0  # upstream `round_small_elements`
        actions = torch.cat([mean[..., :3], torch.zeros(H, 3, device=device), gripper], dim=-1)  # [H, 7]
    return ReferenceResult(
        actions=actions.cpu().numpy().astype(np.float32),
        mean=mean.cpu().numpy(),
        std=std.cpu().numpy(),
        elite_indices=np.stack(elite_indices),
        elite_costs=np.stack(elite_costs),
        elite_actions=np.stack(elite_actions),
    )


@dataclass
class FastResult:
    """`CEMResult` of the package's planner plus the elites it picked, for comparison."""

    result: CEMResult
    elite_indices: np.ndarray  # [iterations, topk]
    elite_actions: np.ndarray  # [iterations, topk, H, 7]

    @property
    def actions(self) -> np.ndarray:
        """The planned actions [H, 7], as `ReferenceResult.actions`."""
        return self.result.actions


def fast_plan(
    wm: Any,
    frame: np.ndarray,
    state: Any,
    goal_latent: Any,
    config: CEMConfig,
    noise: np.ndarray,
    spec: ActionSpec | None = None,
) -> FastResult:
    """The package's planning step (what `CEMPlanner.plan_sequence` runs: encode, then `cem` over
    `WorldModel.rollout_energy`) on the same inputs as `reference_plan`. Any backend."""
    spec = spec or ActionSpec()
    ops = wm.ops
    z = wm.encode(frame)  # [1, N, D]
    state_x = ops.asarray(np.asarray(state, np.float32)[None])  # [1, 7]
    seen = []

    def cost(actions: Any) -> Any:  # [S, H, 7] -> [S]
        costs = wm.rollout_energy(z, state_x, actions, goal_latent)
        seen.append((actions, costs))
        return costs

    result = cem(cost, config, spec, noise, ops)
    indices = np.stack([ops.to_numpy(ops.smallest_k(c, config.topk)) for _, c in seen])  # [iterations, k]
    actions = np.stack([ops.to_numpy(a)[i] for (a, _), i in zip(seen, indices)])  # [iterations, k, H, 7]
    return FastResult(result=result, elite_indices=indices, elite_actions=actions)


def same_elites(actions_a: np.ndarray, actions_b: np.ndarray, atol: float = 1e-6) -> bool:
    """True when each iteration's elite set is the same set of action sequences in both runs.

    [iterations, k, H, 7] each. Order within the top-k is ignored, and so are swaps between
    samples whose actions are identical (clipped samples often are, so their costs tie exactly).
    """
    if actions_a.shape != actions_b.shape:
        return False
    for a, b in zip(actions_a, actions_b):
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)  # [k, H*7]
        a, b = a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])]
        if not np.allclose(a, b, rtol=0.0, atol=atol):
            return False
    return True
