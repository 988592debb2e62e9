"""Predictor ensembles: members stored beside a checkpoint, checked against its encoder, averaged by CEM."""

import json

import numpy as np
import pytest
import torch
from planning_helpers import write_tiny_model

import jepa_ac
from jepa_ac.planning import CEMConfig, CEMPlanner
from jepa_ac.world_model.checkpoints import CheckpointError, read_checkpoint, save_checkpoint


def same_encoder_other_predictor(base, other, out):
    """A checkpoint with `base`'s encoder and `other`'s predictor (as a second training seed would give)."""
    a, b = read_checkpoint(base), read_checkpoint(other)
    return save_checkpoint(out, {"encoder": a.arrays["encoder"], "predictor": b.arrays["predictor"]},
                           a.encoder_config, b.predictor_config, {"note": "second predictor"})


@pytest.fixture
def models(tmp_path):
    main = write_tiny_model(tmp_path / "main", seed=0)
    foreign = write_tiny_model(tmp_path / "foreign", seed=1)  # another encoder too
    second = same_encoder_other_predictor(main, foreign, tmp_path / "second")
    return main, second, foreign


def test_members_load_beside_the_checkpoint_and_average_the_energy(models, golden):
    main, second, _ = models
    assert jepa_ac.add_ensemble_member(main, second, "seed1") == main / "ensemble" / "seed1"
    assert json.loads((main / "ensemble" / "seed1" / "config.json").read_text())["encoder"] is None  # predictor only
    wm = jepa_ac.load_world_model(main)
    alone, member = jepa_ac.load_world_model(main, load_members=False), jepa_ac.load_world_model(second)
    assert len(wm.members) == 1 and alone.members == ()
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    z0, z_goal = wm.encode(frames[0]), wm.encode(frames[2])
    actions = torch.from_numpy(np.random.default_rng(0).uniform(-0.05, 0.05, (6, 2, 7)).astype(np.float32))
    state_x = torch.from_numpy(state[None].astype(np.float32))
    mine, theirs = (m.rollout_energy(z0, state_x, actions, z_goal, over="min") for m in (alone, member))
    torch.testing.assert_close(wm.rollout_energy(z0, state_x, actions, z_goal, over="min", ensemble=True),
                               (mine + theirs) / 2)
    torch.testing.assert_close(wm.rollout_energy(z0, state_x, actions, z_goal, over="min"), mine)
    assert not torch.allclose(mine, theirs)  # the members differ, so the mean is not either one


def test_the_planner_scores_with_the_ensemble_when_asked(models, golden):
    main, second, _ = models
    jepa_ac.add_ensemble_member(main, second, "seed1")
    wm = jepa_ac.load_world_model(main)
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    config = CEMConfig(samples=16, iterations=2, topk=4, seed=3)
    plain = CEMPlanner(wm, config).plan_sequence(frames[0], state, frames[2])
    both = CEMPlanner(wm, config.replace(ensemble=True)).plan_sequence(frames[0], state, frames[2])
    assert not np.array_equal(plain.elite_costs, both.elite_costs)
    alone = jepa_ac.load_world_model(main, load_members=False)
    np.testing.assert_array_equal(CEMPlanner(alone, config).plan_sequence(frames[0], state, frames[2]).actions,
                                  plain.actions)  # members are used only when asked for
    with pytest.raises(ValueError, match="no ensemble members"):
        CEMPlanner(alone, config.replace(ensemble=True))
    with pytest.raises(ValueError, match="CEMConfig.ensemble"):
        CEMConfig(ensemble=1)


def test_a_member_of_another_encoder_is_refused(models, tmp_path):
    main, second, foreign = models
    with pytest.raises(CheckpointError, match="encoder differs"):
        jepa_ac.add_ensemble_member(main, foreign, "other")
    with pytest.raises(ValueError, match="member name"):
        jepa_ac.add_ensemble_member(main, second, "../escape")
    # a member folder copied beside another model (or edited) names the encoder it was made for
    jepa_ac.add_ensemble_member(second, main, "seed0")
    copied = tmp_path / "foreign_copy"
    copied.mkdir()
    for f in foreign.iterdir():
        (copied / f.name).write_bytes(f.read_bytes())
    (copied / "ensemble").mkdir()
    (copied / "ensemble" / "seed0").mkdir()
    for f in (second / "ensemble" / "seed0").iterdir():
        (copied / "ensemble" / "seed0" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(CheckpointError, match="made for another encoder"):
        jepa_ac.load_world_model(copied)
    jepa_ac.load_world_model(copied, load_members=False)  # the model itself still loads


def test_save_keeps_the_members(models, tmp_path):
    main, second, _ = models
    jepa_ac.add_ensemble_member(main, second, "seed1")
    wm = jepa_ac.load_world_model(main)
    saved = wm.save(tmp_path / "exported", dtype="float16")
    again = jepa_ac.load_world_model(saved)
    assert len(again.members) == 1
    for name, value in wm.members[0].backend.state_arrays("predictor").items():
        np.testing.assert_allclose(again.members[0].backend.state_arrays("predictor")[name],
                                   np.asarray(value).astype(np.float16), rtol=0, atol=0)


def test_cem_predictor_plans_with_one_named_member(models, golden, tmp_path):
    """cem.predictor: the folder's encoder encodes, the named member imagines: the same plans as a
    folder whose own predictor is that member's; unknown names and predictor + ensemble are errors."""
    main, second, _ = models
    jepa_ac.add_ensemble_member(main, second, "wide")
    wm = jepa_ac.load_world_model(main)
    assert wm.member_names == ("wide",) and wm.member("wide") is wm.members[0]
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    config = CEMConfig(samples=16, iterations=2, topk=4, seed=3)
    picked = CEMPlanner(wm, config.replace(predictor="wide")).plan_sequence(frames[0], state, frames[2])
    theirs = CEMPlanner(jepa_ac.load_world_model(second), config).plan_sequence(frames[0], state, frames[2])
    np.testing.assert_array_equal(picked.actions, theirs.actions)
    np.testing.assert_allclose(picked.elite_costs, theirs.elite_costs, atol=1e-6)
    own = CEMPlanner(wm, config).plan_sequence(frames[0], state, frames[2])
    assert not np.allclose(own.elite_costs, picked.elite_costs)
    with pytest.raises(ValueError, match="no ensemble member 'seed9'; its members: \\['wide'\\]"):
        CEMPlanner(wm, config.replace(predictor="seed9"))
    with pytest.raises(ValueError, match="exclude each other"):
        config.replace(predictor="wide", ensemble=True)
    wm.save(tmp_path / "copy")  # members keep their names
    assert jepa_ac.load_world_model(tmp_path / "copy").member_names == ("wide",)
