"""Is bf16 worth it on this CPU, and does it keep the planner's ranking? (issue 30; README.md here)

    OMP_NUM_THREADS=1 python experiments/latency/probe_precision.py --out experiments/latency/precision_probe.json
    # the same CPU as an AVX2-only host (torch, oneDNN and MKL capped at AVX2):
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        python experiments/latency/probe_precision.py --gemm-only --out /tmp/avx2.json

`gemm`: median time of matmuls of the planning shapes (4096 tokens, the CPU rollout's chunk, by the
widths of the shipped default, tiny and mid predictors) in float32, bfloat16 and float16.
`ranking`: 400 random candidate actions (the first CEM iteration's samples) scored by the same
weights in float32 and bfloat16: the largest energy difference, the spread of the float32 energies,
Spearman's rank correlation and how many of the float32 top-10 bf16 keeps.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

SHAPES = [(4096, 256, 1024), (4096, 96, 288), (4096, 96, 384), (4096, 384, 96), (4096, 192, 96),
          (4096, 256, 768), (4096, 1024, 256), (4096, 384, 1536)]


def median_time(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def gemm() -> list[dict]:
    rows = []
    with torch.inference_mode():
        for m, k, n in SHAPES:
            t = {}
            for name in ("float32", "bfloat16", "float16"):
                dtype = getattr(torch, name)
                a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
                t[name] = median_time(lambda: a @ b)
            rows.append({"shape": [m, k, n], "s": t, "fp32_gflops": 2 * m * k * n / t["float32"] / 1e9,
                         "bf16_speedup": t["float32"] / t["bfloat16"], "fp16_speedup": t["float32"] / t["float16"]})
            print(f"{m}x{k}x{n}: fp32 {1e3 * t['float32']:.2f} ms, bf16 {rows[-1]['bf16_speedup']:.2f}x, "
                  f"fp16 {rows[-1]['fp16_speedup']:.2f}x", flush=True)
    return rows


def ranking(size: str, samples: int = 400) -> dict:
    from scipy.stats import spearmanr

    from jepa_ac.bench.latency import STATE, build_model, scene
    from jepa_ac.model.array_ops import NUMPY_OPS
    from jepa_ac.planning import ActionSpec, CEMConfig, sample_noise

    spec = ActionSpec()
    noise = sample_noise(CEMConfig(samples=samples, iterations=1, topk=10), spec, np.random.default_rng(0))[0]
    std = np.broadcast_to(spec.initial_std(1.0), noise.shape[1:])
    actions = spec.expand(spec.constrain(noise * std, NUMPY_OPS, None), NUMPY_OPS).astype(np.float32)  # [S, 1, 7]
    costs = {}
    for dtype in ("float32", "bfloat16"):
        wm = build_model(size, "cpu", dtype, 0)
        frame, goal = scene(wm, 0)
        z, z_goal = wm.encode(frame), wm.encode(goal)
        costs[dtype] = wm.ops.to_numpy(wm.rollout_energy(z, wm.ops.asarray(STATE[None]), wm.ops.asarray(actions), z_goal))
    c32, c16 = costs["float32"], costs["bfloat16"]
    row = {"size": size, "samples": samples, "fp32_energy_std": float(c32.std()),
           "max_abs_energy_diff": float(np.abs(c16 - c32).max()), "spearman": float(spearmanr(c32, c16)[0]),
           "top10_kept": len(set(np.argsort(c32)[:10]) & set(np.argsort(c16)[:10]))}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gemm-only", action="store_true")
    parser.add_argument("--sizes", default="default,tiny,mid")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from jepa_ac.bench.latency import machine_info

    result = {"machine": machine_info(), "gemm": gemm()}
    if not args.gemm_only:
        result["ranking"] = [ranking(size) for size in args.sizes.split(",")]
    with open(args.out, "w") as f:
        f.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
