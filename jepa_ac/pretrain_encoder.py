"""V-JEPA self-supervised pretraining of a small video encoder on robot video.

    python -m jepa_ac.pretrain_encoder --data data/sim128/all.txt --out runs/pretrain --steps 2000
    python -m jepa_ac.pretrain_encoder --config experiments/pretraining/default.yaml --resume true
    torchrun --nproc_per_node 4 -m jepa_ac.pretrain_encoder --config ...   # DDP, batches split by rank

`--data` is a DROID-layout episode folder or trajectory list (ours or the released DROID; the
left exterior camera). Architecture: `--encoder '{"img_size": 64, "patch_size": 8, "embed_dim":
192, "depth": 6, "num_heads": 6}'` (any V-JEPA 2 encoder config, 3D RoPE, tubelet 2) and
`--predictor '{"predictor_embed_dim": 96, "depth": 4, "num_heads": 4}'`. Outputs under `--out`:
`checkpoint/` (latest, atomic; `--resume true` continues exactly), `final/` (the target encoder in
our checkpoint format: `jepa_ac.load_world_model("runs/pretrain/final")`), `metrics.jsonl`
(loss, LR, weight decay, EMA momentum, target feature std), `loss_curves.png`, `summary.json`.

`--resume true` also starts a run whose `--out` holds none yet, and refuses one that holds a run
but no `checkpoint/`; without it a folder that holds a run is refused. Episodes with a state
outside `jepa_ac.model.pose.StateRanges` (override: `--state-ranges '{"max_position": 10}'`) or a video
that cannot be decoded are skipped with a warning and counted in `summary.json`. A NaN/inf loss or
gradient stops the run with an error naming the step; any such error is one `error:` line.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from jepa_ac.cli.args import let_idle_threads_sleep
from jepa_ac.training.cli_config import fit_or_exit, parse_config, setup_or_exit
from jepa_ac.training.clips import split_by_episode

if TYPE_CHECKING:  # torch loads in build_trainer, after the OpenMP setup
    from jepa_ac.pretraining.trainer import PretrainTrainer


def build_trainer(argv: list[str] | None = None) -> PretrainTrainer:
    """Config, data and models of one run (nothing trained yet)."""
    from jepa_ac.pretraining.trainer import PretrainEncoderConfig, PretrainTrainer
    from jepa_ac.pretraining.video_data import VideoClips

    config = parse_config(PretrainEncoderConfig, argv, __doc__, "python -m jepa_ac.pretrain_encoder")
    if not config.data:
        raise ValueError("--data is required (a DROID-layout episode folder or trajectory list)")
    data = VideoClips(config.data, config.frames, config.fps, preload=config.preload, state_ranges=config.ranges)
    train, val = split_by_episode(data, config.val_fraction, config.seed)
    return PretrainTrainer(config, train, val)


def main(argv: list[str] | None = None) -> dict:
    let_idle_threads_sleep()  # before torch loads OpenMP
    summary = fit_or_exit(setup_or_exit(lambda: build_trainer(argv)))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
