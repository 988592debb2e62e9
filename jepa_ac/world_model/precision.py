"""The dtype the networks plan in: chosen from the host's ISA and the device, with an override.

    dtype = choose_planning_dtype("cpu", "auto")            # "bfloat16" on a CPU with bf16 dot products
    wm = load_world_model(path, device="cpu", dtype=dtype)
    host_isa()   # {"label": "avx512_bf16", "cpu_flags": [...], "torch_cpu_capability": "AVX512"}

Only the encoder and predictor run in the chosen dtype. Their outputs are cast to float32 before
the layer norm and the L1 energy (`TorchBackend.encode/predict/rollout`, `MLXBackend.*`), and CEM's
samples, statistics and elites stay float32 (`TorchOps` / `MLXOps` work in float32), so a lower
precision only perturbs the energies, never the search.

What `"auto"` picks, and the measurements behind it (experiments/latency/README.md):

- torch on a CPU with native bf16 dot products (`amx_bf16` or `avx512_bf16` in /proc/cpuinfo, and
  torch's kernels at AVX512): bfloat16. On the AMD EPYC build host (avx512_bf16, no AMX, torch
  2.13, 1 thread) bf16 ran the planning step 1.3-1.95x faster than fp32: the shipped model 1.43x
  at 128 x 4 and 1.30x at 64 x 3 with horizon 3, the bench's tiny 1.55x and mid 1.95x at 800 x 10;
  GEMMs of the planning shapes 2.4-3.8x. An AMX host measured about 6x on a 4096x256x1024 matmul
  (issue 30). The trained default model's energies keep their order (Spearman 0.9997 over 400
  candidates, the same top 10); random-weight models, whose energies differ by less than bf16's
  error, do not.
- torch on any other CPU (AVX2 only, ARM, ...): float32. The same EPYC capped at AVX2
  (`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`) ran bf16 GEMMs
  16-53x and the shipped model's planning step 5.9x slower than fp32; float16 GEMMs were 14-50x
  slower even with avx512_bf16.
- torch on CUDA: bfloat16 where the GPU supports it (`torch.cuda.is_bf16_supported()`: compute
  capability 8.0 and up, whose tensor cores run bf16 matmuls many times faster than fp32: H100 989
  against 67 TFLOP/s dense on the spec sheet), else float32. Not measured in this repository yet.
- torch on another device (e.g. `mps`) and MLX: float32. MLX's Linux CPU build ran the default
  model's step 3.3x slower in bf16 and 5.7x slower in float16; Apple GPUs are not measured here
  (pass `--dtype float16` / `bfloat16` to try).

A requested dtype other than "auto" is used as given.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

DTYPES = ("float32", "bfloat16", "float16")
PRECISIONS = ("auto", *DTYPES)
ISA_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")  # best first; what `host_isa` reports
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo's first `flags` line (Linux; empty elsewhere)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def torch_cpu_capability() -> str | None:
    """The vector ISA torch's CPU kernels use ("AVX512", "AVX2", ...), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    return torch.backends.cpu.get_cpu_capability()


def host_isa(flags: frozenset[str] | None = None) -> dict[str, Any]:
    """What a benchmark records about the CPU: its best planning-relevant flag (`label`), the flags of
    `ISA_FLAGS` it has, torch's kernel capability, and `row`: the two in one short string for each
    row of a table ("avx512_bf16/AVX512"; "avx512_bf16/AVX2" when torch's kernels are capped)."""
    flags = cpu_flags() if flags is None else flags
    present = [f for f in ISA_FLAGS if f in flags]
    label, capability = (present[0] if present else platform.machine()), torch_cpu_capability()
    return {"label": label, "cpu_flags": present, "torch_cpu_capability": capability,
            "row": label if capability is None else f"{label}/{capability}"}


def cpu_has_fast_bf16(flags: frozenset[str], capability: str | None) -> bool:
    """Native bf16 dot products (AMX or AVX512-BF16) that torch's kernels are allowed to use."""
    native = any(f in flags for f in CPU_BF16_FLAGS)
    return native and capability is not None and capability.upper().startswith("AVX512")


def choose_planning_dtype(
    device: Any = None,
    requested: str = "auto",
    backend: str = "torch",
    flags: frozenset[str] | None = None,
    capability: str | None = None,
) -> str:
    """The dtype name to load the networks in for planning (see the module docstring for the rule).

    `device`: the backend's device (torch: None = cuda if available, else cpu; MLX: ignored);
    `flags` / `capability`: the CPU's flags and torch's kernel ISA (None: this host's).
    """
    if _checked(requested) != "auto":
        return requested
    if backend != "torch":
        return "float32"
    import torch

    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return _cpu_auto(flags, capability) if kind == "cpu" else "float32"


def choose_training_dtype(device: Any, requested: str = "auto", flags: frozenset[str] | None = None,
                          capability: str | None = None) -> str:
    """The autocast dtype a trainer runs its forward passes in ("float32": no autocast).

    "auto": bfloat16 on CUDA (every GPU autocast supports: the trainers' default since they exist)
    and on CPUs with bf16 dot products (the planning rule); float32 on other CPUs and devices.
    Weights, optimizer state and the losses' reductions stay float32 either way.
    """
    if _checked(requested) != "auto":
        return requested
    import torch

    kind = torch.device(device).type
    if kind == "cuda":
        return "bfloat16"
    return _cpu_auto(flags, capability) if kind == "cpu" else "float32"


def _checked(requested: str) -> str:
    """`requested` if it names a precision, else a ValueError listing them."""
    if requested not in PRECISIONS:
        raise ValueError(f"dtype must be one of {PRECISIONS}, got {requested!r}")
    return requested


def _cpu_auto(flags: frozenset[str] | None, capability: str | None) -> str:
    """What "auto" picks on a CPU with these flags and torch kernel ISA (None: this host's)."""
    flags = cpu_flags() if flags is None else flags
    capability = torch_cpu_capability() if capability is None else capability
    return "bfloat16" if cpu_has_fast_bf16(flags, capability) else "float32"


def dtype_name(dtype: Any) -> str:
    """A backend's dtype (torch.bfloat16, mlx.core.bfloat16, "bfloat16") as its short name."""
    return str(dtype).rsplit(".", 1)[-1]
