"""One dataclass config per training job: a YAML file, then command-line overrides.

    cfg = parse_config(TrainPredictorConfig, ["--config", "exp.yaml", "--lr", "3e-4"])

Every dataclass field becomes `--field-name`; dict-valued fields take JSON. Unknown YAML keys
are an error that names them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

C = TypeVar("C")
T = TypeVar("T")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _converter(annotation: Any):
    hints = {int: int, float: float, str: str, bool: _parse_bool}
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        if all(a in (dict, str) or typing.get_origin(a) is dict for a in args):
            return lambda text: json.loads(text) if text.strip().startswith("{") else text
        return _converter(args[0])
    if annotation is dict or origin is dict:
        return json.loads
    return hints.get(annotation, str)


def build_parser(cls: type, description: str, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="YAML file with any of the options below")
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        default = field.default if field.default is not dataclasses.MISSING else None
        parser.add_argument(
            "--" + field.name.replace("_", "-"), dest=field.name, type=_converter(hints[field.name]),
            default=argparse.SUPPRESS, help=f"(default: {default!r})",
        )
    return parser


def parse_config(cls: type[C], argv: list[str] | None, description: str = "", prog: str = "") -> C:
    """YAML (if --config) overlaid with explicit command-line options -> a validated `cls`."""
    args = vars(build_parser(cls, description, prog).parse_args(argv))
    values: dict[str, Any] = {}
    config_path = args.pop("config", None)
    if config_path is not None:
        loaded = yaml.safe_load(Path(config_path).read_text()) or {}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(loaded) - names)
        if unknown:
            raise SystemExit(f"error: {config_path}: unknown option(s) {unknown}; known: {sorted(names)}")
        values.update(loaded)
    values.update(args)
    return cls(**values)


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
