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
    assert wm.names == ("front", "side") and wm.member_names == ("seed0", "wide")  # the front view's extra predictors
    assert wm.encoder_config is not None and wm.predictor_config is not None
    size = wm.encoder_config.img_size
    z = np.asarray(wm.encode(np.zeros((2, size, 2 * size, 3), np.uint8)))  # both views: [T', 2N, D]
    assert z.shape[-1] == wm.encoder_config.embed_dim and np.isfinite(z).all()
    front = np.asarray(wm.encode(np.zeros((2, size, size, 3), np.uint8)))  # the front view alone: [T', N, D]
    assert 2 * front.shape[1] == z.shape[1] == wm.joined_tokens_per_frame and front.shape[1] == wm.tokens_per_frame


def test_the_planning_defaults_name_the_models_views_first_the_envs_default():
    """plan / evaluate render the model's views in its order (push and pick-and-place: the front view
    alone, which the front model plans from by itself); `gym.make` without `exterior_view` renders the first."""
    from jepa_ac.envs import scene
    from jepa_ac.world_model.multi_view import read_views_file

    names = read_views_file(DEFAULT_CHECKPOINT)
    defaults = PlanningDefaults.for_checkpoint(DEFAULT_CHECKPOINT)
    views = {env_id: scene.parse_views(defaults.for_env(env_id).env.exterior_view) for env_id in defaults.env_overrides}
    assert scene.parse_views(defaults.env.exterior_view) == names
    assert views == {"jepa_ac/FrankaReach-v0": names, "jepa_ac/FrankaPush-v0": names[:1],
                     "jepa_ac/FrankaPickPlace-v0": names[:1]}
    assert names[0] == scene.DEFAULT_EXTERIOR_VIEW


def test_pick_and_place_plans_with_the_wide_predictor_alone():
    """The shipped pick-and-place scores candidates with ensemble/wide (192 x 6; experiments/grasp_data),
    the other tasks with the folder's own predictor (96 x 4); the planner picks it by name."""
    from jepa_ac.planning import CEMPlanner
    from jepa_ac.world_model import load_world_model
    from jepa_ac.world_model.multi_view import for_view_setting

    defaults = PlanningDefaults.for_checkpoint(DEFAULT_CHECKPOINT)
    chosen = {env_id: (defaults.for_env(env_id).cem.predictor, defaults.for_env(env_id).cem.ensemble)
              for env_id in defaults.env_overrides}
    assert chosen == {"jepa_ac/FrankaReach-v0": (None, False), "jepa_ac/FrankaPush-v0": (None, False),
                      "jepa_ac/FrankaPickPlace-v0": ("wide", False)}
    wm = load_world_model(DEFAULT_CHECKPOINT)
    pickplace = defaults.for_env("jepa_ac/FrankaPickPlace-v0")
    planner = CEMPlanner(for_view_setting(wm, pickplace.env.exterior_view), pickplace.cem, pickplace.action)
    assert planner.scorer.predictor_config.predictor_embed_dim == 192 and planner.scorer.predictor_config.depth == 6
    assert wm.views[0].predictor_config.predictor_embed_dim == 96


def test_only_push_plans_in_rounds_of_way_points():
    """The shipped push: up to three rounds within 120 steps (experiments/subgoal_rounds); the env's
    time limit follows the budget, so the rounds are not cut off at the registered 60 steps."""
    from jepa_ac.control.closed_loop import make_env

    defaults = PlanningDefaults.for_checkpoint(DEFAULT_CHECKPOINT)
    rounds = {env_id: defaults.for_env(env_id).mpc for env_id in defaults.env_overrides}
    assert {k: (m.subgoal_rounds, m.max_steps) for k, m in rounds.items()} == {
        "jepa_ac/FrankaReach-v0": (1, 40), "jepa_ac/FrankaPush-v0": (3, 120), "jepa_ac/FrankaPickPlace-v0": (1, 60)}
    push = defaults.for_env("jepa_ac/FrankaPush-v0")
    env = make_env(push.env_id, push.env, step_budget=push.mpc.max_steps)
    assert env.spec.max_episode_steps > 120
    env.close()


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



def test_the_side_view_is_v3s_weights():
    """views/side holds v3's weights (experiments/default_model/model, the default until session 15)."""
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    digests = {hashlib.sha256((root / folder / "model.safetensors").read_bytes()).hexdigest()
               for folder in ("jepa_ac/assets/default_model/views/side", "experiments/default_model/model")}
    assert len(digests) == 1 and digests.pop().startswith("e32a1b9779e3")
