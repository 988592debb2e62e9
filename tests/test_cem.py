"""CEM: finds known optima, respects the action spec, deterministic per seed, backend-independent."""

import numpy as np
import pytest
import torch

from jepa_ac.array_ops import NUMPY_OPS
from jepa_ac.backends.torch_backend import TORCH_OPS
from jepa_ac.planning import ActionSpec, CEMConfig, CEMPlanner, cem, sample_noise

TARGET = np.array([0.03, -0.02, 0.01], dtype=np.float32)


def quadratic_cost(ops, target=TARGET, horizon_weights=None):
    """A toy differentiable 'world model': cost = ||sum of xyz actions - target||^2 + (gripper - 0.5)^2."""
    def cost(actions):  # [S, H, 7] -> [S]
        total = ops.sum(actions[..., :3], axis=1)  # [S, 3]
        err = total - ops.asarray(target, like=actions)
        grip = actions[:, 0, 6] - 0.5
        return ops.sum(err * err, axis=-1) + grip * grip
    return cost


@pytest.mark.parametrize("ops", [NUMPY_OPS, TORCH_OPS], ids=["numpy", "torch"])
def test_finds_known_optimum(ops):
    config = CEMConfig(samples=400, iterations=15, topk=20, horizon=1, gripper_deadband=0.0)
    spec = ActionSpec()
    result = cem(quadratic_cost(ops), config, spec, sample_noise(config, spec, np.random.default_rng(0)), ops)
    np.testing.assert_allclose(result.actions[0, :3], TARGET, atol=3e-3)
    assert abs(result.actions[0, 6] - 0.5) < 0.05
    np.testing.assert_array_equal(result.actions[0, 3:6], 0.0)  # rotation held at 0
    assert result.elite_costs[-1][0] < result.elite_costs[0][0]


def test_horizon_two_splits_the_motion():
    """Target beyond one step's bound: needs two steps, each inside the box."""
    target = np.array([0.08, 0.0, -0.07], dtype=np.float32)
    config = CEMConfig(samples=600, iterations=20, topk=20, horizon=2)
    spec = ActionSpec()
    result = cem(quadratic_cost(NUMPY_OPS, target), config, spec,
                 sample_noise(config, spec, np.random.default_rng(1)), NUMPY_OPS)
    assert result.actions.shape == (2, 7)
    np.testing.assert_allclose(result.actions[:, :3].sum(0), target, atol=5e-3)
    assert np.abs(result.actions[:, :3]).max() <= 0.05 + 1e-7


def test_samples_respect_bounds_and_frozen_dims():
    spec = ActionSpec(max_translation=0.02, frozen=(("droll", 0.0), ("dpitch", 0.0), ("dyaw", 0.1), ("dz", 0.0)))
    seen = []

    def cost(actions):
        seen.append(actions.copy())
        return -actions[:, 0, 0]  # push x as far as possible

    config = CEMConfig(samples=100, iterations=5, horizon=3)
    cem(cost, config, spec, sample_noise(config, spec, np.random.default_rng(2)), NUMPY_OPS)
    acts = np.concatenate(seen)
    assert np.abs(acts[..., :2]).max() <= 0.02 + 1e-7
    assert np.all(acts[..., 2] == 0.0) and np.all(acts[..., 5] == np.float32(0.1))
    assert np.abs(acts[..., 6]).max() <= 0.75 + 1e-7


def test_l1_constraint():
    spec = ActionSpec(translation_constraint="l1")
    free = np.array([[0.05, 0.05, 0.05, 0.0], [0.01, 0.0, 0.0, 2.0]], dtype=np.float32)
    out = spec.constrain(free, NUMPY_OPS)
    assert np.abs(out[0, :3]).sum() == pytest.approx(0.05)
    np.testing.assert_allclose(out[1], [0.01, 0, 0, 0.75])


def test_action_spec_validation():
    with pytest.raises(ValueError, match="unknown action dim"):
        ActionSpec(frozen=(("yaw", 0.0),))
    with pytest.raises(ValueError, match="translation_constraint"):
        ActionSpec(translation_constraint="ball")
    with pytest.raises(ValueError, match="topk"):
        CEMConfig(samples=5, topk=10)


def test_numpy_and_torch_choose_identical_actions():
    config = CEMConfig(samples=200, iterations=6, horizon=2)
    spec = ActionSpec()
    noise = sample_noise(config, spec, np.random.default_rng(3))
    a = cem(quadratic_cost(NUMPY_OPS), config, spec, noise, NUMPY_OPS)
    b = cem(quadratic_cost(TORCH_OPS), config, spec, noise, TORCH_OPS)
    np.testing.assert_allclose(a.actions, b.actions, atol=1e-6)


def test_planner_on_tiny_model_is_deterministic_and_bounded(tiny_wm, golden):
    frames = golden["frames_uint8"]
    state = golden["states"][0, 0]
    config = CEMConfig(samples=64, iterations=3, topk=8, horizon=2, seed=7)
    a1 = CEMPlanner(tiny_wm, config).plan(frames[0], state, frames[2])
    a2 = CEMPlanner(tiny_wm, config).plan(frames[0], state, frames[2])
    np.testing.assert_array_equal(a1, a2)
    assert a1.shape == (7,) and np.abs(a1[:3]).max() <= 0.05 and np.all(a1[3:6] == 0)
    planner = CEMPlanner(tiny_wm, config.replace(seed=8))
    assert not np.array_equal(planner.plan(frames[0], state, frames[2]), a1)


def test_planner_prefers_the_action_that_reaches_the_goal(tiny_wm, golden):
    """With the goal set to what the model predicts for a known action, CEM recovers that action."""
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    true_action = np.array([0.04, -0.03, 0.02, 0, 0, 0, 0], dtype=np.float32)
    z0 = tiny_wm.encode(frames[0])
    z_goal = tiny_wm.rollout(z0, torch.from_numpy(state[None]), torch.from_numpy(true_action[None, None]))[:, -1]
    planner = CEMPlanner(tiny_wm, CEMConfig(samples=300, iterations=8, topk=15, horizon=1))
    planner._goal_latent = z_goal  # a goal latent rather than an image
    action = planner.plan(frames[0], state)
    assert np.abs(action[:3] - true_action[:3]).max() < 0.015


def test_planner_errors(tiny_wm, golden):
    planner = CEMPlanner(tiny_wm, CEMConfig(samples=16, iterations=1, topk=4))
    with pytest.raises(ValueError, match="no goal"):
        planner.plan(golden["frames_uint8"][0], np.zeros(7))
    with pytest.raises(ValueError, match="NaN"):
        planner.plan(golden["frames_uint8"][0], np.full(7, np.nan), golden["frames_uint8"][1])
    with pytest.raises(ValueError, match="shape"):
        planner.plan(golden["frames_uint8"][0], np.zeros(6), golden["frames_uint8"][1])


def test_warm_start_shifts_previous_plan(tiny_wm, golden):
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    planner = CEMPlanner(tiny_wm, CEMConfig(samples=32, iterations=2, topk=4, horizon=3, warm_start=True))
    first = planner.plan_sequence(frames[0], state, frames[2])
    np.testing.assert_array_equal(planner._previous_mean[:2], first.mean[1:])
    planner.reset()
    assert planner._previous_mean is None
