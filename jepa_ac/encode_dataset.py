"""Encode every frame of a DROID-layout dataset once with a frozen encoder into a zarr latent cache.

    python -m jepa_ac.encode_dataset --data data/reach --checkpoint vjepa2-ac-vitg.pt \\
        --encoder vit_giant --out data/reach_latents.zarr

`--data` is a dataset folder, an episode folder or a trajectory list file, or a LeRobot dataset
(v2.1 / v3.0) folder or spec file (`jepa_ac.data.lerobot`). The cache is keyed by
the sha256 of the encoder weights: writing latents of another encoder into an existing cache is
refused, and training refuses a cache made by another encoder. Re-running resumes (episodes
already complete are skipped); each run appends its counts to the store's `runs` attr. Episodes
that cannot be used (missing or truncated files, NaN or implausible states: see
`jepa_ac.model.pose.StateRanges`, override with `--state-ranges '{"max_position": 10}'`, a video frame
that fails to decode) are skipped and listed; when nothing could be encoded the exit code is 1.
Errors are one `error:` line. Training reads the cache with
`jepa_ac.data.latent_cache.LatentClips(path, frames_per_clip, fps, rank=, world_size=)`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


from jepa_ac.data import layout
from jepa_ac.data.latent_cache import LATENT_DTYPES, LatentCache, encode_episodes
from jepa_ac.data.reader import find_episodes


def encoder_spec(value: str | None) -> Any:
    """--encoder: None, a preset name, or a JSON file of upstream kwargs (or {"encoder": {...}})."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"--encoder {value}: JSON file not found")
        spec = json.loads(path.read_text())
        return spec.get("encoder", spec)
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jepa_ac.encode_dataset",
        description="Encode every frame of a DROID-layout dataset into a zarr latent cache (resumable).",
        epilog="example: python -m jepa_ac.encode_dataset --data data/reach --checkpoint ckpt_dir --out reach.zarr",
    )
    parser.add_argument("--data", required=True,
                        help="dataset folder, episode folder or trajectory list file; or a LeRobot dataset or spec file")
    parser.add_argument("--checkpoint", required=True, help="upstream .pt, Hugging Face folder or jepa_ac checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="zarr store to create or resume (e.g. cache.zarr)")
    parser.add_argument("--encoder", default=None,
                        help="architecture for upstream .pt files: a preset (vit_giant, ...) or a JSON file of kwargs")
    parser.add_argument("--encoder-key", default=None,
                        help="upstream .pt key of the encoder (default: found as load_world_model does)")
    parser.add_argument("--dtype", default="float16", choices=LATENT_DTYPES, help="stored latent dtype (default %(default)s)")
    parser.add_argument("--batch-frames", type=int, default=16, help="frames per encoder call (default %(default)s)")
    parser.add_argument("--camera-key", default=layout.LEFT_MP4_KEY, help="metadata key of the camera, or a LeRobot video feature (default %(default)s: "
                             "the left exterior camera / the spec's video_key)")
    parser.add_argument("--backend", default="torch", choices=("torch", "mlx"))
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1 (default: backend's choice)")
    parser.add_argument("--state-ranges", type=json.loads, default={},
                        help="JSON overrides of jepa_ac.model.pose.StateRanges, e.g. '{\"max_position\": 10}' "
                             "(episodes with a state outside are skipped)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the package's errors (bad paths, checkpoints, a cache of another encoder) exit
    with a one-line `error:` message."""
    args = build_parser().parse_args(argv)
    try:
        return encode(args)
    except (ValueError, FileNotFoundError) as err:  # CheckpointError, CacheError, EpisodeError are ValueErrors
        raise SystemExit(f"error: {err}") from None


def encode(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    import jepa_ac
    from jepa_ac.training.clips import parse_state_ranges

    ranges = parse_state_ranges(args.state_ranges, "--state-ranges")
    folders = find_episodes(args.data)
    if not folders:
        raise SystemExit(f"no episodes found in {args.data}")
    wm = jepa_ac.load_world_model(args.checkpoint, encoder=encoder_spec(args.encoder), backend=args.backend,
                                  device=args.device, encoder_key=args.encoder_key, load_predictor=False)
    encoder_info = {"checkpoint": str(Path(args.checkpoint).resolve()),
                    "encoder_key": wm.provenance.get("encoder_key", args.encoder_key),
                    "config": wm.encoder_config.to_dict()}
    cache = LatentCache.create(args.out, wm.encoder_hash(), encoder_info, latent_dtype=args.dtype)
    start = time.perf_counter()
    summary = encode_episodes(
        folders, lambda frames: wm.backend.ops.to_numpy(wm.encode_frames(frames, batch_size=args.batch_frames)), cache,
        batch_frames=args.batch_frames, camera_key=args.camera_key,
        progress=None if args.no_progress else (lambda xs: tqdm(xs, desc="encode", unit="ep")), ranges=ranges,
    )
    elapsed = time.perf_counter() - start
    run = {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "data": str(args.data), "encoded": len(summary["encoded"]),
           "already_cached": len(summary["already_cached"]), "skipped": summary["skipped"],
           "frames": summary["frames"], "seconds": round(elapsed, 2)}
    cache.group.attrs["runs"] = [*cache.group.attrs.get("runs", []), run]  # a log of every run, in the store
    print(f"{args.out}: {len(summary['encoded'])} episodes encoded ({summary['frames']} frames, "
          f"{summary['frames'] / elapsed if elapsed > 0 else 0:.1f} frames/s), "
          f"{len(summary['already_cached'])} already cached, {len(summary['skipped'])} skipped")
    for row in summary["skipped"]:
        print(f"  skipped {row['episode']}: {row['reason']}")
    print(f"  encoder sha256 {cache.encoder_hash}")
    if summary["skipped"] and not (summary["encoded"] or summary["already_cached"]):
        raise SystemExit(f"error: none of the {len(folders)} episodes in {args.data} could be encoded; first: "
                         f"{summary['skipped'][0]['episode']}: {summary['skipped'][0]['reason']}")
    return 0


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
