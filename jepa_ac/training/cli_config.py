"""One dataclass config per training job: a YAML or JSON `--config`, then `--set` overrides.

    cfg = parse_config(TrainPredictorConfig, ["--config", "exp.yaml", "--set", "lr=3e-4", "predictor.depth=6"])

Every dataclass field also has a shortcut flag, `--field-name VALUE` (= `--set field_name=VALUE`);
the syntax is `jepa_ac.cli.overrides`'. Unknown keys, in the file or on the command line, are an
error that names them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

from jepa_ac.cli.overrides import Set, add_settings_args, apply_settings, load_settings

C = TypeVar("C")
T = TypeVar("T")


def build_parser(cls: type, description: str, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_args(parser, "YAML or JSON file with any of the settings below")
    for field in dataclasses.fields(cls):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        parser.add_argument("--" + field.name.replace("_", "-"), action=Set, key=field.name,
                            help=f"(default: {default!r})")
    return parser


def parse_config(cls: type[C], argv: list[str] | None, description: str = "", prog: str = "") -> C:
    """The defaults of `cls`, the --config file's values, then `--set` and the shortcut flags -> a validated `cls`."""
    args = build_parser(cls, description, prog).parse_args(argv)
    values = dataclasses.asdict(cls())
    if args.config is not None:
        values = apply_settings(values, load_settings(args.config).items(), cls, source=str(args.config))
    return cls(**apply_settings(values, args.overrides, cls))


def save_config(config: Any, path: Path) -> None:
    path.write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))


def setup_or_exit(setup: Callable[[], T]) -> T:
    """Run a training job's setup (config, data, model, checkpoints to start from) and return what it
    builds; a bad option, path or checkpoint exits with a one-line `error:` message instead of a
    traceback."""
    try:
        return setup()
    except (ValueError, FileNotFoundError) as err:  # CheckpointError, EpisodeError, CacheError are ValueErrors
        raise SystemExit(f"error: {err}") from None


def fit_or_exit(trainer: Any) -> dict[str, Any]:
    """`trainer.fit()`; the package's own errors (nothing to resume, a refused trainer state, a
    non-finite loss, damaged data) exit with a one-line `error:` message. Anything else is a bug
    and keeps its traceback."""
    from jepa_ac.world_model.checkpoints import CheckpointError
    from jepa_ac.data.latent_cache import CacheError
    from jepa_ac.data.reader import EpisodeError
    from jepa_ac.data.video import VideoDecodeError
    from jepa_ac.training.loop import TrainingError

    try:
        return trainer.fit()
    except (TrainingError, CheckpointError, CacheError, EpisodeError, VideoDecodeError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None
