"""The shipped default model (`jepa_ac/assets/default_model`): what the README and issue 6 promise of it."""

from __future__ import annotations

import numpy as np
import pytest

from jepa_ac.cli.args import DEFAULT_CHECKPOINT
from jepa_ac.planning.defaults import PlanningDefaults

MAX_BYTES = 30 * 1024 * 1024  # the size budget for the shipped weights and configs


def test_the_shipped_folder_is_small_fp16_and_documented():
    files = {p.name: p for p in DEFAULT_CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "planning.json", "MODEL_CARD.md"} <= set(files), sorted(files)
    assert sum(p.stat().st_size for p in DEFAULT_CHECKPOINT.rglob("*") if p.is_file()) <= MAX_BYTES  # ensemble/ too
    from safetensors import safe_open

    for weights in DEFAULT_CHECKPOINT.rglob("model.safetensors"):
        with safe_open(str(weights), framework="np") as f:
            dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
        assert dtypes == {"F16"}, (weights, dtypes)


def test_the_shipped_model_loads_strictly_and_encodes_at_its_size():
    from jepa_ac.world_model import load_world_model

    wm = load_world_model(DEFAULT_CHECKPOINT)
    assert wm.encoder_config is not None and wm.predictor_config is not None
    size = wm.encoder_config.img_size
    z = np.asarray(wm.encode(np.zeros((2, size, size, 3), np.uint8)))  # [T', N, D]
    assert z.shape[-1] == wm.encoder_config.embed_dim and np.isfinite(z).all()


def test_the_planning_defaults_name_the_envs_default_view():
    """`gym.make` without `exterior_view` renders what the default model was trained on."""
    from jepa_ac.envs import scene

    defaults = PlanningDefaults.for_checkpoint(DEFAULT_CHECKPOINT)
    assert defaults.env.exterior_view == scene.DEFAULT_EXTERIOR_VIEW
    for env_id in defaults.env_overrides:
        assert defaults.for_env(env_id).env.exterior_view == scene.DEFAULT_EXTERIOR_VIEW


@pytest.mark.parametrize("folder", ["experiments/default_model/model", "experiments/front_view/long_seed1/model"])
def test_experiment_checkpoints_name_their_view(folder):
    """Committed checkpoints trained from a view other than the env's default must say so, or plan and
    evaluate would render them the wrong camera."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / folder
    assert PlanningDefaults.for_checkpoint(path).env.exterior_view in ("side", "front")


def test_the_one_predictor_experiment_copy_is_the_shipped_model():
    """experiments/front_view/long_seed1/model holds the shipped weights (its planning.json without the
    ensemble); its README records their hash: the two copies must not drift apart."""
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name, recorded in (("model.safetensors", "a4d2860b9290"), ("config.json", "88d355546b88")):
        digests = {hashlib.sha256((root / folder / name).read_bytes()).hexdigest()
                   for folder in ("jepa_ac/assets/default_model", "experiments/front_view/long_seed1/model")}
        assert len(digests) == 1 and digests.pop().startswith(recorded), name
