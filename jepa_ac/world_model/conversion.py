"""Our checkpoint folder written from any checkpoint the package reads.

The source (upstream `.pt`, Hugging Face folder, or one of our folders) is read and checked
strictly (`jepa_ac.world_model.checkpoints`); the output is `config.json` (architecture + provenance) and
`model.safetensors` (keys `encoder.*` / `predictor.*`, torch layout: the MLX backend changes the
conv layout at load), written atomically. Reading an upstream `.pt` needs torch; the output does
not. float32/float16 files load with any safetensors reader. bfloat16 files hold real BF16
tensors (half the size of float32); numpy has no bfloat16, so the reader must widen them
(`jepa_ac.world_model.safetensors_io.read_safetensors` does). The command is `python -m jepa_ac.convert`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from jepa_ac.world_model.safetensors_io import DTYPES, write_safetensors
from jepa_ac.world_model.checkpoints import (
    FORMAT_NAME,
    UPSTREAM_DROPPED,
    WEIGHTS_FILE,
    match_arrays,
    read_checkpoint_for,
    save_checkpoint,
)
from jepa_ac.model.config import (
    resolve_encoder_config,
    resolve_predictor_config,
)

# -- conversion ---------------------------------------------------------------------------------


def convert(
    checkpoint: str | Path,
    out: str | Path,
    encoder: Any = None,
    predictor: Any = None,
    dtype: str = "float32",
    encoder_key: str | None = None,
    load_predictor: bool = True,
) -> dict[str, Any]:
    """Read, check and write `checkpoint` as our folder at `out`; returns a summary dict.

    `encoder_key` None finds the encoder of an upstream `.pt` as `load_world_model` does (V-JEPA 2.1:
    `ema_encoder` or `target_encoder`; its pretraining `predictor` is left out unless `predictor` is given).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    given = resolve_encoder_config(encoder) if encoder is not None else None
    ckpt = read_checkpoint_for(checkpoint, given, encoder_key, predictor is not None, load_predictor)
    enc_cfg = given if given is not None else ckpt.encoder_config
    if enc_cfg is None:
        raise ValueError(f"{checkpoint} does not state its architecture: pass --encoder (e.g. vit_giant)")
    pred_cfg = None
    if load_predictor and "predictor" in ckpt.arrays:
        pred_cfg = resolve_predictor_config(predictor) if predictor is not None else ckpt.predictor_config
        if pred_cfg is None:
            raise ValueError(f"{checkpoint} has a predictor but no stated architecture: pass --predictor "
                             "(e.g. vit_ac_giant) or --no-predictor")
        pred_cfg = pred_cfg.with_encoder(enc_cfg)
    elif predictor is not None:
        raise ValueError(f"{checkpoint}: --predictor was given but the checkpoint has no predictor")

    # the strict shape check needs the expected shapes: build them from the torch-free MLX or torch backend
    expected = _expected_shapes(enc_cfg, pred_cfg)
    arrays = {}
    for part, cfg in (("encoder", enc_cfg), ("predictor", pred_cfg)):
        if cfg is None:
            continue
        dropped = UPSTREAM_DROPPED[part] if ckpt.provenance.get("source_format") == "upstream" else set()
        checked = match_arrays(part, ckpt.arrays[part], expected[part], ckpt.source, dropped)
        arrays[part] = {name: _to_float32_numpy(value) for name, value in checked.items()}
    provenance = {**ckpt.provenance, "converted_by": "jepa_ac.convert", "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "weights_dtype": dtype}
    out = Path(out)
    if dtype == "bfloat16":
        _save_bf16(out, arrays, enc_cfg, pred_cfg, provenance)
    else:
        save_checkpoint(out, arrays, enc_cfg, pred_cfg, provenance, dtype=dtype)
    count = sum(v.size for part in arrays.values() for v in part.values())
    return {"out": str(out), "dtype": dtype, "parameters": int(count), "parts": sorted(arrays),
            "bytes": (out / WEIGHTS_FILE).stat().st_size}


def _expected_shapes(enc_cfg, pred_cfg) -> dict[str, dict[str, tuple[int, ...]]]:
    """Torch-layout shapes from whichever backend is installed (MLX first: it needs no torch)."""
    try:
        from jepa_ac.world_model.backends.mlx_backend import MLXBackend

        backend = MLXBackend(enc_cfg, pred_cfg, device="cpu", compile=False)
    except ImportError:
        from jepa_ac.world_model.backends.torch_backend import TorchBackend

        backend = TorchBackend(enc_cfg, pred_cfg, device="cpu")
    return {part: backend.parameter_shapes(part) for part in backend.modules}


def _to_float32_numpy(value: Any) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        from jepa_ac.model.nn_torch.ops import TORCH_OPS

        value = TORCH_OPS.to_numpy(value)
    value = np.asarray(value)
    return value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value


def _save_bf16(out: Path, arrays, enc_cfg, pred_cfg, provenance) -> None:
    """Our folder with BF16 weights: write config.json via `save_checkpoint` into a temp folder,
    replace its weights file by the BF16 one, then move the folder into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.bf16-", dir=out.parent))
    try:
        folder = save_checkpoint(staging / "ckpt", {}, enc_cfg, pred_cfg, provenance)  # config.json only
        flat = {f"{part}.{name}": value for part, tensors in arrays.items() for name, value in tensors.items()}
        write_safetensors(folder / WEIGHTS_FILE, flat, "bfloat16", {"format": FORMAT_NAME})
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            folder.rename(out)
            shutil.rmtree(old)
        else:
            folder.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
