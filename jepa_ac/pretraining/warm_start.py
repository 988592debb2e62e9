"""Start a pretraining run from another run's weights, possibly at another image or patch size.

    python -m jepa_ac.pretrain_encoder --config hires.yaml --init-from runs/pretrain_xl/checkpoint

The source is a pretraining run's `checkpoint/` or `final/` (the target encoder, plus the context
encoder and mask predictor in its trainer state, read from safetensors: never unpickled) or any encoder folder in our format (an export:
the context encoder then starts as a copy of it and the mask predictor fresh). Width, depth and heads
must match; image size and patch size may differ. 3D RoPE has no learned positions, so only the
patch embedding depends on them: its kernel is resampled so that a new-size patch gives the same
embedding as the old kernel on that patch area-resized to the old size. 128 px with patch 16 then
starts exactly where 64 px with patch 8 was (same 8 x 8 token grid, four times the pixels per
token), and further training teaches it to use the finer detail.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from jepa_ac.world_model.checkpoints import CheckpointError, match_arrays, read_checkpoint
from jepa_ac.model.config import EncoderConfig
from jepa_ac.training.trainer_state import STATE_TENSORS, has_trainer_state, read_trainer_state

logger = logging.getLogger(__name__)

PATCH_KERNEL = "patch_embed.proj.weight"
# fields that may differ between the source and the new encoder
RESIZABLE = ("img_size", "patch_size", "num_frames")


def resample_patch_kernel(weight: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Patch-embedding kernel [D, C, (t,) p, p] -> [D, C, (t,) q, q] for patch size q.

    The new kernel W' satisfies <x', W'> = <area_resize(x', p), W> for every q x q patch x': the
    resize is linear, A = its matrix [p*p, q*q], so W' = W A (exact for q a multiple of p).
    """
    p = weight.shape[-1]
    if weight.shape[-2] != p:
        raise ValueError(f"patch kernel must be square, got {list(weight.shape)}")
    if patch_size == p:
        return weight.clone()
    q = patch_size
    basis = torch.eye(q * q, dtype=torch.float64).reshape(q * q, 1, q, q)  # one image per new pixel
    resize = F.interpolate(basis, size=(p, p), mode="area").reshape(q * q, p * p).T  # [p*p, q*q]
    flat = weight.double().reshape(-1, p * p) @ resize  # [..., q*q]
    return flat.reshape(*weight.shape[:-2], q, q).to(weight.dtype)


def check_compatible(source: EncoderConfig, target: EncoderConfig, path: str | Path) -> None:
    """Raise naming every architecture field (other than sizes) that differs."""
    a, b = source.to_dict(), target.to_dict()
    differing = {k: (a[k], b[k]) for k in a if k not in RESIZABLE and a.get(k) != b.get(k)}
    if differing:
        details = ", ".join(f"{k}: {old!r} there vs {new!r} here" for k, (old, new) in sorted(differing.items()))
        raise CheckpointError(f"{path}: encoder architecture differs from this run's ({details}); only "
                              f"{', '.join(RESIZABLE)} may change when initialising from it")


def adapt_encoder_state(state: Mapping[str, Any], config: EncoderConfig) -> dict[str, torch.Tensor]:
    """Encoder weights from another run, with the patch kernel resampled to `config.patch_size`."""
    out = {k: torch.as_tensor(np.asarray(v)).float() for k, v in state.items()}
    if PATCH_KERNEL in out:
        out[PATCH_KERNEL] = resample_patch_kernel(out[PATCH_KERNEL], config.patch_size)
    return out


def _sub_state(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _load_strict(module: torch.nn.Module, state: Mapping[str, Any], part: str, source: str) -> None:
    """Load `state` into `module` after `match_arrays` has checked names and shapes (a mismatch is a
    CheckpointError naming the keys, as for every checkpoint this package loads)."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    module.load_state_dict(match_arrays(part, state, expected, source), strict=True)


def warm_start(path: str | Path, context_encoder: torch.nn.Module, target_encoder: torch.nn.Module,
               predictor: torch.nn.Module, config: EncoderConfig) -> dict[str, str]:
    """Load weights from `path` into the three modules (strictly: mismatched keys are named).

    Returns what each module was initialised from. The context encoder and mask predictor come from
    the run's trainer state when `path` is a pretraining `checkpoint/`; otherwise the context
    encoder starts as a copy of the target encoder and the predictor stays freshly initialised.
    """
    path = Path(path)
    loaded = read_checkpoint(path)
    if loaded.encoder_config is None:
        raise CheckpointError(f"{path}: states no encoder architecture; --init-from needs a jepa_ac folder")
    check_compatible(loaded.encoder_config, config, path)
    _load_strict(target_encoder, adapt_encoder_state(loaded.arrays["encoder"], config), "encoder", str(path))
    sources = {"target_encoder": f"{path} (encoder)"}
    trainer_state = path / STATE_TENSORS
    if has_trainer_state(path):
        state = read_trainer_state(path)  # never unpickles: a legacy trainer_state.pt is refused, named
        if "model" not in state["modules"]:
            raise CheckpointError(f"{trainer_state} holds no context encoder and mask predictor ('model' tensors); "
                                  "--init-from takes a pretraining checkpoint or an encoder folder")
        model = state["modules"]["model"]
        _load_strict(context_encoder, adapt_encoder_state(_sub_state(model, "encoder."), config), "context encoder",
                     str(trainer_state))
        _load_strict(predictor, _sub_state(model, "predictor."), "mask predictor", str(trainer_state))
        sources["context_encoder"] = f"{trainer_state} (context encoder)"
        sources["predictor"] = f"{trainer_state} (predictor)"
    else:
        context_encoder.load_state_dict(target_encoder.state_dict(), strict=True)
        sources["context_encoder"] = "copy of the target encoder"
        sources["predictor"] = "fresh"
    logger.info("initialised from %s: %s", path, sources)
    return sources
