"""Train the action-conditioned predictor (V-JEPA 2-AC recipe) on a frozen encoder's latents.

    python -m jepa_ac.train_predictor --data runs/cache.zarr --encoder-checkpoint ENC --out runs/pred \
        --steps 2000 --batch-size 16
    python -m jepa_ac.train_predictor --config experiments/predictor/sim.yaml --resume true
    torchrun --nproc_per_node 4 -m jepa_ac.train_predictor --config ... # DDP, data sharded by rank

`--data` is a latent cache (`python -m jepa_ac.encode_dataset`), a DROID-layout episode folder or
trajectory list, a LeRobot dataset folder or spec file (encoded on the fly), or a clips `.npz`.
Options come from a YAML `--config` overlaid with `--set KEY=VALUE` and the `--field-name VALUE`
shortcuts (`jepa_ac.cli.overrides`); the resolved config is saved into every checkpoint. Outputs
under `--out`: `checkpoint/` (latest, atomic; `--resume true` continues from it exactly),
`final/`, `metrics.jsonl`, `loss_curves.png`, `summary.json`. Every checkpoint also holds the
training data's control contract at the clip rate `--fps`, with the env and hooks it was recorded
with (`control.json`, `jepa_ac.planning.checkpoint_control`): plan and evaluate derive an env's
planning defaults and its command map from it (`--env module:EnvId`).

`--resume true` also starts a run whose `--out` holds none yet (so one command serves the first
run and every restart), and refuses one that holds a run but no `checkpoint/`; without it a folder
that holds a run is refused. A latent cache must come from `--encoder-checkpoint` (sha256 checked).
Episodes with a state outside `jepa_ac.model.pose.StateRanges` (override: `--state-ranges
'{"max_position": 10}'`) are skipped with a warning and counted in `summary.json`. A NaN/inf loss
or gradient stops the run with an error naming the step; any such error is one `error:` line.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from jepa_ac.cli.args import let_idle_threads_sleep
from jepa_ac.training.cli_config import fit_or_exit, parse_config, setup_or_exit
from jepa_ac.training.clips import open_clips, split_by_episode

if TYPE_CHECKING:  # torch loads in build_trainer, after the OpenMP setup
    from jepa_ac.training.predictor_trainer import PredictorTrainer, TrainPredictorConfig

logger = logging.getLogger(__name__)


def build_trainer(argv: list[str] | None = None) -> PredictorTrainer:
    """Config, data and model of one run (nothing trained yet)."""
    from jepa_ac.training.predictor_trainer import PredictorTrainer, TrainPredictorConfig

    config = parse_config(TrainPredictorConfig, argv, __doc__, "python -m jepa_ac.train_predictor")
    data = open_clips(config.data, config.frames, config.fps, config.ranges)
    if config.val_data:
        train, val = data, open_clips(config.val_data, config.frames, config.fps, config.ranges)
    else:
        train, val = split_by_episode(data, config.val_fraction, config.seed)
    return PredictorTrainer(config, train, val, control=training_control(config))


def training_control(config: TrainPredictorConfig):
    """The data's control record for the checkpoints (None, with a warning, if it cannot be measured)."""
    from jepa_ac.planning.checkpoint_control import control_for_data

    try:
        control = control_for_data(config.data, config.fps)
    except (ValueError, FileNotFoundError, KeyError) as err:
        logger.warning("no control contract for %s (%s): checkpoints carry no control.json, so planning in its env "
                       "needs a planning.json", config.data, err)
        return None
    if control is None:
        logger.warning("%s has no episodes to measure a control contract from: checkpoints carry no control.json",
                       config.data)
    return control


def main(argv: list[str] | None = None) -> dict:
    let_idle_threads_sleep()  # before torch loads OpenMP
    summary = fit_or_exit(setup_or_exit(lambda: build_trainer(argv)))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
