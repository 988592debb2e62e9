"""V-JEPA 2-AC training losses: teacher forcing over a clip plus an autoregressive rollout.

As upstream (`app/vjepa_droid/train.py`): with target latents h of frames 0..T-1,
- teacher forcing: the predictor sees frames 0..T-2 with their actions/states and predicts
  frames 1..T-1 (block-causal, so every prefix at once);
- rollout: from frame 0 it is fed its own predictions for `auto_steps` steps;
each loss is mean(|pred - target|^p) / p, outputs layer-normed; the total is their sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class PredictorLosses:
    teacher_forcing: torch.Tensor
    rollout: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.teacher_forcing + self.rollout


def _step(predictor: torch.nn.Module, z: torch.Tensor, actions: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    out = predictor(z, actions, states)
    return F.layer_norm(out, (out.shape[-1],))


def _l1(pred: torch.Tensor, target: torch.Tensor, loss_exp: float) -> torch.Tensor:
    return torch.mean(torch.abs(pred - target) ** loss_exp) / loss_exp


def predictor_losses(
    predictor: torch.nn.Module,
    h: torch.Tensor,
    actions: torch.Tensor,
    states: torch.Tensor,
    tokens_per_frame: int,
    auto_steps: int = 2,
    loss_exp: float = 1.0,
) -> PredictorLosses:
    """h [B, T*N, D] layer-normed targets, actions [B, T-1, 7], states [B, T, 7]."""
    N = tokens_per_frame
    T = h.shape[1] // N
    if actions.shape[1] != T - 1 or states.shape[1] != T:
        raise ValueError(f"clip of {T} frames needs {T - 1} actions and {T} states, got "
                         f"{actions.shape[1]} and {states.shape[1]}")
    auto_steps = max(1, min(auto_steps, T - 1))
    z_tf = _step(predictor, h[:, :-N], actions, states[:, :-1])  # [B, (T-1)*N, D]: frames 1..T-1

    rolled = torch.cat([h[:, :N], z_tf[:, :N]], dim=1)  # [B, 2N, D]: frame 0 and predicted frame 1
    for n in range(1, auto_steps):
        z_next = _step(predictor, rolled, actions[:, : n + 1], states[:, : n + 1])[:, -N:]  # [B, N, D]
        rolled = torch.cat([rolled, z_next], dim=1)
    z_ar = rolled[:, N:]  # [B, auto_steps*N, D]: frames 1..auto_steps

    target = h[:, N:]  # frames 1..T-1
    return PredictorLosses(
        teacher_forcing=_l1(z_tf, target, loss_exp),
        rollout=_l1(z_ar, target[:, : z_ar.shape[1]], loss_exp),
    )


def copy_last_frame_loss(h: torch.Tensor, tokens_per_frame: int, loss_exp: float = 1.0) -> torch.Tensor:
    """Baseline: predict z_{t+1} = z_t for every frame of the clip (same loss as teacher forcing)."""
    N = tokens_per_frame
    return _l1(h[:, :-N], h[:, N:], loss_exp)
