"""msgpack with numpy arrays: the byte format of the planning server and client (never pickle).

An array travels as the map `{"__ndarray__": raw bytes, "dtype": "<f4", "shape": [H, W, 3]}`;
numpy scalars become Python numbers. Decoding checks the dtype (numeric or bool only: object,
structured and string dtypes are refused), the shape and the byte count, so a malformed or hostile
message raises `WireError` instead of producing garbage.

    data = packb({"type": "infer", "image": frame, "state": state})
    message = unpackb(data)   # arrays come back as writable numpy arrays
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

ARRAY_KEY = "__ndarray__"
# numpy kinds that may travel: bool, signed/unsigned int, float, complex
ALLOWED_KINDS = frozenset("biufc")
MAX_NDIM = 8


class WireError(ValueError):
    """A message that is not valid msgpack, or holds an array that cannot be decoded safely."""


def check_dtype(dtype: Any) -> np.dtype:
    """The numpy dtype named by `dtype`, if it is a plain numeric/bool dtype; `WireError` otherwise."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError) as err:
        raise WireError(f"unknown array dtype {dtype!r}: {err}") from None
    if dt.kind not in ALLOWED_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise WireError(f"array dtype {dt.str!r} is not allowed on the wire; use bool, int, uint, float or complex")
    return dt


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        dt = check_dtype(obj.dtype)
        return {ARRAY_KEY: np.ascontiguousarray(obj).tobytes(), "dtype": dt.str, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        check_dtype(obj.dtype)
        return obj.item()
    raise TypeError(f"cannot send {type(obj).__name__} over the wire; use dicts, lists, str, numbers or numpy arrays")


def _decode(obj: dict) -> Any:
    if ARRAY_KEY not in obj:
        return obj
    data, dtype, shape = obj.get(ARRAY_KEY), obj.get("dtype"), obj.get("shape")
    if set(obj) != {ARRAY_KEY, "dtype", "shape"}:
        raise WireError(f"an array map must have exactly the keys {ARRAY_KEY!r}, 'dtype', 'shape'; got {sorted(obj)}")
    if not isinstance(data, bytes) or not isinstance(dtype, str):
        raise WireError("an array map needs bytes under '__ndarray__' and a dtype string under 'dtype'")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise WireError(f"array shape must be a list of at most {MAX_NDIM} non-negative ints, got {shape!r}")
    dt = check_dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * dt.itemsize != len(data):
        raise WireError(f"array of dtype {dt.str} and shape {shape} needs {count * dt.itemsize} bytes, got {len(data)}")
    # frombuffer gives a read-only view of the message; copy so callers may write into the array
    return np.frombuffer(data, dtype=dt, count=count).reshape(shape).copy()


def packb(obj: Any) -> bytes:
    """Serialise dicts/lists/str/numbers/bytes/None and numpy arrays to msgpack bytes."""
    return msgpack.packb(obj, default=_encode, use_bin_type=True)


def unpackb(data: bytes) -> Any:
    """Parse msgpack bytes produced by `packb`; `WireError` for anything malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"expected a binary msgpack message, got {type(data).__name__}")
    try:
        return msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=True)
    except WireError:
        raise
    except (msgpack.UnpackException, ValueError, TypeError) as err:
        raise WireError(f"message is not valid msgpack: {type(err).__name__}: {err}") from None
