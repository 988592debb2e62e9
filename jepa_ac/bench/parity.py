"""Parity and latency of the MLX backend against the torch backend and upstream golden outputs.

    python -m jepa_ac.bench parity --out experiments/parity
    python -m jepa_ac.bench parity --sizes tiny,mid --repeats 3 --dtypes float32,bfloat16
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 \\
        python -m jepa_ac.bench parity --sizes tiny,mid,giant

Model sizes: `tiny` (the upstream-generated fixture with golden outputs), `mid` (a 6-layer
384-wide encoder + 4-layer predictor, random weights) and `giant` (the released ViT-g encoder
and AC predictor architectures with random weights; ~1.3B parameters, needs ~16 GB RAM).
V-JEPA 2.1 encoders (no predictor): `v2_1_tiny` (the 2.1 fixture with golden outputs: image,
video, non-square video, hierarchical and masked outputs) and `v2_1_base` (the released
`vjepa2_1_vit_base_384` architecture with random weights; an image and a 16-frame 384 px video,
~20 minutes on 2 CPU cores; MLX half precision only on the image, it is very slow on CPU).
`--merge` keeps the other sizes' results already in OUT/parity.json.
The same weights go into both backends. Parity: cosine similarity, max and mean absolute error
of MLX (each dtype) against torch fp32 (and against upstream golden data for `tiny`), and one
CEM planning step with identical noise. Latency: median wall time of encode / predictor step /
CEM step on each backend. Writes `parity.json` (all numbers + the machine), `parity.md` and
`latency.png` under `--out`. On Linux, MLX's CPU matmuls are slow unless OpenBLAS is preloaded
(see the LD_PRELOAD line above); the JSON records whether it was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jepa_ac.files import atomic_path, write_atomic, write_json_atomic
from jepa_ac.model.config import ENCODER_PRESETS, PREDICTOR_PRESETS, EncoderConfig, PredictorConfig

REPO = Path(__file__).resolve().parents[2]
TINY_PT = REPO / "tests/fixtures/vjepa2_ac_tiny.pt"
V2_1_TINY_PT = REPO / "tests/fixtures/vjepa2_1_tiny.pt"
V2_1_SIZES = ("v2_1_tiny", "v2_1_base")
SIZES = ("tiny", "mid", "giant", *V2_1_SIZES)
V2_1_VIDEO_FRAMES = 16
MLX_DTYPES = ("float32", "bfloat16", "float16")
MID = (
    EncoderConfig(img_size=128, patch_size=16, num_frames=16, embed_dim=384, depth=6, num_heads=6),
    PredictorConfig(img_size=128, patch_size=16, num_frames=16, predictor_embed_dim=256, depth=4, num_heads=4),
)


# -- measurements ---------------------------------------------------------------------------


def compare(reference: Any, output: Any) -> dict[str, float]:
    """Cosine similarity (whole tensor and worst token), max and mean |error| of output vs reference."""
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(output, dtype=np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"shapes differ: reference {ref.shape} vs output {out.shape}")
    flat_r, flat_o = ref.ravel(), out.ravel()
    cosine = float(flat_r @ flat_o / (np.linalg.norm(flat_r) * np.linalg.norm(flat_o)))
    tok_r, tok_o = ref.reshape(-1, ref.shape[-1]), out.reshape(-1, out.shape[-1])
    token_cos = (tok_r * tok_o).sum(-1) / (np.linalg.norm(tok_r, axis=-1) * np.linalg.norm(tok_o, axis=-1))
    err = np.abs(ref - out)
    return {"cosine": cosine, "min_token_cosine": float(token_cos.min()), "max_abs": float(err.max()),
            "mean_abs": float(err.mean()), "ref_abs_mean": float(np.abs(ref).mean())}


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median / min wall time in ms of `fn()` (which must return host values, so lazy work is done)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times)), "repeats": repeats}


def machine_info() -> dict[str, Any]:
    import mlx.core as mx
    import torch

    cpu = ""
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    return {
        "platform": platform.platform(), "machine": platform.machine(), "cpu": cpu or platform.processor(),
        "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "mlx": mx.__version__, "mlx_default_device": str(mx.default_device()),
        "openblas_loaded": "openblas" in maps, "ld_preload": os.environ.get("LD_PRELOAD", ""),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


# -- building twin models -------------------------------------------------------------------


def torch_model(size: str, seed: int):
    """The torch fp32 world model of a size (CPU)."""
    import torch

    import jepa_ac
    from jepa_ac.world_model.backends.torch_backend import TorchBackend
    from jepa_ac.world_model import WorldModel

    if size == "tiny":
        arch = json.loads(TINY_PT.with_suffix(".json").read_text())
        return jepa_ac.load_world_model(TINY_PT, encoder=arch["encoder"], predictor=arch["predictor"], device="cpu")
    enc, pred = MID if size == "mid" else (ENCODER_PRESETS["vit_giant"], PREDICTOR_PRESETS["vit_ac_giant"])
    pred = pred.with_encoder(enc)
    torch.manual_seed(seed)
    backend = TorchBackend(enc, pred, device="cpu")
    rng = np.random.default_rng(seed)
    for part in backend.modules:  # make LayerNorm gains/biases non-trivial so a wrong mapping shows
        arrays = backend.state_arrays(part)
        for name, value in arrays.items():
            if "norm" in name:
                arrays[name] = value + rng.normal(0, 0.1, value.shape).astype(np.float32)
        backend.load_arrays(part, arrays)
    return WorldModel(backend, enc, pred, provenance={"source": f"random {size}"})


def mlx_twin(torch_wm, dtype: str, compile: bool | None = None, device: str | None = None):
    """An MLX world model holding the same weights as `torch_wm` (compile None: the backend's default)."""
    from jepa_ac.world_model.backends.mlx_backend import MLXBackend
    from jepa_ac.world_model import WorldModel

    backend = MLXBackend(torch_wm.encoder_config, torch_wm.predictor_config, device=device, dtype=dtype, compile=compile)
    for part in torch_wm.parts:
        backend.load_arrays(part, torch_wm.backend.state_arrays(part))
    return WorldModel(backend, torch_wm.encoder_config, torch_wm.predictor_config, provenance=torch_wm.provenance)


def torch_twin(torch_wm, dtype: str):
    """The torch model in another dtype (same weights)."""
    from jepa_ac.world_model.backends.torch_backend import TorchBackend
    from jepa_ac.world_model import WorldModel

    backend = TorchBackend(torch_wm.encoder_config, torch_wm.predictor_config, device="cpu", dtype=dtype)
    for part in torch_wm.parts:
        backend.load_arrays(part, torch_wm.backend.state_arrays(part))
    return WorldModel(backend, torch_wm.encoder_config, torch_wm.predictor_config, provenance=torch_wm.provenance)


def inputs_for(size: str, wm, seed: int) -> dict[str, np.ndarray]:
    """Frames, a video clip and predictor inputs; golden fixture inputs for `tiny`."""
    from jepa_ac.model.preprocess import frames_to_clip

    rng = np.random.default_rng(seed)
    if size == "tiny":
        with np.load(TINY_PT.parent / "vjepa2_ac_tiny_io.npz") as data:
            golden = {k: data[k] for k in data.files}
        return {"frames": golden["frames_uint8"], "clip": golden["clip_video"], "z": golden["pred_x"],
                "actions": golden["actions"], "states": golden["states"], "golden": golden}
    S = wm.encoder_config.img_size
    video_frames = 8 if size == "mid" else 2
    frames = rng.integers(0, 256, (3, S, S, 3), dtype=np.uint8)
    clip = frames_to_clip(rng.integers(0, 256, (video_frames, S, S, 3), dtype=np.uint8), S)
    T = 3 if size == "mid" else 2
    z = wm.ops.to_numpy(wm.encode(frames[:T])).reshape(1, -1, wm.encoder_config.embed_dim)  # [1, T*N, D]
    states = np.concatenate([rng.uniform(-0.5, 0.5, (1, T, 6)), rng.uniform(0, 1, (1, T, 1))], -1).astype(np.float32)
    actions = np.concatenate([rng.uniform(-0.05, 0.05, (1, T, 3)), np.zeros((1, T, 3)), rng.uniform(-0.5, 0.5, (1, T, 1))],
                             -1).astype(np.float32)
    return {"frames": frames, "clip": clip, "z": z, "actions": actions, "states": states}


def run_outputs(wm, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """encoder on images (layer-normed), encoder on a video clip (raw), predictor (raw)."""
    ops = wm.ops
    return {
        "encoder_image": ops.to_numpy(wm.encode(data["frames"])),
        "encoder_video": ops.to_numpy(wm.backend.encode(data["clip"])),
        "predictor": ops.to_numpy(wm.predict(data["z"], data["actions"], data["states"])),
    }


def cem_step(wm, data: dict[str, np.ndarray], config, noise: np.ndarray, seen: list | None = None):
    """One CEM planning step from frame 0 with the given noise, towards the latent the model
    predicts for a known action (random-weight models give near-tied costs towards an encoded
    image); the costs of every iteration are appended to `seen` (as numpy) if given."""
    from jepa_ac.planning import ActionSpec, cem

    z = wm.encode(data["frames"][0])
    state = wm.ops.asarray(data["states"][0, :1])  # [1, 7]
    plan = np.array([[[0.04, -0.03, 0.02, 0, 0, 0, 0.5]]], np.float32)  # [1, 1, 7]
    z_goal = wm.rollout(z, state, wm.ops.asarray(plan))[:, -1]  # [1, N, D]

    def cost(actions):  # [S, H, 7] -> [S]
        energy = wm.rollout_energy(z, state, actions, z_goal)
        if seen is not None:
            seen.append(wm.ops.to_numpy(energy))
        return energy

    return cem(cost, config, ActionSpec(), noise, wm.ops)


def same_elites(costs_a: list[np.ndarray], costs_b: list[np.ndarray], k: int) -> bool:
    """Whether two CEM runs picked the same top-k sample set every iteration (the update uses the
    set; order within it can swap where costs tie to within float error)."""
    return all(set(np.argsort(a, kind="stable")[:k]) == set(np.argsort(b, kind="stable")[:k])
               for a, b in zip(costs_a, costs_b, strict=True))


# -- the benchmark --------------------------------------------------------------------------


def bench_size(size: str, dtypes: tuple[str, ...], repeats: int, samples: int, seed: int, log,
               mlx_device: str | None = None) -> dict[str, Any]:
    from jepa_ac.planning import ActionSpec, CEMConfig, sample_noise

    start = time.perf_counter()
    ref_wm = torch_model(size, seed)
    data = inputs_for(size, ref_wm, seed)
    enc, pred = ref_wm.encoder_config, ref_wm.predictor_config
    params = {part: int(sum(v.size for v in ref_wm.backend.state_arrays(part).values())) for part in ref_wm.parts}
    log(f"[{size}] torch model ready ({params}) in {time.perf_counter() - start:.1f}s")
    reference = run_outputs(ref_wm, data)
    parity, latency, cem_rows = [], [], []
    if size == "tiny":
        golden = data["golden"]
        upstream = {"encoder_image": golden["pred_x"].reshape(reference["encoder_image"].shape),
                    "encoder_video": golden["enc_video"], "predictor": golden["pred_out"]}
        for what, value in reference.items():
            parity.append({"size": size, "what": what, "backend": "torch", "dtype": "float32", "reference": "upstream",
                           **compare(upstream[what], value)})

    S = min(samples, 16) if size == "giant" else samples
    cem_config = CEMConfig(samples=S, iterations=3 if size != "giant" else 1, topk=min(8, S), horizon=1)
    noise = sample_noise(cem_config, ActionSpec(), np.random.default_rng(seed))
    z1 = ref_wm.encode(data["frames"][:1])  # [1, N, D] on torch
    z_step = np.repeat(ref_wm.ops.to_numpy(z1).reshape(1, -1, enc.embed_dim), S, axis=0)  # [S, N, D]
    a_step = np.repeat(data["actions"][:, :1], S, axis=0)  # [S, 1, 7]
    s_step = np.repeat(data["states"][:, :1], S, axis=0)  # [S, 1, 7]

    def time_model(wm, backend: str, dtype: str, note: str = "") -> None:
        ops = wm.ops
        rows = {
            "encode_image": lambda: ops.to_numpy(wm.encode(data["frames"][:1])),
            f"predict_step_S{S}": lambda: ops.to_numpy(wm.predict(z_step, a_step, s_step)),
        }
        if size != "giant":
            rows[f"cem_S{S}_I{cem_config.iterations}"] = lambda: cem_step(wm, data, cem_config, noise)
        for op, fn in rows.items():
            latency.append({"size": size, "op": op, "backend": backend, "dtype": dtype, "note": note,
                            **median_time(fn, repeats)})
            log(f"[{size}] {backend} {dtype} {note} {op}: {latency[-1]['median_ms']:.1f} ms")

    ref_costs: list[np.ndarray] = []
    ref_cem = cem_step(ref_wm, data, cem_config, noise, ref_costs)
    time_model(ref_wm, "torch", "float32")
    if size != "giant":
        torch_bf16 = torch_twin(ref_wm, "bfloat16")
        for what, value in run_outputs(torch_bf16, data).items():
            parity.append({"size": size, "what": what, "backend": "torch", "dtype": "bfloat16",
                           "reference": "torch float32", **compare(reference[what], value)})
        del torch_bf16
    for dtype in dtypes:
        wm = mlx_twin(ref_wm, dtype, device=mlx_device)
        for what, value in run_outputs(wm, data).items():
            parity.append({"size": size, "what": what, "backend": "mlx", "dtype": dtype, "reference": "torch float32",
                           **compare(reference[what], value)})
            log(f"[{size}] mlx {dtype} {what}: max_abs {parity[-1]['max_abs']:.2e} cosine {parity[-1]['cosine']:.7f}")
            if size == "tiny" and dtype == "float32":
                parity.append({"size": size, "what": what, "backend": "mlx", "dtype": dtype, "reference": "upstream",
                               **compare(upstream[what], value)})
        costs: list[np.ndarray] = []
        result = cem_step(wm, data, cem_config, noise, costs)
        cem_rows.append({
            "same_elites": same_elites(ref_costs, costs, cem_config.topk),
            "size": size, "dtype": dtype, "samples": S, "iterations": cem_config.iterations, "topk": cem_config.topk,
            "actions_max_abs": float(np.abs(result.actions - ref_cem.actions).max()),
            "elite_costs_max_abs": float(np.abs(result.elite_costs - ref_cem.elite_costs).max()),
        })
        time_model(wm, "mlx", dtype, "compiled" if wm.backend.compiled else "eager")
        if dtype == "float32" and size != "giant":
            other = mlx_twin(ref_wm, dtype, compile=not wm.backend.compiled, device=mlx_device)
            time_model(other, "mlx", dtype, "compiled" if other.backend.compiled else "eager")
        del wm
    return {"size": size, "parameters": params, "encoder": enc.to_dict(), "predictor": pred.to_dict(),
            "parity": parity, "cem": cem_rows, "latency": latency, "seconds": time.perf_counter() - start}


# -- V-JEPA 2.1 encoders ----------------------------------------------------------------------


def v2_1_model(size: str, seed: int):
    """The torch fp32 V-JEPA 2.1 encoder-only world model of a size (CPU)."""
    import torch

    import jepa_ac
    from jepa_ac.world_model.backends.torch_backend import TorchBackend
    from jepa_ac.world_model import WorldModel

    if size == "v2_1_tiny":
        args = json.loads(V2_1_TINY_PT.with_suffix(".json").read_text())["constructor"]
        return jepa_ac.load_world_model(V2_1_TINY_PT, encoder=EncoderConfig(**args), predictor=None, device="cpu")
    enc = ENCODER_PRESETS["vjepa2_1_vit_base_384"]
    torch.manual_seed(seed)
    backend = TorchBackend(enc, None, device="cpu")
    rng = np.random.default_rng(seed)
    arrays = backend.state_arrays("encoder")
    for name, value in arrays.items():  # non-trivial LayerNorms and modality embeddings, so a wrong mapping shows
        if "norm" in name or "mod_embed" in name:
            arrays[name] = value + rng.normal(0, 0.1, value.shape).astype(np.float32)
    backend.load_arrays("encoder", arrays)
    return WorldModel(backend, enc, None, provenance={"source": f"random {size}"})


def v2_1_inputs(size: str, wm, seed: int) -> dict[str, Any]:
    """Float model inputs (golden ones for `v2_1_tiny`) and uint8 frames for the latency rows."""
    from jepa_ac.model.preprocess import frames_to_clip

    rng = np.random.default_rng(seed)
    S = wm.encoder_config.img_size
    data: dict[str, Any] = {"image_uint8": rng.integers(0, 256, (S, S, 3), dtype=np.uint8),
                            "video_uint8": rng.integers(0, 256, (V2_1_VIDEO_FRAMES, S, S, 3), dtype=np.uint8)}
    if size == "v2_1_tiny":
        with np.load(V2_1_TINY_PT.parent / "vjepa2_1_tiny_io.npz") as golden:
            g = {k: golden[k] for k in golden.files}
        data.update(image=g["img_input"], video=g["video_input"], video_nonsquare=g["video_ns_input"],
                    masks=g["mask_keep"], golden=g)
    else:
        data.update(image=frames_to_clip(data["image_uint8"][None], S), video=frames_to_clip(data["video_uint8"], S))
    return data


def v2_1_outputs(wm, data: dict[str, Any], video: bool = True) -> dict[str, np.ndarray]:
    """Raw encoder outputs (upstream semantics, no extra layer norm): image path, video path, and for the
    tiny model the non-square, hierarchical and masked ones."""
    enc, to_numpy = wm.backend.encode, wm.ops.to_numpy
    out = {"v2_1_image": to_numpy(enc(data["image"])),
           "v2_1_image_hierarchical": to_numpy(enc(data["image"], hierarchical=True))}
    if video:
        out["v2_1_video"] = to_numpy(enc(data["video"]))
    if video and "golden" in data:
        out["v2_1_video_hierarchical"] = to_numpy(enc(data["video"], hierarchical=True))
        out["v2_1_video_nonsquare"] = to_numpy(enc(data["video_nonsquare"]))
        out["v2_1_video_masked"] = to_numpy(enc(data["video"], masks=data["masks"]))
    return out


def bench_v2_1(size: str, dtypes: tuple[str, ...], repeats: int, seed: int, log,
               mlx_device: str | None = None) -> dict[str, Any]:
    start = time.perf_counter()
    ref_wm = v2_1_model(size, seed)
    data = v2_1_inputs(size, ref_wm, seed)
    enc = ref_wm.encoder_config
    params = {"encoder": int(sum(v.size for v in ref_wm.backend.state_arrays("encoder").values()))}
    log(f"[{size}] torch model ready ({params}) in {time.perf_counter() - start:.1f}s")
    big = size != "v2_1_tiny"  # 384 px: the 16-frame video is 4608 tokens
    reference = v2_1_outputs(ref_wm, data)
    log(f"[{size}] torch float32 outputs in {time.perf_counter() - start:.1f}s")
    parity, latency = [], []
    if "golden" in data:
        g = data["golden"]
        upstream = {"v2_1_image": g["img_out"], "v2_1_image_hierarchical": g["img_hier"], "v2_1_video": g["video_out"],
                    "v2_1_video_hierarchical": g["video_hier"], "v2_1_video_nonsquare": g["video_ns_out"],
                    "v2_1_video_masked": g["video_masked_out"]}
        for what, value in reference.items():
            parity.append({"size": size, "what": what, "backend": "torch", "dtype": "float32", "reference": "upstream",
                           **compare(upstream[what], value)})

    def time_model(wm, backend: str, dtype: str, note: str, video: bool) -> None:
        ops = wm.ops
        rows = {"encode_image": (lambda: ops.to_numpy(wm.encode(data["image_uint8"])), repeats, 1)}
        if video:  # the parity pass above was its warm-up
            rows[f"encode_video_{V2_1_VIDEO_FRAMES}f"] = (lambda: ops.to_numpy(wm.encode(data["video_uint8"])),
                                                          min(repeats, 2) if big else repeats, 0 if big else 1)
        for op, (fn, n, warmup) in rows.items():
            latency.append({"size": size, "op": op, "backend": backend, "dtype": dtype, "note": note,
                            **median_time(fn, n, warmup)})
            log(f"[{size}] {backend} {dtype} {note} {op}: {latency[-1]['median_ms']:.1f} ms")

    time_model(ref_wm, "torch", "float32", "", True)
    torch_bf16 = torch_twin(ref_wm, "bfloat16")
    for what, value in v2_1_outputs(torch_bf16, data, video=not big).items():
        parity.append({"size": size, "what": what, "backend": "torch", "dtype": "bfloat16",
                       "reference": "torch float32", **compare(reference[what], value)})
    del torch_bf16
    for dtype in dtypes:
        video = dtype == "float32" or not big
        wm = mlx_twin(ref_wm, dtype, device=mlx_device)
        for what, value in v2_1_outputs(wm, data, video).items():
            parity.append({"size": size, "what": what, "backend": "mlx", "dtype": dtype, "reference": "torch float32",
                           **compare(reference[what], value)})
            log(f"[{size}] mlx {dtype} {what}: max_abs {parity[-1]['max_abs']:.2e} cosine {parity[-1]['cosine']:.7f}")
            if "golden" in data and dtype == "float32":
                parity.append({"size": size, "what": what, "backend": "mlx", "dtype": dtype, "reference": "upstream",
                               **compare(upstream[what], value)})
        time_model(wm, "mlx", dtype, "", video)
        del wm
    return {"size": size, "parameters": params, "encoder": enc.to_dict(), "predictor": None, "parity": parity,
            "cem": [], "latency": latency, "seconds": time.perf_counter() - start}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# MLX backend: parity and latency", "",
        f"Machine: {m['cpu']} ({m['cpu_count']} cores), {m['platform']}; torch {m['torch']} "
        f"({m['torch_threads']} threads), MLX {m['mlx']} (default device {m['mlx_default_device']}), OpenBLAS loaded: "
        f"{m['openblas_loaded']}; load average at start {m['load_average']}. {m['date']}.", "",
        "Command: `" + report["command"] + "`", "",
    ]
    earlier: dict[str, list[dict[str, Any]]] = {}  # date of an earlier run -> its sizes (kept by --merge)
    for s in report["sizes"]:
        if s.get("machine", m)["date"] != m["date"]:
            earlier.setdefault(s["machine"]["date"], []).append(s)
    for sizes in earlier.values():
        e = sizes[0]["machine"]
        names = ", ".join(f"`{s['size']}`" for s in sizes)
        lines += [f"Rows of {names} come from an earlier run: `{sizes[0]['command']}` ({e['cpu']}, {e['cpu_count']} "
                  f"cores, torch {e['torch']} ({e['torch_threads']} threads), MLX {e['mlx']}, load average at start "
                  f"{e['load_average']}; {e['date']}).", ""]
    lines += [
        "## Parity", "",
        "Same weights and inputs in both backends. `encoder_image`: frames encoded one by one as 2-frame "
        "tubelets, layer-normed; `encoder_video`: one clip, raw encoder output; `predictor`: upstream "
        "predictor call on 3 frames (2 for giant). V-JEPA 2.1 rows (`v2_1_*`, raw encoder outputs: the last "
        "`norms_block`, or all four concatenated for `hierarchical`): `v2_1_image` an image on the image path "
        "([1, 3, 1, H, W]), `v2_1_video` a clip on the video path (4 frames for v2_1_tiny, 16 frames at 384 px "
        "for v2_1_base), `v2_1_video_nonsquare` a 48 x 80 clip, `v2_1_video_masked` 20 kept tokens.", "",
        "| size | output | backend | dtype | reference | cosine | min token cosine | max abs | mean abs | mean abs of ref |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (row for s in report["sizes"] for row in s["parity"]):
        lines.append(f"| {r['size']} | {r['what']} | {r['backend']} | {r['dtype']} | {r['reference']} | "
                     f"{r['cosine']:.8f} | {r['min_token_cosine']:.6f} | {r['max_abs']:.2e} | {r['mean_abs']:.2e} | "
                     f"{r['ref_abs_mean']:.3f} |")
    lines += ["", "## CEM planning step, identical noise (MLX vs torch fp32)", "",
              "| size | MLX dtype | samples | iterations | top-k | same elite sets | max abs diff of chosen actions | max abs diff of elite costs |",
              "|---|---|---|---|---|---|---|---|"]
    for r in (row for s in report["sizes"] for row in s["cem"]):
        lines.append(f"| {r['size']} | {r['dtype']} | {r['samples']} | {r['iterations']} | {r['topk']} | "
                     f"{r['same_elites']} | {r['actions_max_abs']:.2e} | {r['elite_costs_max_abs']:.2e} |")
    lines += ["", "## Latency (CPU, batch of one frame / S samples; median of repeats)", "",
              "| size | op | backend | dtype | note | median ms | min ms |", "|---|---|---|---|---|---|---|"]
    for r in (row for s in report["sizes"] for row in s["latency"]):
        lines.append(f"| {r['size']} | {r['op']} | {r['backend']} | {r['dtype']} | {r['note']} | "
                     f"{r['median_ms']:.1f} | {r['min_ms']:.1f} |")
    lines += ["", "`encode_video_16f`: `wm.encode` of a 16-frame clip (V-JEPA 2.1 video path: 8 x N tokens in one "
              "forward); `encode_image`: one image (2.1: image path).", "",
              "Parameters: " + "; ".join(f"{s['size']}: {s['parameters']}" for s in report["sizes"]), ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for s in report["sizes"] for r in s["latency"]]
    groups = sorted({(r["size"], r["op"]) for r in rows}, key=lambda g: (SIZES.index(g[0]), g[1]))
    series = sorted({(r["backend"], r["dtype"], r["note"]) for r in rows})
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups)), 4))
    width = 0.8 / len(series)
    for i, key in enumerate(series):
        values = [next((r["median_ms"] for r in rows if (r["size"], r["op"]) == g and
                        (r["backend"], r["dtype"], r["note"]) == key), np.nan) for g in groups]
        ax.bar(np.arange(len(groups)) + i * width, values, width, label=" ".join(k for k in key if k))
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, [f"{s}\n{o}" for s, o in groups], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("median ms (log)")
    ax.set_title(f"CPU latency: {report['machine']['cpu']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.bench parity", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench/parity", help="output folder (default: %(default)s)")
    parser.add_argument("--sizes", default="tiny,mid", help=f"comma-separated, from {SIZES} (default: %(default)s)")
    parser.add_argument("--dtypes", default=",".join(MLX_DTYPES), help="MLX dtypes to check (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per op (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=64, help="CEM samples / predictor batch (giant: at most 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mlx-device", choices=("cpu", "gpu"), help="MLX device (default: MLX's default device)")
    parser.add_argument("--merge", action="store_true",
                        help="keep the results of the other sizes already in OUT/parity.json (each keeps its own "
                             "machine and command)")
    args = parser.parse_args(argv)
    sizes = tuple(s for s in args.sizes.split(",") if s)
    dtypes = tuple(d for d in args.dtypes.split(",") if d)
    bad = [s for s in sizes if s not in SIZES] + [d for d in dtypes if d not in MLX_DTYPES]
    if bad or not sizes or args.repeats < 1 or args.samples < 2:
        parser.error(f"bad --sizes/--dtypes/--repeats/--samples ({bad}); sizes from {SIZES}, dtypes from {MLX_DTYPES}")
    for size, fixture in (("tiny", TINY_PT), ("v2_1_tiny", V2_1_TINY_PT)):
        if size in sizes and not fixture.exists():
            parser.error(f"size {size!r} needs the fixture {fixture} (run from a source checkout)")
    try:
        import mlx.core  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        print(f"error: the parity benchmark needs both torch and MLX: {err}", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": "python -m jepa_ac.bench parity " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine_info(), "sizes": []}
    kept = []
    if args.merge and (out / "parity.json").exists():
        earlier = json.loads((out / "parity.json").read_text())
        kept = [{"command": earlier["command"], "machine": earlier["machine"], **s}
                for s in earlier["sizes"] if s["size"] not in sizes]
    done = []
    for size in sizes:
        if size in V2_1_SIZES:
            result = bench_v2_1(size, dtypes, args.repeats, args.seed, log, args.mlx_device)
        else:
            result = bench_size(size, dtypes, args.repeats, args.samples, args.seed, log, args.mlx_device)
        done.append({"command": report["command"], "machine": report["machine"], **result})
        report["sizes"] = sorted(kept + done, key=lambda s: SIZES.index(s["size"]))
        write_json_atomic(out / "parity.json", report)  # keep partial results
    report["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    write_json_atomic(out / "parity.json", report)
    write_atomic(out / "parity.md", markdown(report))
    plot(report, out / "latency.png")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
