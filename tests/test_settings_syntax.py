"""One settings syntax for every command (`jepa_ac.cli.overrides`): `--config FILE`, `--set KEY=VALUE`,
the specific flags as shortcuts for `--set`; and no command writes into the tracked experiments/ by default."""

import argparse
import importlib
import json
from pathlib import Path

import pytest

from jepa_ac.cli.args import planning_from_args
from jepa_ac.plan import build_parser as plan_parser
from jepa_ac.pretraining.trainer import PretrainEncoderConfig
from jepa_ac.training.cli_config import parse_config
from jepa_ac.training.predictor_trainer import TrainPredictorConfig


def planning(*argv: str):
    return planning_from_args(plan_parser().parse_args(list(argv)), None, seed=0)


def test_set_reaches_the_planning_settings():
    defaults = planning("--set", "cem.samples=64", "mpc.max_steps=30", "cem.warm_start=true", "env.image_size=96")
    assert (defaults.cem.samples, defaults.mpc.max_steps, defaults.cem.warm_start) == (64, 30, True)
    assert defaults.env.image_size == 96 and defaults.cem.topk <= 64  # --samples alone caps top-k


@pytest.mark.parametrize("shortcut, assignment", [
    (["--samples", "64"], "cem.samples=64"),
    (["--cem", "warm_start=true", "keep_elites=0.3"], "cem.warm_start=true cem.keep_elites=0.3"),
    (["--mpc", "subgoal_patience=2"], "mpc.subgoal_patience=2"),
    (["--max-steps", "12", "--image-size", "96"], "mpc.max_steps=12 env.image_size=96"),
    (["--patience", "0"], "mpc.patience=null"),
    (["--subgoals"], "mpc.subgoals=true"),
])
def test_planning_shortcuts_are_set(shortcut, assignment):
    assert planning(*shortcut) == planning("--set", *assignment.split())


def test_planning_config_file_yaml_or_json_and_its_alias(tmp_path):
    (tmp_path / "p.yaml").write_text("cem: {samples: 24, topk: 6}\nmpc: {max_steps: 9}\n")
    (tmp_path / "p.json").write_text(json.dumps({"cem": {"samples": 24, "topk": 6}, "mpc": {"max_steps": 9}}))
    from_yaml = planning("--config", str(tmp_path / "p.yaml"))
    assert (from_yaml.cem.samples, from_yaml.cem.topk, from_yaml.mpc.max_steps) == (24, 6, 9)
    assert planning("--planning", str(tmp_path / "p.json")) == from_yaml
    assert planning("--config", str(tmp_path / "p.yaml"), "--set", "cem.samples=12").cem.samples == 12


@pytest.mark.parametrize("argv, message", [
    (["--set", "cem.sampels=64"], "unknown key 'cem.sampels'; known keys under cem: samples, iterations"),
    (["--cem", "sampels=64"], "unknown key 'cem.sampels'"),
    (["--set", "cme.samples=64"], "unknown key 'cme'; known keys: cem, action, env, mpc"),
    (["--set", "cem.samples.x=1"], "'cem.samples' is one value"),
    (["--set", "cem=64"], "'cem' is a group of keys"),
])
def test_unknown_or_misplaced_planning_keys_are_named(argv, message):
    with pytest.raises(SystemExit, match=f"^error: command line: {message}"):
        planning(*argv)


def test_a_malformed_assignment_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        plan_parser().parse_args(["--cem", "warm_start"])
    assert "--cem: expected KEY=VALUE, got 'warm_start'" in capsys.readouterr().err


def test_set_reaches_the_training_config(tmp_path):
    config = parse_config(TrainPredictorConfig, ["--set", "lr=3e-4", "predictor.depth=6",
                                                 "state_ranges.max_position=10", "--stop-after", "5",
                                                 "--resume", "true", "--encoder", ""])
    assert config.lr == 3e-4 and config.predictor == {"predictor_embed_dim": 192, "depth": 6, "num_heads": 4}
    assert config.state_ranges == {"max_position": 10} and config.stop_after == 5 and config.resume is True
    assert config.encoder == ""  # a string field takes the text as written
    assert parse_config(TrainPredictorConfig, ["--lr", "3e-4", "--predictor", "{depth: 2}"]) == parse_config(
        TrainPredictorConfig, ["--set", "lr=3e-4", "predictor={depth: 2}"])
    (tmp_path / "run.yaml").write_text("lr: 1e-3\nsteps: 7\npredictor: {predictor_embed_dim: 96, depth: 2}\n")
    config = parse_config(TrainPredictorConfig, ["--config", str(tmp_path / "run.yaml"), "--set", "predictor.depth=3",
                                                 "--steps", "9"])
    assert (config.lr, config.steps, config.predictor) == (1e-3, 9, {"predictor_embed_dim": 96, "depth": 3})
    pretrain = parse_config(PretrainEncoderConfig, ["--set", "encoder.depth=2", "masks=short"])
    assert pretrain.encoder["depth"] == 2 and pretrain.encoder["embed_dim"] == 192 and pretrain.masks == "short"


def test_unknown_training_keys_are_named(tmp_path):
    with pytest.raises(ValueError, match="command line: unknown key 'lrate'; known keys: data, val_data, "):
        parse_config(TrainPredictorConfig, ["--set", "lrate=1"])
    with pytest.raises(ValueError, match="'lr' is one value"):
        parse_config(TrainPredictorConfig, ["--set", "lr.x=1"])
    (tmp_path / "run.yaml").write_text("lr: 1e-3\nlrate: 2\n")
    with pytest.raises(ValueError, match=f"{tmp_path / 'run.yaml'}: unknown key 'lrate'"):
        parse_config(TrainPredictorConfig, ["--config", str(tmp_path / "run.yaml")])


@pytest.mark.parametrize("argv, message", [
    (["--resume", "maybe"], "resume must be true or false, got 'maybe'"),
    (["--lr", "fast"], "lr must be a number, got 'fast'"),
    (["--set", "steps=2.5"], "steps must be an integer, got 2.5"),
])
def test_training_values_of_the_wrong_type_are_refused(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_config(TrainPredictorConfig, argv)
    assert parse_config(TrainPredictorConfig, ["--resume", "1"]).resume is True  # 1/0 read as a bool


# -- default outputs -------------------------------------------------------------------------------

COMMANDS = ["plan", "evaluate", "serve", "collect", "encode_dataset", "convert", "energy_landscape", "robot.__main__",
            "robot.bench_wire", "pretraining.probe", "envs.__main__", "data.contract"]


class _Parsed(Exception):
    pass


def command_parser(module: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser a command's `main` builds (caught as it parses, so nothing runs)."""
    seen = []

    def capture(self, *args, **kwargs):
        seen.append(self)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    with pytest.raises(_Parsed):
        importlib.import_module(f"jepa_ac.{module}").main([])
    return seen[0]


def path_defaults(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from path_defaults(sub)
        elif isinstance(action.default, (str, Path)) and "/" in str(action.default):
            yield action.dest, Path(action.default)


def test_no_command_writes_into_experiments_by_default(monkeypatch):
    from jepa_ac.bench.__main__ import subcommands

    modules = COMMANDS + [f"bench.{name}" for name in subcommands()]
    outputs = {}
    for module in modules:
        for dest, default in path_defaults(command_parser(module, monkeypatch)):
            outputs[f"{module} --{dest}"] = default
    outputs.update({f"{cls.__name__}.out": Path(cls().out) for cls in (TrainPredictorConfig, PretrainEncoderConfig)})
    assert outputs["evaluate --out"] == Path("runs/evaluate")
    assert sum(dest.endswith("--out") for dest in outputs) >= 10
    tracked = {name: str(path) for name, path in outputs.items() if "experiments" in path.parts}
    assert not tracked, f"defaults under experiments/: {tracked}"


# -- collect ------------------------------------------------------------------------------------------

def _collect_config(argv):
    from jepa_ac.collect import build_parser, collect_config

    return collect_config(build_parser().parse_args(argv))


def test_collect_takes_the_same_syntax(tmp_path):
    shortcut = _collect_config(["--out", "d", "--episodes", "3", "--wrist-camera", "--image-size", "64"])
    assigned = _collect_config(["--set", "out=d", "episodes=3", "wrist_camera=true", "image_size=64"])
    assert shortcut == assigned and shortcut.episodes == 3 and shortcut.wrist_camera
    (tmp_path / "collect.yaml").write_text("out: 2024\nepisodes: 5\nseed: 7\n")
    config = _collect_config(["--config", str(tmp_path / "collect.yaml"), "--episodes", "6"])
    assert (config.out, config.episodes, config.seed) == (Path("2024"), 6, 7)  # later wins; a folder, not a number
    with pytest.raises(ValueError, match="--out DIR"):
        _collect_config(["--episodes", "3"])
    with pytest.raises(ValueError, match="unknown key 'episode'"):
        _collect_config(["--out", "d", "--set", "episode=3"])
    with pytest.raises(ValueError, match="--noise applies to the Franka envs"):
        _collect_config(["--out", "d", "--env", "gymnasium:Pusher-v5", "--noise", "0.2"])


def test_settings_never_run_code(tmp_path):
    """A settings file or a --set value naming a Python object is an error; nothing is run."""
    sentinel = tmp_path / "PWNED"
    payload = f"!!python/object/apply:os.system ['touch {sentinel}']"
    (tmp_path / "run.yaml").write_text(f"lr: {payload}\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        parse_config(TrainPredictorConfig, ["--config", str(tmp_path / "run.yaml")])
    with pytest.raises(ValueError, match="lr must be a number"):
        parse_config(TrainPredictorConfig, ["--set", f"lr={payload}"])  # read back as text, then refused
    assert not sentinel.exists()
