"""safetensors files with real bfloat16 tensors, read and written without torch.

numpy has no bfloat16: BF16 tensors are written from float32 by rounding to the upper 16 bits
and widened back to float32 (exactly) when read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

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
