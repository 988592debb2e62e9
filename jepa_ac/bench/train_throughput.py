"""Predictor training steps/s from the zarr latent cache versus encoding frames on the fly.

    python -m jepa_ac.bench train_throughput --data data/sim128/all.txt --episodes 12 \\
        --out experiments/predictor_training/throughput
    python -m jepa_ac.bench train_throughput --encoder runs/pretrain_default/final --steps 30

One process, one model: a few episodes of `--data` (evenly spread over the list) are encoded
once with the frozen encoder into a latent cache (timed), then the same predictor (same seed,
same initial weights, same batches) trains `--steps` steps from the cache and `--steps` steps
from the episodes' videos (decode + encode every clip), after `--warmup` untimed steps each;
the two runs alternate step by step, so load from other processes hits both alike. Inside
each step the input side (batch + latents) is timed too, so the table splits a step into data
and model time. The encoder is `--encoder`, else `runs/pretrain_default/final`
if it exists, else a randomly initialised encoder of the default model's architecture saved in
our folder format under `--work` (the JSON says which). Writes `throughput.json` and
`throughput.md` under `--out`; scratch (subset list, cache, runs) goes to `--work`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PRETRAINED_ENCODER = REPO / "runs/pretrain_default/final"
# the shipped default model's encoder and predictor (experiments/default_model/*.yaml)
DEFAULT_ENCODER = {"img_size": 64, "patch_size": 8, "num_frames": 4, "tubelet_size": 2, "embed_dim": 192, "depth": 6,
                   "num_heads": 6}
DEFAULT_PREDICTOR = {"predictor_embed_dim": 96, "depth": 4, "num_heads": 4}
MODES = ("cache", "video")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jepa_ac.bench train_throughput",
                                description=__doc__.strip().split("\n")[0])
    p.add_argument("--data", default=str(REPO / "data/sim128/all.txt"), help="episode folder or trajectory list")
    p.add_argument("--episodes", type=int, default=12, help="episodes used (evenly spread; default %(default)s)")
    p.add_argument("--encoder", default="", help="encoder checkpoint (default: the pretrained default if present, "
                                                 "else a random one of the default architecture)")
    p.add_argument("--predictor", default=json.dumps(DEFAULT_PREDICTOR), help="predictor config JSON")
    p.add_argument("--frames", type=int, default=4, help="frames per clip (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=20, help="timed training steps per mode (default %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "runs/bench/train_throughput")
    p.add_argument("--work", type=Path, default=REPO / "runs/bench_train_throughput")
    return p


def pick_episodes(folders: list[Path], count: int) -> list[Path]:
    """`count` folders evenly spread over the list (so every task folder of a sorted list is hit)."""
    if count < 1:
        raise ValueError(f"--episodes must be >= 1, got {count}")
    if count >= len(folders):
        return list(folders)
    return [folders[int(i)] for i in np.linspace(0, len(folders) - 1, count).round().astype(int)]


def resolve_encoder(given: str, work: Path, seed: int) -> tuple[Path, str]:
    """(checkpoint folder, how it was chosen)."""
    if given:
        return Path(given), "given"
    if (PRETRAINED_ENCODER / "config.json").exists():
        return PRETRAINED_ENCODER, "pretrained (runs/pretrain_default/final)"
    import torch

    from jepa_ac.world_model.checkpoints import save_checkpoint
    from jepa_ac.model.config import EncoderConfig
    from jepa_ac.world_model import make_backend

    torch.manual_seed(seed)
    config = EncoderConfig(**DEFAULT_ENCODER)
    backend = make_backend("torch", config, None, device="cpu")
    path = work / "encoder_random"
    save_checkpoint(path, {"encoder": backend.state_arrays("encoder")}, config, None,
                    {"note": f"random init (torch seed {seed}) of the default model's encoder architecture"})
    return path, f"random init, seed {seed} (no runs/pretrain_default/final yet)"


def build_cache(episodes_list: Path, encoder: Path, cache: Path) -> dict[str, Any]:
    from jepa_ac import encode_dataset

    if cache.exists():
        shutil.rmtree(cache)  # time a cold build
    start = time.perf_counter()
    encode_dataset.main(["--data", str(episodes_list), "--checkpoint", str(encoder), "--out", str(cache),
                         "--no-progress"])
    seconds = time.perf_counter() - start
    import zarr

    frames = sum(run["frames"] for run in zarr.open_group(str(cache), mode="r").attrs["runs"])
    return {"seconds": seconds, "frames": frames, "frames_per_s": frames / seconds}


def make_trainer(mode: str, data_path: Path, encoder: Path, args: argparse.Namespace) -> Any:
    from jepa_ac.training.clips import open_clips
    from jepa_ac.training.predictor_trainer import PredictorTrainer, TrainPredictorConfig

    config = TrainPredictorConfig(
        data=str(data_path), encoder_checkpoint=str(encoder), predictor=json.loads(args.predictor),
        frames=args.frames, batch_size=args.batch_size, steps=args.warmup + args.steps, warmup_steps=1,
        decay_steps=1, val_fraction=0.0, seed=args.seed, device=args.device, out=str(args.work / f"run_{mode}"),
        save_every=10**9, eval_every=10**9, log_every=10**9)
    return PredictorTrainer(config, open_clips(config.data, config.frames, config.fps), None)


def _timed(fn: Any, sink: list[float]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        sink.append(time.perf_counter() - start)
        return out

    return wrapper


def time_modes(trainers: dict[str, Any], warmup: int, steps: int) -> dict[str, dict[str, Any]]:
    """Train every trainer warmup + steps steps, alternating step by step (so load on a shared
    machine hits both alike). Inside each step, the input side (batch + latents) is timed too."""
    records: dict[str, list] = {mode: [] for mode in trainers}
    data_times: dict[str, list] = {mode: [] for mode in trainers}
    for mode, trainer in trainers.items():  # instance-level wrappers: the trainer's own step, timed in parts
        sink: list[float] = []
        trainer._batch = _timed(trainer._batch, sink)
        trainer.encoder.latents = _timed(trainer.encoder.latents, sink)
        trainer.data_sink = sink
    for _ in range(warmup + steps):
        for mode, trainer in trainers.items():
            trainer.data_sink.clear()
            records[mode].append(trainer.train_step())
            data_times[mode].append(sum(trainer.data_sink))
    out = {}
    for mode, trainer in trainers.items():
        trainer.metrics.close()
        step_times = np.array([r["step_time"] for r in records[mode][warmup:]])
        data = np.array(data_times[mode][warmup:])
        out[mode] = {"clips": len(trainer.train_data), "steps_per_s": 1.0 / step_times.mean(),
                     "step_s_mean": step_times.mean(), "step_s_median": float(np.median(step_times)),
                     "data_s_mean": data.mean(), "model_s_mean": (step_times - data).mean(),
                     "first_loss": records[mode][0]["loss"], "last_loss": records[mode][-1]["loss"]}
    return out


def markdown(result: dict[str, Any]) -> str:
    c, r = result["config"], result["results"]
    lines = [
        "# Predictor training throughput: latent cache vs encoding on the fly",
        "",
        f"Same process, same predictor (`{c['predictor']}`), same initial weights and batches; "
        f"{c['episodes']} episodes of `{c['data']}`, clips of {c['frames']} frames, batch {c['batch_size']}, "
        f"{c['steps']} timed steps after {c['warmup']} warm-up steps, {c['threads']} torch threads on "
        f"{result['machine']['device']}. Encoder: {result['encoder']['choice']} "
        f"(`{result['encoder']['config']}`).",
        "",
        "| data | steps/s | step (s) | data + encode (s) | predictor fwd/bwd (s) | first loss |",
        "|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        m = r[mode]
        lines.append(f"| {mode} | {m['steps_per_s']:.2f} | {m['step_s_mean']:.3f} | {m['data_s_mean']:.3f} | "
                     f"{m['model_s_mean']:.3f} | {m['first_loss']:.4f} |")
    cache = result["cache_build"]
    lines += [
        "",
        f"**Cache is {result['speedup']:.1f}x faster** (steps/s ratio, cache / video).",
        "",
        f"Building the cache: {cache['frames']} frames in {cache['seconds']:.1f} s "
        f"({cache['frames_per_s']:.0f} frames/s, one encoder pass per frame). Training from video re-decodes "
        f"and re-encodes {c['frames']} frames x {c['batch_size']} clips every step, so the cache pays for itself after "
        f"{result['break_even_steps']:.0f} steps on this subset. The first-step losses differ by "
        f"{result['first_loss_abs_diff']:.1e} (cached latents are float16).",
        "",
        f"Regenerate: `{result['command']}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from jepa_ac.data.reader import find_episodes, write_trajectory_list

    args.work.mkdir(parents=True, exist_ok=True)
    from jepa_ac.data.latent_cache import episode_key
    from jepa_ac.data.reader import open_episode

    # in the cache's episode order (sorted keys), so both modes see the same clips at every step
    episodes = sorted(pick_episodes(find_episodes(args.data), args.episodes),
                      key=lambda p: episode_key(open_episode(p)))
    subset = write_trajectory_list(args.work / "episodes.txt", episodes,
                                   header=f"{len(episodes)} episodes of {args.data}")
    encoder, choice = resolve_encoder(args.encoder, args.work, args.seed)
    print(f"encoder: {encoder} ({choice}); {len(episodes)} episodes", flush=True)
    cache_build = build_cache(subset, encoder, args.work / "latents.zarr")
    sources = {"cache": args.work / "latents.zarr", "video": subset}
    results = time_modes({mode: make_trainer(mode, sources[mode], encoder, args) for mode in MODES},
                         args.warmup, args.steps)
    saved_per_step = results["video"]["step_s_mean"] - results["cache"]["step_s_mean"]
    from jepa_ac.world_model.checkpoints import read_checkpoint

    result = {
        "config": {"data": str(args.data), "episodes": len(episodes), "predictor": json.loads(args.predictor),
                   "frames": args.frames, "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup,
                   "threads": args.threads, "seed": args.seed},
        "encoder": {"path": str(encoder), "choice": choice,
                    "config": {k: v for k, v in read_checkpoint(encoder).encoder_config.to_dict().items()
                               if k in DEFAULT_ENCODER}},
        "machine": {"device": args.device, "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version(), "platform": platform.platform()},
        "cache_build": cache_build,
        "results": results,
        "speedup": results["cache"]["steps_per_s"] / results["video"]["steps_per_s"],
        "break_even_steps": cache_build["seconds"] / saved_per_step if saved_per_step > 0 else float("inf"),
        "first_loss_abs_diff": abs(results["cache"]["first_loss"] - results["video"]["first_loss"]),
        "command": "python -m jepa_ac.bench train_throughput " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (args.out / "throughput.md").write_text(markdown(result))
    print(markdown(result))
    return 0
