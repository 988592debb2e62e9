"""A tiny random world model in our folder format, for the plan / evaluate / energy-landscape CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

IMAGE_SIZE = 64  # the env renders at the model's size in these tests
EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def load_experiment(path: str):
    """An experiment's script (`experiments/<path>`) as a module; experiments are scripts, not a package."""
    import importlib.util
    import sys

    name = "experiment_" + path.removesuffix(".py").replace("/", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def write_tiny_model(path: Path, planning: dict | None = None, seed: int = 0) -> Path:
    """Random encoder (1 block, 48 wide) + AC predictor (1 block, 32 wide) at 64 px, saved with
    `save_checkpoint`; `planning` (a planning.json dict) is written beside the weights."""
    import torch

    from jepa_ac.world_model.backends.torch_backend import TorchBackend
    from jepa_ac.world_model.checkpoints import save_checkpoint
    from jepa_ac.model.config import EncoderConfig, PredictorConfig

    torch.manual_seed(seed)
    enc = EncoderConfig(img_size=IMAGE_SIZE, patch_size=16, num_frames=8, tubelet_size=2, embed_dim=48, depth=1,
                        num_heads=2)
    pred = PredictorConfig(img_size=IMAGE_SIZE, patch_size=16, num_frames=8, tubelet_size=2, predictor_embed_dim=32,
                           depth=1, num_heads=2).with_encoder(enc)
    backend = TorchBackend(enc, pred)
    arrays = {part: {k: np.asarray(v) for k, v in backend.state_arrays(part).items()} for part in ("encoder", "predictor")}
    save_checkpoint(path, arrays, enc, pred, {"note": "random weights for tests"})
    if planning is not None:
        (Path(path) / "planning.json").write_text(json.dumps(planning, indent=2) + "\n")
    return Path(path)


# small CEM and a short budget so a closed-loop episode takes a few seconds on 2 cores
TINY_PLANNING = {
    "format": "jepa_ac.planning",
    "version": 1,
    "env_id": "jepa_ac/FrankaReach-v0",
    "cem": {"samples": 16, "iterations": 2, "topk": 4, "horizon": 1},
    "action": {"max_translation": 0.05, "frozen": {"droll": 0.0, "dpitch": 0.0, "dyaw": 0.0}},
    "env": {"image_size": IMAGE_SIZE, "control_hz": 4.0},
    "mpc": {"max_steps": 3, "patience": None},
    "env_overrides": {"jepa_ac/FrankaReach-v0": {"action": {"frozen": {"droll": 0.0, "dpitch": 0.0, "dyaw": 0.0,
                                                                        "dgripper": 0.0}}}},
}


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """The CLIs run here with `--threads 1` (much faster on the shared CPU); give the next test torch's setting back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def failing_planner(wm, cem, spec):
    """An episode planner (evaluate's `make_planner`) that leaves a file in $JEPA_AC_TEST_CALLS per
    call, then fails after 0.5 s (as an episode would, a while in): how many episodes an evaluation
    starts after one has failed."""
    import os
    import time
    import uuid
    from pathlib import Path

    (Path(os.environ["JEPA_AC_TEST_CALLS"]) / uuid.uuid4().hex).touch()
    time.sleep(0.5)
    raise RuntimeError("the planner broke")
