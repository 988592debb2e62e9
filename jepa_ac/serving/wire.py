"""msgpack with numpy arrays: the byte format of the planning server and client (never pickle).

An array travels as the map `{"__ndarray__": raw bytes, "dtype": "<f4", "shape": [H, W, 3]}`;
numpy scalars become Python numbers. Decoding checks the dtype (numeric or bool only: object,
structured and string dtypes are refused), the shape and the byte count, so a malformed or hostile
message raises `WireError` instead of producing garbage. openpi-client's msgpack-numpy arrays
(`{b"__ndarray__": True, b"data", b"dtype", b"shape"}`) and scalars are read the same way.

Before anything is built, `unpackb` walks the message's msgpack headers and refuses it if it
breaks a `DecodeLimits` bound (bytes, objects, nesting depth, string length) or declares more
bytes or entries than follow. The walk stops at the first breach, so its cost is bounded by
`max_objects` whatever the message holds, and the decoded message holds at most `max_objects`
Python objects plus its arrays' bytes.

    data = packb({"type": "infer", "image": frame, "state": state})
    message = unpackb(data)   # arrays come back as writable numpy arrays
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

# The planning protocol's version: the server sends it on connect and the client refuses a mismatch.
# Bump it when a message changes meaning.
PROTOCOL_VERSION = 2  # 2: goal sequences, tasks and seeds on reset, observe, controller state in replies

ARRAY_KEY = "__ndarray__"
OPENPI_ARRAY_KEYS = frozenset({b"__ndarray__", b"data", b"dtype", b"shape"})
OPENPI_SCALAR_KEYS = frozenset({b"__npgeneric__", b"data", b"dtype"})
# numpy kinds that may travel: bool, signed/unsigned int, float, complex
ALLOWED_KINDS = frozenset("biufc")
MAX_NDIM = 8


class WireError(ValueError):
    """A message that is not valid msgpack, or holds an array that cannot be decoded safely."""


@dataclass(frozen=True)
class DecodeLimits:
    """What one message may hold. The defaults suit replies (metadata); the server is stricter."""

    max_bytes: int = 64 * 2**20
    max_objects: int = 65536  # maps, arrays, strings, bins and scalars, each counted once
    max_depth: int = 32  # nesting of maps and arrays (the message itself is depth 1)
    max_str_bytes: int = 2**20

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_objects", "max_depth", "max_str_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DecodeLimits.{name} must be an int >= 1, got {value!r}")


DEFAULT_LIMITS = DecodeLimits()


def check_dtype(dtype: Any) -> np.dtype:
    """The numpy dtype named by `dtype`, if it is a plain numeric/bool dtype; `WireError` otherwise."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError) as err:
        raise WireError(f"unknown array dtype {dtype!r:.40}: {err}") from None
    if dt.kind not in ALLOWED_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise WireError(f"array dtype {dt.str!r} is not allowed on the wire; use bool, int, uint, float or complex")
    return dt


# -- the header walk ---------------------------------------------------------------------------------
# msgpack type bytes with a payload of fixed size (nil, bools, floats, ints)
_FIXED_SIZE = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
               0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
# type bytes followed by a big-endian length (bytes for str/bin, entries for array/map) of n bytes
_SIZED = {0xC4: ("bin", 1), 0xC5: ("bin", 2), 0xC6: ("bin", 4), 0xD9: ("str", 1), 0xDA: ("str", 2),
          0xDB: ("str", 4), 0xDC: ("array", 2), 0xDD: ("array", 4), 0xDE: ("map", 2), 0xDF: ("map", 4)}
_EXT = frozenset({0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8})


def _header(data: bytes, pos: int) -> tuple[str, int, int]:
    """The object starting at `pos`: (kind, size, position after its header). `size` is the payload's
    byte count for scalars/str/bin and the entry count for array/map."""
    b = data[pos]
    pos += 1
    if b <= 0x7F or b >= 0xE0:  # positive / negative fixint
        return "scalar", 0, pos
    if b <= 0x8F:
        return "map", b & 0x0F, pos
    if b <= 0x9F:
        return "array", b & 0x0F, pos
    if b <= 0xBF:
        return "str", b & 0x1F, pos
    if b in _FIXED_SIZE:
        return "scalar", _FIXED_SIZE[b], pos
    if b in _SIZED:
        kind, width = _SIZED[b]
        if pos + width > len(data):
            raise WireError(f"message ends inside a {kind} header at byte {pos}")
        return kind, int.from_bytes(data[pos:pos + width], "big"), pos + width
    if b in _EXT:
        raise WireError(f"msgpack extension types are not used on this wire (type byte 0x{b:02x} at byte {pos - 1})")
    raise WireError(f"invalid msgpack type byte 0x{b:02x} at byte {pos - 1}")


def _a(kind: str) -> str:
    return ("an " if kind == "array" else "a ") + kind


def check_limits(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> None:
    """Walk the msgpack headers of `data` without building anything; `WireError` at the first
    breach of `limits`, truncation or trailing bytes."""
    n = len(data)
    if n > limits.max_bytes:
        raise WireError(f"message of {n} bytes exceeds the limit of {limits.max_bytes}")
    # entries still to read in each open array/map; the message itself is one entry of a virtual root
    pending = [1]
    objects = pos = 0
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        pending[-1] -= 1
        if pos >= n:
            raise WireError(f"message ends after {n} bytes in the middle of an object")
        objects += 1
        if objects > limits.max_objects:
            raise WireError(f"message holds more than {limits.max_objects} objects (maps, arrays, strings, numbers)")
        start = pos
        kind, size, pos = _header(data, pos)
        if kind in ("array", "map"):
            entries = 2 * size if kind == "map" else size
            # every entry takes at least one byte and counts as an object: refuse before reading them
            if entries > n - pos:
                raise WireError(f"{_a(kind)} at byte {start} declares {size} entries but only {n - pos} bytes follow")
            if objects + entries > limits.max_objects:
                raise WireError(f"{_a(kind)} at byte {start} declares {size} entries; a message may hold at most "
                                f"{limits.max_objects} objects")
            if len(pending) > limits.max_depth:
                raise WireError(f"message nests maps/arrays deeper than {limits.max_depth} levels")
            pending.append(entries)
        else:
            if size > n - pos:
                raise WireError(f"{_a(kind)} at byte {start} declares {size} bytes but only {n - pos} follow")
            if kind == "str" and size > limits.max_str_bytes:
                raise WireError(f"a string of {size} bytes exceeds the limit of {limits.max_str_bytes}")
            pos += size
    if pos != n:
        raise WireError(f"{n - pos} bytes of extra data after the message")


# -- arrays --------------------------------------------------------------------------------------------
def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        dt = check_dtype(obj.dtype)
        return {ARRAY_KEY: np.ascontiguousarray(obj).tobytes(), "dtype": dt.str, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        check_dtype(obj.dtype)
        return obj.item()
    raise TypeError(f"cannot send {type(obj).__name__} over the wire; use dicts, lists, str, numbers or numpy arrays")


def _array(data: Any, dtype: Any, shape: Any) -> np.ndarray:
    if not isinstance(data, bytes) or not isinstance(dtype, str):
        raise WireError("an array map needs its raw bytes as bin and its dtype as a string")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise WireError(f"array shape must be a list of at most {MAX_NDIM} non-negative ints, got {shape!r:.100}")
    dt = check_dtype(dtype)
    # exact (Python int) product: an int64 product of huge sides could wrap around to the byte count
    count = math.prod(shape)
    if count * dt.itemsize != len(data):
        raise WireError(f"array of dtype {dt.str} and shape {shape} needs {count * dt.itemsize} bytes, got {len(data)}")
    # frombuffer gives a read-only view of the message; copy so callers may write into the array
    return np.frombuffer(data, dtype=dt, count=count).reshape(shape).copy()


def _decode(obj: dict) -> Any:
    if ARRAY_KEY in obj:
        if set(obj) != {ARRAY_KEY, "dtype", "shape"}:
            raise WireError(f"an array map must have exactly the keys {ARRAY_KEY!r}, 'dtype', 'shape'; "
                            f"got {sorted(map(repr, obj))}")
        return _array(obj[ARRAY_KEY], obj["dtype"], obj["shape"])
    if b"__ndarray__" in obj:  # openpi-client's msgpack_numpy
        if set(obj) != OPENPI_ARRAY_KEYS or obj[b"__ndarray__"] is not True:
            raise WireError(f"an openpi array map must have exactly the keys {sorted(OPENPI_ARRAY_KEYS)} with "
                            f"__ndarray__ true; got {sorted(map(repr, obj))}")
        return _array(obj[b"data"], obj[b"dtype"], obj[b"shape"])
    if b"__npgeneric__" in obj:  # openpi-client's numpy scalar: a Python number, as ours
        value = obj.get(b"data")
        if set(obj) != OPENPI_SCALAR_KEYS or isinstance(value, (str, bytes, list, dict)) or value is None:
            raise WireError(f"an openpi scalar map must have exactly the keys {sorted(OPENPI_SCALAR_KEYS)} with a "
                            f"number under data; got {sorted(map(repr, obj))}")
        check_dtype(obj[b"dtype"])
        return value
    return obj


def packb(obj: Any) -> bytes:
    """Serialise dicts/lists/str/numbers/bytes/None and numpy arrays to msgpack bytes."""
    return msgpack.packb(obj, default=_encode, use_bin_type=True)


def unpackb(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """Parse msgpack bytes produced by `packb` (or openpi-client); `WireError` for anything malformed
    or over `limits`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"expected a binary msgpack message, got {type(data).__name__}")
    data = bytes(data)
    check_limits(data, limits)
    try:
        # msgpack's own limits repeat the walk's, in case the two ever disagree on a header
        return msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=True,
                               max_str_len=limits.max_str_bytes, max_bin_len=limits.max_bytes,
                               max_array_len=limits.max_objects, max_map_len=limits.max_objects, max_ext_len=0)
    except WireError:
        raise
    except (msgpack.UnpackException, ValueError, TypeError) as err:
        raise WireError(f"message is not valid msgpack: {type(err).__name__}: {err}") from None
