"""Planning-step latency: the fast planner against the literal upstream reference, same run.

    python -m jepa_ac.bench latency --sizes tiny,mid --samples 800 --iterations 10 --horizon 1 \
        --backends torch,torch_compiled --reference --repeats 3 --out experiments/latency
    python -m jepa_ac.bench latency --sizes mid --horizon 3 --reference --out experiments/latency/h3
    python -m jepa_ac.bench latency --sizes tiny --dtype float32,bfloat16 --out /tmp/latency   # both dtypes, one run
    python -m jepa_ac.bench latency --quick --out /tmp/latency      # tiny, few samples (tests)

One planning step = encode the current frame + the whole CEM (samples x iterations, horizon H).
Paths: `reference` (`jepa_ac.planning.reference`: upstream's algorithm step by step, per-sample
scipy pose math, full predictor re-run, no cache), `torch` (the package's planner: cached
rollout, vectorised pose, inference mode), `torch_compiled` (the same with `torch.compile`),
`mlx` (the MLX backend). All paths get identical noise; each is checked against the reference
(same elite sets every iteration, chosen action). Repeats are interleaved (reference, torch, ...
per round) so machine load hits every path alike; the ratio is of medians. Also: peak memory
(CPU: resident set growth during the step; CUDA: allocator peak), encoder frames/s, and the
predictor's useful GFLOP/s in the fast path (MFU with --peak-tflops).

Precision: `--dtype` (comma-separated) runs every fast path in each dtype, interleaved with the rest;
`auto` is what planning picks on this host for that backend (`jepa_ac.world_model.precision`). The
reference always runs in float32 (upstream's literal path). Every row records its dtype and the
host's ISA (the best of amx_bf16 / avx512_bf16 / avx512f / avx2 it has, and the vector ISA torch's
kernels run at, e.g. `avx512_bf16/AVX512`; on CUDA the GPU's compute capability); the machine
record holds all the flags.

Sizes: `tiny` (the upstream golden fixture: 64 px, 192/2 encoder, 96/2 predictor), `mid` (random
weights: a ViT-S-like 384-wide, 12-deep encoder and a 256-wide, 6-deep predictor at 64 px, so 16
patches per frame, chosen so a reference step takes seconds on 2 cores) and `giant` (the released
ViT-g encoder and AC-giant predictor shapes with random weights; by default only on CUDA), and
`default` (the shipped jepa_ac/assets/default_model's front view: 64 px, patch 8, so 64 patches per frame).
Writes `latency.json`, `latency.md` and `latency.png` under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jepa_ac.bench.parity import TINY_PT
from jepa_ac.files import atomic_path, write_atomic, write_json_atomic
from jepa_ac.world_model.precision import PRECISIONS, choose_planning_dtype, host_isa
from jepa_ac.model.config import ENCODER_PRESETS, PREDICTOR_PRESETS, EncoderConfig, PredictorConfig

SIZES = ("tiny", "mid", "giant", "default")
PATHS = ("torch", "torch_compiled", "mlx")
MID = (
    EncoderConfig(img_size=64, patch_size=16, num_frames=16, embed_dim=384, depth=12, num_heads=6),
    PredictorConfig(img_size=64, patch_size=16, num_frames=16, predictor_embed_dim=256, depth=6, num_heads=4),
)
STATE = np.array([0.45, -0.05, 0.30, 3.0, 0.15, -0.4, 0.2], np.float32)


def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu,
            "load_average": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "isa": host_isa(), "date": time.strftime("%Y-%m-%dT%H:%M:%S")}


# -- models and inputs -----------------------------------------------------------------------


def build_model(size: str, device: str, dtype: str, seed: int):
    """The torch world model of a size (tiny: the fixture weights; default: the shipped model; others random)."""
    import torch

    import jepa_ac
    from jepa_ac.world_model.backends.torch_backend import TorchBackend
    from jepa_ac.world_model import WorldModel

    if size == "default":
        from jepa_ac.cli.args import DEFAULT_CHECKPOINT

        # one world model, as every other size here: the shipped folder's front view (its side view doubles the work)
        return jepa_ac.load_world_model(DEFAULT_CHECKPOINT, device=device, dtype=dtype, load_views=False)
    if size == "tiny":
        arch = json.loads(TINY_PT.with_suffix(".json").read_text())
        return jepa_ac.load_world_model(TINY_PT, encoder=arch["encoder"], predictor=arch["predictor"],
                                        device=device, dtype=dtype)
    enc, pred = MID if size == "mid" else (ENCODER_PRESETS["vit_giant"], PREDICTOR_PRESETS["vit_ac_giant"])
    torch.manual_seed(seed)
    pred = pred.with_encoder(enc)
    return WorldModel(TorchBackend(enc, pred, device=device, dtype=dtype), enc, pred, provenance={"source": f"random {size}"})


def scene(wm, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A current frame and a goal frame (smooth random images at the model's size), uint8 [S, S, 3]."""
    rng = np.random.default_rng(seed)
    s = wm.image_size
    grid = np.linspace(0, 1, s, dtype=np.float32)
    frames = []
    for _ in range(2):
        fx, fy, phase = rng.uniform(1, 4, 3), rng.uniform(1, 4, 3), rng.uniform(0, 6, 3)
        img = 0.5 + 0.5 * np.sin(fx * grid[:, None, None] * 6 + fy * grid[None, :, None] * 6 + phase)  # [s, s, 3]
        frames.append((255 * img).astype(np.uint8))
    return frames[0], frames[1]


def predictor_gflop(config: PredictorConfig, samples: int, horizon: int, iterations: int) -> float:
    """Useful predictor GFLOP of one planning step with a key/value cache (matmuls only)."""
    w, tokens = config.predictor_embed_dim, config.cond_tokens + config.tokens_per_frame
    hidden = int(w * config.mlp_ratio)
    mlp = 3 * w * hidden if config.use_silu else 2 * w * hidden
    per_token = 2 * (4 * w * w + mlp)  # qkv + proj + MLP, per layer
    total = 0.0
    for h in range(horizon):
        keys = (h + 1) * tokens
        layer = tokens * per_token + 4 * tokens * keys * w  # + scores and weighted sum
        total += config.depth * layer + 2 * config.tokens_per_frame * (2 * config.embed_dim * w)  # embed + proj
    return total * samples * iterations / 1e9


# -- measuring -------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory growth (MB) while the block runs: CUDA allocator peak, or resident set on CPU."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_mb = float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._base = self._peak = _rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
            self.peak_mb = (torch.cuda.max_memory_allocated() - self._base) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = (max(self._peak, _rss_bytes()) - self._base) / 2**20


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def encoder_fps(wm, frame: np.ndarray, device: str, batch: int = 8, repeats: int = 3) -> float:
    frames = np.repeat(frame[None], batch, axis=0)  # [B, H, W, 3]
    wm.ops.to_numpy(wm.encode_frames(frames))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        wm.ops.to_numpy(wm.encode_frames(frames))
        _sync(device)
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


def variants(paths: tuple[str, ...], dtypes: tuple[str, ...], device: str, reference: bool) -> list[tuple[str, str]]:
    """The (path, dtype) pairs to time, reference first: each path in each dtype, "auto" resolved for
    the path's backend on `device`, duplicates dropped."""
    out = [("reference", "float32")] if reference else []
    for path in paths:
        backend = "mlx" if path == "mlx" else "torch"
        for dtype in dtypes:
            pair = (path, choose_planning_dtype(device if backend == "torch" else None, dtype, backend))
            if pair not in out:
                out.append(pair)
    return out


def bench_case(size: str, horizon: int, args: argparse.Namespace, order: list[tuple[str, str]], log: Callable) -> dict:
    """All (path, dtype) variants of one (size, horizon): interleaved repeats, equality checks, memory."""
    from jepa_ac.planning.action_spec import ActionSpec
    from jepa_ac.planning.cem import CEMConfig, sample_noise
    from jepa_ac.planning.reference import fast_plan, reference_plan, same_elites

    torch_dtypes = dict.fromkeys(d for p, d in order if p != "mlx")
    models = {dtype: build_model(size, args.device, dtype, args.seed) for dtype in torch_dtypes or ("float32",)}
    wm = next(iter(models.values()))
    frame, goal_frame = scene(wm, args.seed)
    config = CEMConfig(samples=args.samples, iterations=args.iterations, topk=min(args.topk, args.samples),
                       horizon=horizon, seed=args.seed)
    noise = sample_noise(config, ActionSpec(), np.random.default_rng(args.seed))
    twins: dict[str, Any] = {}
    for path, dtype in order:
        if path == "mlx":
            from jepa_ac.bench.parity import mlx_twin

            twins[dtype] = mlx_twin(models.get("float32", wm), dtype)
    goals = {key: m.encode(goal_frame) for key, m in [*models.items(), *(("mlx " + d, t) for d, t in twins.items())]}

    def run(path: str, dtype: str):
        if path == "reference":
            return reference_plan(models[dtype], frame, STATE, goals[dtype], config, noise)
        if path == "mlx":
            return fast_plan(twins[dtype], frame, STATE, goals["mlx " + dtype], config, noise)
        models[dtype].backend.set_compile(path == "torch_compiled")
        return fast_plan(models[dtype], frame, STATE, goals[dtype], config, noise)

    if args.device.startswith("cuda"):
        import torch

        isa = "cuda sm{}{}".format(*torch.cuda.get_device_capability(args.device))
    else:
        isa = host_isa()["row"]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for path, dtype in order:  # warm-up (and compilation) outside the timed rounds
        log(f"  {size} H={horizon} {path} {dtype}: warm-up")
        start = time.perf_counter()
        with PeakMemory(args.device) as mem:
            result = run(path, dtype)
            _sync(args.device)
        rows[path, dtype] = {"path": path, "dtype": dtype, "isa": isa, "warmup_s": time.perf_counter() - start,
                             "peak_mb": mem.peak_mb, "times_s": [], "result": result}
    for r in range(args.repeats):
        for key in order:
            start = time.perf_counter()
            run(*key)
            _sync(args.device)
            rows[key]["times_s"].append(time.perf_counter() - start)
            log(f"  {size} H={horizon} {key[0]} {key[1]}: round {r + 1}/{args.repeats} "
                f"{rows[key]['times_s'][-1]:.2f} s (load {os.getloadavg()[0]:.1f})")

    gflop = predictor_gflop(wm.predictor_config, config.samples, horizon, config.iterations)
    base = order[0]  # the reference with --reference, else the first fast variant
    base_result, base_times = rows[base]["result"], np.array(rows[base]["times_s"])
    out_rows = []
    for key in order:
        row = rows[key]
        result = row.pop("result")
        median = float(np.median(row["times_s"]))
        row.update(
            size=size, horizon=horizon, samples=config.samples, iterations=config.iterations,
            median_s=median, min_s=float(np.min(row["times_s"])),
            ratio=float(np.median(base_times)) / median,
            paired_ratio=float(np.median(base_times / np.array(row["times_s"]))),
            same_elites=bool(same_elites(base_result.elite_actions, result.elite_actions)),
            action_max_abs_diff=float(np.abs(result.actions - base_result.actions).max()),
            action=[float(a) for a in result.actions[0]],
            predictor_gflop=gflop, gflops=gflop / median,
            mfu=(gflop / median / (1e3 * args.peak_tflops)) if args.peak_tflops else None,
        )
        out_rows.append(row)
    return {"size": size, "horizon": horizon, "compared_with": f"{base[0]} ({base[1]})", "rows": out_rows,
            "encoder_frames_per_s": {dtype: encoder_fps(m, frame, args.device) for dtype, m in models.items()},
            "parameters": {part: int(sum(np.prod(s) for s in wm.backend.parameter_shapes(part).values()))
                           for part in wm.parts}}


# -- reporting -------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Planning-step latency: fast planner vs the literal upstream reference", "",
        f"Machine: {m['cpu']} ({m['cpu_count']} cores, ISA {m['isa']['label']}: {', '.join(m['isa']['cpu_flags'])}; "
        f"torch kernels {m['isa']['torch_cpu_capability']}), {m['platform']}; torch {m['torch']} on {report['device']} "
        f"({m['torch_threads']} threads), --dtype {report['dtype']}; load average at start {m['load_average']}, "
        f"at end {m.get('load_average_end')} (the machine is shared with other jobs). {m['date']}.", "",
        "Command: `" + report["command"] + "`", "",
        "One planning step = encode the current frame + full CEM. Median of interleaved repeats; `ratio` = "
        f"median of the first row of each case ({report['cases'][0]['compared_with'] if report['cases'] else ''}) / "
        "this row's median (`paired` = median of per-round ratios). `same elites`: every CEM iteration picked "
        "the same set of samples as that first row (identical noise); `max |Δa|`: chosen actions vs it.", "",
        "| size | H | samples x iters | path | dtype | ISA | median s | min s | ratio | paired | same elites | "
        "max abs Δa | peak MB | warm-up s | pred. GFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in report["cases"]:
        for r in case["rows"]:
            lines.append(
                f"| {r['size']} | {r['horizon']} | {r['samples']} x {r['iterations']} | {r['path']} | {r['dtype']} | "
                f"{r['isa']} | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['ratio']:.2f}x | {r['paired_ratio']:.2f}x | "
                f"{r['same_elites']} | {r['action_max_abs_diff']:.1e} | {r['peak_mb']:.0f} | {r['warmup_s']:.1f} | "
                f"{r['gflops']:.1f} |")
    lines += ["", "| size | encoder frames/s (batch 8), per dtype | parameters |", "|---|---|---|"]
    seen = set()
    for case in report["cases"]:
        if case["size"] not in seen:
            seen.add(case["size"])
            fps = ", ".join(f"{dtype} {value:.1f}" for dtype, value in case["encoder_frames_per_s"].items())
            lines.append(f"| {case['size']} | {fps} | {case['parameters']} |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(c["size"], c["horizon"]) for c in report["cases"]]
    label = lambda r: f"{r['path']} {r['dtype']}"  # noqa: E731
    series = list(dict.fromkeys(label(r) for c in report["cases"] for r in c["rows"]))
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(groups)), 4))
    width = 0.8 / len(series)
    for i, name in enumerate(series):
        rows = [next((r for r in c["rows"] if label(r) == name), None) for c in report["cases"]]
        values = [np.nan if r is None else r["median_s"] for r in rows]
        bars = ax.bar(np.arange(len(groups)) + i * width, values, width, label=name)
        for bar, row, c in zip(bars, rows, report["cases"]):
            if row is not None and row is not c["rows"][0]:
                ax.annotate(f"{row['ratio']:.1f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{s}\nH={h}" for s, h in groups])
    ax.set_yscale("log")
    ax.set_ylabel("planning step, median s (log)")
    c0 = report["cases"][0]["rows"][0]
    ax.set_title(f"{c0['samples']} samples x {c0['iterations']} iterations, {report['device']} ({c0['isa']}); "
                 f"ratios vs {report['cases'][0]['compared_with']}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.bench latency", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", help=f"comma-separated from {SIZES} (default: tiny,mid; plus giant on CUDA)")
    parser.add_argument("--samples", type=int, default=800)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--horizon", default="1", help="horizon, or a comma-separated list (default: %(default)s)")
    parser.add_argument("--backends", default="torch,torch_compiled", help=f"comma-separated from {PATHS}")
    parser.add_argument("--reference", action="store_true", help="also run the literal reference path (ratios)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: the CLIs' default_threads)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default="auto",
                        help=f"the fast paths' dtype, or a comma-separated list, from {PRECISIONS} (default: "
                             "%(default)s, what planning picks on this host; the reference runs in float32)")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak TFLOP/s for MFU (e.g. 989 for H100 bf16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny, 32 samples x 2 iterations, 1 round (tests)")
    parser.add_argument("--out", default="runs/bench/latency", help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)

    import torch

    from jepa_ac.cli.args import set_threads

    set_threads(args.threads)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.quick:
        args.sizes, args.samples, args.iterations, args.topk, args.repeats = "tiny", 32, 2, 4, 1
    sizes = tuple((args.sizes or ("tiny,mid,giant" if args.device.startswith("cuda") else "tiny,mid")).split(","))
    paths = tuple(p for p in args.backends.split(",") if p)
    horizons = tuple(int(h) for h in args.horizon.split(","))
    dtypes = tuple(d for d in args.dtype.split(",") if d)
    bad = [s for s in sizes if s not in SIZES] + [p for p in paths if p not in PATHS] + [
        d for d in dtypes if d not in PRECISIONS]
    if bad or not paths or not dtypes or args.repeats < 1 or args.samples < 2 or min(horizons) < 1:
        parser.error(f"bad --sizes/--backends/--dtype/--repeats/--samples/--horizon ({bad}); sizes {SIZES}, "
                     f"backends {PATHS}, dtypes {PRECISIONS}")
    if "tiny" in sizes and not TINY_PT.exists():
        parser.error(f"size 'tiny' needs the fixture {TINY_PT} (run from a source checkout)")
    if "mlx" in paths:
        try:
            import mlx.core  # noqa: F401
        except ImportError as err:
            parser.error(f"backend mlx needs MLX: {err}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": "python -m jepa_ac.bench latency " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine_info(), "device": args.device, "dtype": args.dtype, "cases": []}
    order = variants(paths, dtypes, args.device, args.reference)
    for size in sizes:
        for horizon in horizons:
            report["cases"].append(bench_case(size, horizon, args, order, log))
            write_json_atomic(out / "latency.json", report)  # keep partial results
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write_json_atomic(out / "latency.json", report)
    write_atomic(out / "latency.md", markdown(report))
    plot(report, out / "latency.png")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
