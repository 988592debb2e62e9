"""Multi-view world models: one world model per camera, frames with the views side by side, the
mean of the views' energies; stored as views.json + views/<name>/ in our folder, loaded strictly."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from planning_helpers import write_tiny_model

import jepa_ac
from jepa_ac.planning import CEMConfig, CEMPlanner
from jepa_ac.world_model.checkpoints import CheckpointError, read_checkpoint, save_checkpoint
from jepa_ac.world_model.multi_view import MultiViewWorldModel


@pytest.fixture
def two_views(tmp_path):
    """Our folder of the "front" model with a "side" view (another tiny model: its own encoder too)."""
    front = write_tiny_model(tmp_path / "front", seed=0)
    side = write_tiny_model(tmp_path / "side", seed=1)
    assert jepa_ac.add_view(front, side, "side", first_view="front") == front / "views" / "side"
    return front, side


def joined(*frames):
    return np.concatenate(frames, axis=1)  # [H, V*W, 3]: the views side by side


def test_the_views_encode_their_halves_and_the_energy_is_their_mean(two_views, golden):
    front, side = two_views
    wm = jepa_ac.load_world_model(front)
    assert isinstance(wm, MultiViewWorldModel) and wm.names == ("front", "side")
    assert json.loads((front / "views.json").read_text())["views"] == ["front", "side"]
    alone = {"front": jepa_ac.load_world_model(front, load_views=False), "side": jepa_ac.load_world_model(side)}
    assert not isinstance(alone["front"], MultiViewWorldModel)
    f = golden["frames_uint8"]
    frame, goal = joined(f[0], f[1]), joined(f[2], f[0])
    z, z_goal = wm.encode(frame), wm.encode(goal)
    torch.testing.assert_close(z, torch.cat([alone["front"].encode(f[0]), alone["side"].encode(f[1])], dim=1))
    assert z.shape == (1, 2 * alone["front"].tokens_per_frame, 48) and wm.joined_tokens_per_frame == z.shape[1]
    assert wm.tokens_per_frame == alone["front"].tokens_per_frame  # one-view code sees the folder's own model
    state = torch.from_numpy(golden["states"][0, 0][None].astype(np.float32))
    actions = torch.from_numpy(np.random.default_rng(0).uniform(-0.05, 0.05, (5, 2, 7)).astype(np.float32))
    pairs = ((alone["front"], f[0], f[2]), (alone["side"], f[1], f[0]))  # each view: its model, frame, goal
    per_view = [m.rollout_energy(m.encode(a), state, actions, m.encode(b), over="min") for m, a, b in pairs]
    energy = wm.rollout_energy(z, state, actions, z_goal, over="min")
    torch.testing.assert_close(energy, (per_view[0] + per_view[1]) / 2)
    torch.testing.assert_close(wm.horizon_energy(wm.rollout(z, state, actions), z_goal, "min"), energy)
    assert not torch.allclose(per_view[0], per_view[1])  # two models: the mean is neither
    observed = [m.energy(m.encode(a), m.encode(b)) for m, a, b in pairs]
    torch.testing.assert_close(wm.energy(z, z_goal), (observed[0] + observed[1]) / 2)


def test_one_view_frames_plan_with_the_first_view_alone(two_views, golden):
    front, _ = two_views
    wm, alone = jepa_ac.load_world_model(front), jepa_ac.load_world_model(front, load_views=False)
    f, state = golden["frames_uint8"], golden["states"][0, 0]
    config = CEMConfig(samples=16, iterations=2, topk=4, seed=3)
    np.testing.assert_array_equal(CEMPlanner(wm, config).plan_sequence(f[0], state, f[2]).actions,
                                  CEMPlanner(alone, config).plan_sequence(f[0], state, f[2]).actions)
    both = CEMPlanner(wm, config).plan_sequence(joined(f[0], f[0]), state, joined(f[2], f[2]))
    assert both.actions.shape == (1, 7) and np.isfinite(both.elite_costs).all()
    with pytest.raises(ValueError, match="the frame shows front\\+side but the goal shows front"):
        CEMPlanner(wm, config).plan_sequence(joined(f[0], f[1]), state, f[2])
    three = MultiViewWorldModel([*wm.views, wm.views[1]], ("front", "side", "top"))
    with pytest.raises(ValueError, match="holds neither one view nor all 3"):
        three.encode(joined(f[0], f[1]))
    z = torch.cat([alone.encode(f[0])] * 2, dim=1)[None].reshape(1, -1, 48)  # two frames of the front view
    a = torch.zeros(1, 2, 7)
    s = torch.from_numpy(np.tile(state.astype(np.float32), (1, 2, 1)))
    torch.testing.assert_close(wm.predict(z, a, s), alone.predict(z, a, s))  # the upstream call: the first view's


def test_the_ensemble_of_a_view_is_averaged_within_that_view(two_views, tmp_path, golden):
    front, side = two_views
    a, b = read_checkpoint(front), read_checkpoint(side)
    second = save_checkpoint(tmp_path / "second", {"encoder": a.arrays["encoder"], "predictor": b.arrays["predictor"]},
                             a.encoder_config, b.predictor_config, {})
    jepa_ac.add_ensemble_member(front, second, "seed1")
    wm = jepa_ac.load_world_model(front)
    front_alone = jepa_ac.load_world_model(front, load_views=False)
    assert len(wm.members) == 1
    f = golden["frames_uint8"]
    state = torch.from_numpy(golden["states"][0, 0][None].astype(np.float32))
    actions = torch.from_numpy(np.random.default_rng(1).uniform(-0.05, 0.05, (4, 1, 7)).astype(np.float32))
    z, z_goal = wm.encode(joined(f[0], f[1])), wm.encode(joined(f[2], f[2]))
    side_energy = jepa_ac.load_world_model(side).rollout_energy(wm.split(z)[1], state, actions, wm.split(z_goal)[1])
    front_energy = front_alone.rollout_energy(wm.split(z)[0], state, actions, wm.split(z_goal)[0], ensemble=True)
    torch.testing.assert_close(wm.rollout_energy(z, state, actions, z_goal, ensemble=True), (front_energy + side_energy) / 2)
    CEMPlanner(wm, CEMConfig(samples=8, iterations=1, topk=2, ensemble=True)).plan(joined(f[0], f[1]), golden["states"][0, 0],
                                                                                    joined(f[2], f[2]))


def test_save_round_trip(two_views, tmp_path, golden):
    front, _ = two_views
    wm = jepa_ac.load_world_model(front)
    again = jepa_ac.load_world_model(wm.save(tmp_path / "exported", dtype="float16"))
    assert again.names == ("front", "side") and (tmp_path / "exported" / "views" / "side" / "model.safetensors").is_file()
    f = golden["frames_uint8"]
    torch.testing.assert_close(again.encode(joined(f[0], f[1])), wm.encode(joined(f[0], f[1])), atol=0.05, rtol=0)


def test_a_broken_views_folder_is_refused_by_name(two_views, tmp_path):
    front, side = two_views
    views = front / "views.json"
    views.write_text(json.dumps({"format": "jepa_ac.views", "version": 1, "views": ["front", "side", "wrist"]}))
    with pytest.raises(CheckpointError, match=r"missing under views/: \['wrist'\], unexpected there: \[\]"):
        jepa_ac.load_world_model(front)
    views.write_text(json.dumps({"format": "jepa_ac.views", "version": 1, "views": ["front", "top"]}))
    with pytest.raises(CheckpointError, match=r"missing under views/: \['top'\], unexpected there: \['side'\]"):
        jepa_ac.load_world_model(front)
    for bad in ("{", json.dumps({"format": "jepa_ac.views", "views": ["front"]}),
                json.dumps({"format": "jepa_ac.views", "views": ["front", "../x"]}), json.dumps([1])):
        views.write_text(bad)
        with pytest.raises(CheckpointError, match="views.json"):
            jepa_ac.load_world_model(front)
    views.unlink()
    with pytest.raises(CheckpointError, match="has a views/ folder but no views.json"):
        jepa_ac.load_world_model(front)
    jepa_ac.load_world_model(front, load_views=False)  # the folder's own model still loads
    jepa_ac.load_world_model(front, load_predictor=False)  # so does its encoder alone
    shutil.rmtree(front / "views")
    with pytest.raises(ValueError, match="pass first_view"):
        jepa_ac.add_view(front, side, "side")
    with pytest.raises(ValueError, match="view name"):
        jepa_ac.add_view(front, side, "../side", first_view="front")
    jepa_ac.add_view(front, side, "side", first_view="front")
    with pytest.raises(ValueError, match="already has a view named 'side'"):
        jepa_ac.add_view(front, side, "side")


def test_views_of_different_latent_widths_are_refused(two_views, tmp_path):
    front, _ = two_views
    from jepa_ac.world_model.backends.torch_backend import TorchBackend

    tiny = read_checkpoint(front)
    enc = dataclasses.replace(tiny.encoder_config, embed_dim=32)
    pred = dataclasses.replace(tiny.predictor_config, embed_dim=32)
    backend = TorchBackend(enc, pred)
    arrays = {p: {k: np.asarray(v) for k, v in backend.state_arrays(p).items()} for p in ("encoder", "predictor")}
    shutil.rmtree(front / "views" / "side")
    save_checkpoint(front / "views" / "side", arrays, enc, pred, {})
    with pytest.raises(CheckpointError, match=r"one width to be joined, got \[32, 48\]"):
        jepa_ac.load_world_model(front)


def test_a_two_view_episode_plans_the_same_in_process_and_through_the_server(two_views):
    """The env renders both views side by side; the planning server takes such frames as any other."""
    gymnasium = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    import jepa_ac.envs  # noqa: F401 - registers the ids
    from jepa_ac.robot import GymRobot, SafetyConfig, SafetyLayer, run_episode
    from jepa_ac.serving.client import PlannerClient
    from jepa_ac.serving.server import PlanningServer, ServerConfig, ServerThread, make_planning_policy_factory

    make = make_planning_policy_factory(jepa_ac.load_world_model(two_views[0]),
                                        CEMConfig(samples=16, iterations=2, topk=4, seed=0))

    def episode(policy):
        robot = GymRobot(gymnasium.make("jepa_ac/FrankaReach-v0", image_size=64, exterior_view="front+side"))
        robot.reset(seed=3)
        assert robot.goal_image().shape == (64, 128, 3)
        result = run_episode(robot, policy, robot.goal_image(), max_steps=3, safety=SafetyLayer(SafetyConfig()))
        robot.env.close()
        return result

    local = episode(make())
    with ServerThread(PlanningServer(make, ServerConfig(port=0))) as url, PlannerClient(url) as client:
        remote = episode(client)
    assert len(local.steps) == len(remote.steps) == 3
    np.testing.assert_allclose(remote.actions, local.actions, atol=1e-7)
    assert np.abs(local.actions[:, :3]).max() > 0


def test_mlx_plans_two_views_as_torch_does(two_views, golden):
    mx = pytest.importorskip("mlx.core")
    torch_wm = jepa_ac.load_world_model(two_views[0])
    mlx_wm = jepa_ac.load_world_model(two_views[0], backend="mlx")
    assert mlx_wm.names == ("front", "side")
    f, state = golden["frames_uint8"], golden["states"][0, 0]
    z, z_goal = (torch_wm.encode(joined(a, b)) for a, b in ((f[0], f[1]), (f[2], f[0])))
    zm, zm_goal = (mlx_wm.encode(joined(a, b)) for a, b in ((f[0], f[1]), (f[2], f[0])))
    np.testing.assert_allclose(np.asarray(zm), z.numpy(), atol=2e-5)
    actions = np.random.default_rng(0).uniform(-0.05, 0.05, (5, 2, 7)).astype(np.float32)
    expected = torch_wm.rollout_energy(z, torch.from_numpy(state[None].astype(np.float32)), torch.from_numpy(actions),
                                       z_goal).numpy()
    got = mlx_wm.rollout_energy(zm, mx.array(state[None].astype(np.float32)), mx.array(actions), zm_goal)
    np.testing.assert_allclose(np.asarray(got), expected, atol=2e-5)


def test_a_task_set_to_the_first_view_plans_the_same_from_either_frame(two_views, golden):
    """`for_view_setting`: a task whose env setting names fewer views (push and pick-and-place of the
    shipped model) cuts frames of every view to them, so a robot sending both plans as the simulator does."""
    from jepa_ac.planning.defaults import PlanningDefaults
    from jepa_ac.serving.server import ControllerFactory
    from jepa_ac.world_model.multi_view import for_view_setting

    wm = jepa_ac.load_world_model(two_views[0])
    assert for_view_setting(wm, "front+side") is wm and for_view_setting(wm, None) is wm
    assert for_view_setting(wm.views[0], "front") is wm.views[0]  # a one-view model is left alone
    with pytest.raises(ValueError, match="does not name this model's views front\\+side"):
        for_view_setting(wm, "side")
    f, state = golden["frames_uint8"], golden["states"][0, 0]
    defaults = PlanningDefaults.from_dict({
        "cem": {"samples": 16, "iterations": 2, "topk": 4, "seed": 0}, "env": {"exterior_view": "front+side"},
        "mpc": {"max_steps": 5, "patience": None},
        "env_overrides": {"jepa_ac/FrankaPush-v0": {"env": {"exterior_view": "front"}}}})
    factory = ControllerFactory(wm, defaults)

    def actions(task, frames, goal):
        controller = factory(task)
        controller.set_goal(goal)
        return np.stack([controller.infer({"image": frame, "state": state})["action"] for frame in frames])

    both = [joined(f[0], f[1]), joined(f[1], f[2])]
    front_only = actions("push", [b[:, :64] for b in both], f[2])
    np.testing.assert_array_equal(actions("push", both, joined(f[2], f[0])), front_only)
    assert not np.array_equal(actions(None, both, joined(f[2], f[0])), front_only)  # the default uses both views


def test_cem_predictor_plans_one_view_only(two_views, tmp_path):
    """cem.predictor picks one view's predictor: a plan over both views refuses it; the first view alone
    (a task set to "front") plans with that view's member."""
    from test_ensemble import same_encoder_other_predictor

    front, side = two_views
    jepa_ac.add_ensemble_member(front, same_encoder_other_predictor(front, side, tmp_path / "other"), "other")
    wm = jepa_ac.load_world_model(front)
    config = CEMConfig(samples=8, iterations=1, topk=2, predictor="other")
    with pytest.raises(ValueError, match="picks one view's predictor"):
        CEMPlanner(wm, config)
    assert CEMPlanner(wm.using(1), config).scorer is wm.views[0].member("other")
