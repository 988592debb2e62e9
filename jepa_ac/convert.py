"""Convert any checkpoint the package reads into our folder format, ready for MLX (or torch).

    python -m jepa_ac.convert --checkpoint vjepa2-ac-vitg.pt --encoder vit_giant \\
        --predictor vit_ac_giant --out weights/vjepa2-ac-vitg --dtype bfloat16
    python -m jepa_ac.convert --checkpoint hf/vjepa2-vitl-fpc64-256 --out weights/vitl --dtype float16
    python -m jepa_ac.convert --checkpoint vjepa2_1_vitl_dist_vitG_384.pt --encoder vjepa2_1_vit_large_384 \
        --out weights/vjepa2_1_vitl --dtype bfloat16

The source (upstream `.pt`, Hugging Face folder, or one of our folders) is read and checked
strictly (`jepa_ac.checkpoints`); the output is `config.json` (architecture + provenance) and
`model.safetensors` (keys `encoder.*` / `predictor.*`, torch layout: the MLX backend changes the
conv layout at load), written atomically. Reading an upstream `.pt` needs torch; the output does
not. float32/float16 files load with any safetensors reader. bfloat16 files hold real BF16
tensors (half the size of float32); numpy has no bfloat16, so the reader must widen them
(`read_safetensors` here does; see `--help` of the dtype flag).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from jepa_ac.checkpoints import (
    CONFIG_FILE,
    FORMAT_NAME,
    UPSTREAM_DROPPED,
    WEIGHTS_FILE,
    match_arrays,
    read_checkpoint_for,
    save_checkpoint,
)
from jepa_ac.config import (
    ENCODER_PRESETS,
    PREDICTOR_PRESETS,
    resolve_encoder_config,
    resolve_predictor_config,
)

DTYPES = ("float32", "bfloat16", "float16")


# -- bfloat16 without a bfloat16 numpy type ---------------------------------------------------


def float32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 array -> uint16 bit patterns of bfloat16, rounded to nearest even (NaN kept NaN)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(0x7FC0), rounded)


def bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """uint16 bfloat16 bit patterns -> float32 (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
                      "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def write_safetensors(path: str | Path, tensors: Mapping[str, np.ndarray], dtype: str, metadata: Mapping[str, str]) -> None:
    """Write a safetensors file with floating tensors cast to `dtype` (float32 | float16 | bfloat16).

    Written directly from the format (8-byte little-endian header size, JSON header, aligned
    data) because numpy, and so `safetensors.numpy`, has no bfloat16.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    codes = {np.dtype(v): k for k, v in SAFETENSORS_DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    blobs, offset = [], 0
    for name, value in tensors.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating) and dtype == "bfloat16":
            code, data = "BF16", float32_to_bf16_bits(value.astype(np.float32)).astype("<u2").tobytes()
        else:
            if np.issubdtype(value.dtype, np.floating):
                value = value.astype(dtype)
            if value.dtype not in codes:
                raise ValueError(f"{name}: cannot store dtype {value.dtype} (expected float, int or bool)")
            code, data = codes[value.dtype], np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(value.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as handle:
        handle.write(len(head).to_bytes(8, "little"))
        handle.write(head)
        for data in blobs:
            handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Read a safetensors file into numpy, widening BF16 tensors to float32 (numpy has no bfloat16)."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (too short)")
    size = int.from_bytes(raw[:8], "little")
    try:
        header = json.loads(raw[8 : 8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a safetensors file (bad header: {err})") from err
    base = 8 + size
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        if base + end > len(raw):
            raise ValueError(f"{path}: truncated (tensor {name} ends past the end of the file)")
        data, shape = raw[base + begin : base + end], tuple(info["shape"])
        if info["dtype"] == "BF16":
            out[name] = bf16_bits_to_float32(np.frombuffer(data, dtype="<u2")).reshape(shape)
        elif info["dtype"] in SAFETENSORS_DTYPES:
            kind = np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
            out[name] = np.frombuffer(data, dtype=kind).reshape(shape).astype(kind.newbyteorder("="))
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
    return out


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
        from jepa_ac.backends.mlx_backend import MLXBackend

        backend = MLXBackend(enc_cfg, pred_cfg, device="cpu", compile=False)
    except ImportError:
        from jepa_ac.backends.torch_backend import TorchBackend

        backend = TorchBackend(enc_cfg, pred_cfg, device="cpu")
    return {part: backend.parameter_shapes(part) for part in backend.modules}


def _to_float32_numpy(value: Any) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        from jepa_ac.array_ops import ops_for

        value = ops_for(value).to_numpy(value)
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


def _arch_arg(value: str | None, part: str) -> Any:
    """A preset name, a JSON file of upstream constructor arguments, or an inline JSON object.

    A JSON object with an "encoder"/"predictor" entry (e.g. tests/fixtures/vjepa2_ac_tiny.json)
    gives that entry.
    """
    if value is None:
        return None
    if value.lstrip().startswith("{"):
        spec = json.loads(value)
    elif value.endswith(".json"):
        spec = json.loads(Path(value).read_text())
    else:
        return value
    return spec[part] if isinstance(spec.get(part), dict) else spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jepa_ac.convert",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="upstream .pt file, Hugging Face folder or jepa_ac folder")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically if it exists)")
    parser.add_argument("--encoder", help=f"encoder architecture: preset {sorted(ENCODER_PRESETS)}, a .json file "
                                          "or inline JSON of upstream kwargs (required for upstream .pt)")
    parser.add_argument("--predictor", help=f"predictor architecture: preset {sorted(PREDICTOR_PRESETS)}, "
                                            "a .json file or inline JSON")
    parser.add_argument("--encoder-key", default=None,
                        help="upstream .pt key of the encoder (default: 'encoder'; for a V-JEPA 2.1 --encoder the "
                             "first of ema_encoder, target_encoder, encoder)")
    parser.add_argument("--no-predictor", action="store_true", help="convert the encoder only")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="weight dtype on disk. float32/float16 load everywhere; bfloat16 is real BF16 "
                             "(half size) and needs a BF16-aware reader (jepa_ac.convert.read_safetensors)")
    args = parser.parse_args(argv)
    try:
        summary = convert(args.checkpoint, args.out, _arch_arg(args.encoder, "encoder"),
                          _arch_arg(args.predictor, "predictor"),
                          args.dtype, args.encoder_key, not args.no_predictor)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    from jepa_ac.cli_errors import run_cli

    run_cli(main)
