"""The target encoder: an exponential moving average of the context encoder, never trained directly."""

from __future__ import annotations

import copy

import torch

from jepa_ac.training.common import cosine


def make_target_encoder(context_encoder: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy (no gradients, eval mode) that `ema_update` keeps in sync."""
    target = copy.deepcopy(context_encoder)
    target.requires_grad_(False)
    return target.eval()


def ema_momentum(step: int, total_steps: int, start: float = 0.998, end: float = 1.0) -> float:
    """V-JEPA's momentum schedule: linear from `start` to `end` over training."""
    return start + (end - start) * min(1.0, step / max(1, total_steps))


@torch.no_grad()
def ema_update(target: torch.nn.Module, context: torch.nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * context, parameter by parameter."""
    target_params = list(target.parameters())
    context_params = list(context.parameters())
    if len(target_params) != len(context_params):
        raise ValueError("target and context encoders have different parameter lists")
    torch._foreach_mul_(target_params, momentum)
    torch._foreach_add_(target_params, [p.detach() for p in context_params], alpha=1.0 - momentum)


def weight_decay_at(step: int, total_steps: int, start: float = 0.04, end: float = 0.4) -> float:
    """V-JEPA's cosine weight-decay schedule (0.04 -> 0.4)."""
    return cosine(start, end, step, total_steps)
