"""CEM: finds known optima, respects the action spec, deterministic per seed, backend-independent."""

import numpy as np
import pytest
import torch

from jepa_ac.model.array_ops import NUMPY_OPS
from jepa_ac.model.nn_torch.ops import TORCH_OPS
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


WORKSPACE = dict(workspace_min=(0.3, -0.2, 0.05), workspace_max=(0.7, 0.2, 0.4))


@pytest.mark.parametrize("ops", [NUMPY_OPS, TORCH_OPS], ids=["numpy", "torch"])
def test_workspace_keeps_every_step_inside(ops):
    """Cumulative TCP positions of sampled sequences stay in the box; steps stay within their bounds;
    a start outside the box may hold or move back in, never further out."""
    spec = ActionSpec(**WORKSPACE)
    rng = np.random.default_rng(3)
    free = rng.uniform(-0.05, 0.05, (500, 3, 4)).astype(np.float32)  # [S, H, F] dx dy dz dgripper
    for start in ([0.68, 0.19, 0.06], [0.75, 0.0, 0.45]):  # near a corner; outside in x and z
        position = np.array(start)
        out = ops.to_numpy(spec.constrain(ops.asarray(free), ops, position))
        path = position + np.cumsum(out[..., :3].astype(np.float64), axis=1)  # [S, H, 3]
        low = np.minimum(WORKSPACE["workspace_min"], position) - 1e-6
        high = np.maximum(WORKSPACE["workspace_max"], position) + 1e-6
        assert np.all(path >= low) and np.all(path <= high)
        assert np.abs(out[..., :3]).max() <= 0.05 + 1e-7
        np.testing.assert_array_equal(out[..., 3], free[..., 3])  # the gripper is not a position
        inside = np.all((path > low + 1e-3) & (path < high - 1e-3), axis=(1, 2))
        np.testing.assert_allclose(out[inside], free[inside], atol=1e-6)  # far from the walls: untouched
    np.testing.assert_array_equal(spec.constrain(free, NUMPY_OPS), free)  # without a position: bounds only


def test_cem_with_a_workspace_stops_at_the_wall():
    """The optimum lies 3 cm beyond the box's x wall: CEM goes to the wall and no further."""
    spec = ActionSpec(**WORKSPACE)
    config = CEMConfig(samples=300, iterations=10, topk=20, gripper_deadband=0.0)
    position = np.array([0.68, 0.0, 0.2])
    target = np.array([0.05, 0.0, 0.0], np.float32)
    free_run = cem(quadratic_cost(NUMPY_OPS, target), config, spec,
                   sample_noise(config, spec, np.random.default_rng(4)), NUMPY_OPS)
    walled = cem(quadratic_cost(NUMPY_OPS, target), config, spec,
                 sample_noise(config, spec, np.random.default_rng(4)), NUMPY_OPS, position=position)
    assert free_run.actions[0, 0] == pytest.approx(0.05, abs=3e-3)  # no position: the box does not apply
    assert walled.actions[0, 0] == pytest.approx(0.02, abs=2e-3)
    assert position[0] + walled.actions[0, 0] <= 0.7 + 1e-6
    one_step = np.array([[[0.05, 0.0, -0.05, 0.0]]], np.float32)  # [1, 1, dx dy dz dgripper]
    clipped = spec.constrain(one_step, NUMPY_OPS, [0.68, 0.0, 0.08])[0, 0]
    np.testing.assert_allclose(clipped[:3], [0.02, 0.0, -0.03], atol=1e-6)


def test_action_spec_validation():
    with pytest.raises(ValueError, match="unknown action dim"):
        ActionSpec(frozen=(("yaw", 0.0),))
    with pytest.raises(ValueError, match="topk"):
        CEMConfig(samples=5, topk=10)
    with pytest.raises(ValueError, match="given together"):
        ActionSpec(workspace_min=(0.3, -0.2, 0.05))
    with pytest.raises(ValueError, match="3 finite numbers"):
        ActionSpec(workspace_min=(0.3, -0.2), workspace_max=(0.7, 0.2, 0.4))
    with pytest.raises(ValueError, match="must be below"):
        ActionSpec(workspace_min=(0.3, 0.2, 0.05), workspace_max=(0.7, -0.2, 0.4))


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


def test_goal_gripper_holds_the_gripper_for_that_goal(tiny_wm, golden):
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    spec = ActionSpec(frozen={"droll": 0, "dpitch": 0, "dyaw": 0})  # the gripper is planned
    planner = CEMPlanner(tiny_wm, CEMConfig(samples=16, iterations=2, topk=4, warm_start=True), spec)
    planner.set_goal(frames[2], gripper=0.5)  # a goal that shows the fingers closed on something
    closing = planner.plan(frames[0], state)
    assert closing[6] == pytest.approx(0.75) and planner.spec.free_names == ("dx", "dy", "dz")
    assert planner._previous_mean.shape[-1] == 3
    planner.set_goal(frames[2], gripper=0.0)  # open: same free dims, the warm start stays
    assert planner._previous_mean is not None and planner.plan(frames[0], state)[6] == pytest.approx(-0.75)
    planner.set_goal(frames[2])  # no gripper given: planned again, the 3-dim warm start is dropped
    assert planner.spec == spec and planner._previous_mean is None
    assert planner.plan(frames[0], state).shape == (7,) and planner._previous_mean.shape[-1] == 4
    with pytest.raises(ValueError, match="closedness must be in"):
        planner.set_goal(frames[2], gripper=1.5)


def test_planner_errors(tiny_wm, golden):
    planner = CEMPlanner(tiny_wm, CEMConfig(samples=16, iterations=1, topk=4))
    with pytest.raises(ValueError, match="no goal"):
        planner.plan(golden["frames_uint8"][0], np.zeros(7))
    with pytest.raises(ValueError, match="nan is not finite"):
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


# -- planning-quality options (iCEM elite reuse, the sampler, surprise gate, hold) --------------------


def recording(cost):
    """Wrap a numpy cost to keep every batch of actions it was asked about."""
    seen = []

    def wrapped(actions):
        seen.append(np.array(actions))
        return cost(actions)
    return wrapped, seen


def test_elite_reuse_never_loses_the_best_sample():
    """With elites carried over (and a deterministic cost) the best cost cannot rise between iterations;
    the number of evaluated samples stays samples x iterations."""
    config = CEMConfig(samples=24, iterations=8, topk=6, keep_elites=0.5, seed=0)
    spec = ActionSpec()
    cost, seen = recording(quadratic_cost(NUMPY_OPS))
    result = cem(cost, config, spec, sample_noise(config, spec, np.random.default_rng(3)), NUMPY_OPS)
    best = result.elite_costs[:, 0]
    assert np.all(np.diff(best) <= 1e-12), best
    assert result.evaluated == 24 * 8 and all(len(a) == 24 for a in seen)
    # the 3 carried elites are the first rows of the next batch
    np.testing.assert_array_equal(seen[1][:3, :, list(spec.free_index)], result_elites_of(seen[0])[:3])


def result_elites_of(batch):
    order = np.argsort(quadratic_cost(NUMPY_OPS)(batch), kind="stable")
    return batch[order][:, :, list(ActionSpec().free_index)]


def test_warm_start_elites_enter_the_first_iteration():
    config = CEMConfig(samples=16, iterations=2, topk=4, keep_elites=0.5)
    spec = ActionSpec()
    previous = np.full((4, 1, 4), 0.01, np.float32)
    cost, seen = recording(quadratic_cost(NUMPY_OPS))
    cem(cost, config, spec, sample_noise(config, spec, np.random.default_rng(0)), NUMPY_OPS, init_elites=previous)
    np.testing.assert_allclose(seen[0][:2, :, list(spec.free_index)], previous[:2])
    assert not np.allclose(seen[0][2:, :, list(spec.free_index)], 0.01)


def test_the_sampler_draws_the_noise_and_proposes_each_iteration():
    """CEM's one extension point: the default proposes mean + std * noise, all S; a sampler may propose
    fewer (every one is evaluated and counted), and the planner draws its noise from the sampler."""
    from jepa_ac.planning import Sampler

    class Shrinking(Sampler):
        def __init__(self):
            self.seen = []

        def propose(self, i, noise, mean, std, ops):
            self.seen.append((i, ops.to_numpy(std).copy()))
            return super().propose(i, noise[: len(noise) // (i + 1)], mean, std, ops)

    config, spec = CEMConfig(samples=24, iterations=3, topk=4), ActionSpec()
    noise = sample_noise(config, spec, np.random.default_rng(0))
    plain = cem(quadratic_cost(NUMPY_OPS), config, spec, noise, NUMPY_OPS)
    explicit = cem(quadratic_cost(NUMPY_OPS), config, spec, noise, NUMPY_OPS, sampler=Sampler())
    np.testing.assert_array_equal(plain.actions, explicit.actions)
    cost, seen = recording(quadratic_cost(NUMPY_OPS))
    shrinking = Shrinking()
    result = cem(cost, config, spec, noise, NUMPY_OPS, sampler=shrinking)
    assert [len(a) for a in seen] == [24, 12, 8] and result.evaluated == 44
    assert [i for i, _ in shrinking.seen] == [0, 1, 2]
    np.testing.assert_array_equal(shrinking.seen[0][1][0], spec.initial_std(config.init_std_gripper))


def test_the_planner_draws_its_noise_from_its_sampler(tiny_wm, golden):
    from jepa_ac.planning import Sampler

    class Still(Sampler):  # no noise: every candidate is the mean, which starts at 0
        def noise(self, config, spec, rng):
            return np.zeros_like(super().noise(config, spec, rng))

    planner = CEMPlanner(tiny_wm, CEMConfig(samples=8, iterations=2, topk=4), sampler=Still())
    result = planner.plan_sequence(golden["frames_uint8"][0], golden["states"][0, 0], golden["frames_uint8"][2])
    np.testing.assert_array_equal(result.actions, 0.0)


def test_new_options_are_validated():
    for bad in ({"keep_elites": 1.5}, {"surprise_gate": 0.0}, {"max_skips": 0}):
        with pytest.raises(ValueError, match="CEMConfig"):
            CEMConfig(**bad)


def test_surprise_gate_reuses_the_plan_when_the_world_behaves_as_predicted(tiny_wm, golden):
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    config = CEMConfig(samples=16, iterations=2, topk=4, horizon=1, surprise_gate=1e6, max_skips=2)
    planner = CEMPlanner(tiny_wm, config)
    first = planner.plan_sequence(frames[0], state, frames[2])
    assert not first.skipped and first.surprise is None and first.evaluated == 32
    results = [planner.plan_sequence(frames[1], state) for _ in range(3)]
    assert [r.skipped for r in results] == [True, True, False]  # at most max_skips in a row
    assert results[0].evaluated == 0
    np.testing.assert_array_equal(results[0].actions, first.actions)  # horizon 1: the action repeats
    # the surprise is the L1 distance between the observed latent and the one predicted for it
    z1 = tiny_wm.encode(frames[1])
    predicted = tiny_wm.rollout(tiny_wm.encode(frames[0]), torch.from_numpy(state[None].astype(np.float32)),
                                torch.from_numpy(first.actions[None]))[:, 0]
    expected = float(tiny_wm.energy(z1, predicted)[0])
    assert results[0].surprise == pytest.approx(expected, rel=1e-5)


def test_surprise_gate_replans_when_surprised(tiny_wm, golden):
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    planner = CEMPlanner(tiny_wm, CEMConfig(samples=16, iterations=2, topk=4, surprise_gate=1e-9))
    planner.plan_sequence(frames[0], state, frames[2])
    second = planner.plan_sequence(frames[1], state)
    assert not second.skipped and second.surprise > 1e-9 and second.evaluated == 32


def test_hold_unless_better_sends_zero_action_at_the_goal(tiny_wm, golden):
    """Planning from the goal frame itself: holding still is predicted no worse than some plans, and when it
    is chosen the executed action is exactly zero and its energy the imagined one of holding."""
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    spec = ActionSpec()
    held = []
    for seed in range(4):
        planner = CEMPlanner(tiny_wm, CEMConfig(samples=16, iterations=2, topk=4, hold_unless_better=True, seed=seed))
        result = planner.plan_sequence(frames[1], state, frames[1])
        plain = CEMPlanner(tiny_wm, CEMConfig(samples=16, iterations=2, topk=4, seed=seed)).plan_sequence(
            frames[1], state, frames[1])
        hold_e, plan_e = (float(tiny_wm.rollout_energy(tiny_wm.encode(frames[1]),
                                                       torch.from_numpy(state[None].astype(np.float32)),
                                                       torch.from_numpy(a[None]), tiny_wm.encode(frames[1]))[0])
                          for a in (spec.expand(np.zeros((1, 4), np.float32), NUMPY_OPS), plain.actions))
        assert result.held == (hold_e <= plan_e)
        if result.held:
            np.testing.assert_array_equal(result.actions, 0.0)
            assert result.elite_costs[-1][0] == pytest.approx(hold_e, rel=1e-5)
        else:
            np.testing.assert_array_equal(result.actions, plain.actions)
        held.append(result.held)
    assert CEMConfig().hold_unless_better is False


def endpoint_cost(ops, target):
    """The closest any prefix of the sequence comes to `target`: min over h of ||cumsum(xyz)[h] - target||^2."""
    def cost(actions):  # [S, H, 7] -> [S]
        steps, total = [], None
        for h in range(actions.shape[1]):
            total = actions[:, h, :3] if total is None else total + actions[:, h, :3]
            err = total - ops.asarray(target, like=actions)
            steps.append(ops.sum(err * err, axis=-1))
        return ops.min(ops.stack(steps, axis=1), axis=1)
    return cost


@pytest.mark.parametrize("ops", [NUMPY_OPS, TORCH_OPS], ids=["numpy", "torch"])
def test_repeat_action_searches_one_action_held_for_the_horizon(ops):
    """A target 12 cm away, beyond a single 5 cm step: the held action heads straight at it, and every
    evaluated sequence is one action repeated."""
    target = np.array([0.12, -0.06, 0.0], np.float32)
    seen = []

    def cost(actions):
        seen.append(ops.to_numpy(actions).copy())
        return endpoint_cost(ops, target)(actions)

    config = CEMConfig(samples=200, iterations=8, topk=20, horizon=4, repeat_action=True, gripper_deadband=0.0)
    spec = ActionSpec()
    noise = sample_noise(config, spec, np.random.default_rng(5))
    assert noise.shape == (8, 200, 1, 4)  # the distribution is over one action
    result = cem(cost, config, spec, noise, ops)
    assert result.actions.shape == (4, 7) and result.mean.shape == (1, 4)
    np.testing.assert_array_equal(result.actions, np.repeat(result.actions[:1], 4, axis=0))
    for batch in seen:
        np.testing.assert_array_equal(batch, np.repeat(batch[:, :1], 4, axis=1))
    # some number of the held steps lands on the target
    reached = np.cumsum(result.actions[:, :3], axis=0)  # [H, 3]
    assert np.linalg.norm(reached - target, axis=1).min() < 0.01
    assert result.actions[0, 0] > 0.025 and result.actions[0, 1] < -0.01


def test_repeat_action_stops_at_a_workspace_wall():
    """Held steps that would cross the wall are shortened there (as the robot would stop)."""
    spec = ActionSpec(**WORKSPACE)
    seen = []

    def cost(actions):
        seen.append(actions.copy())
        return -actions[:, :, 0].sum(axis=1)  # go as far in x as possible

    config = CEMConfig(samples=50, iterations=2, topk=5, horizon=3, repeat_action=True)
    position = np.array([0.62, 0.0, 0.2])
    cem(cost, config, spec, sample_noise(config, spec, np.random.default_rng(6)), NUMPY_OPS, position=position)
    ends = position[0] + np.concatenate(seen)[:, :, 0].cumsum(axis=1)
    assert ends.max() <= 0.7 + 1e-6


def test_horizon_energy_last_or_min(tiny_wm, golden):
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    z0, z_goal = tiny_wm.encode(frames[0]), tiny_wm.encode(frames[2])
    actions = torch.from_numpy(np.array([[[0.05, 0, 0, 0, 0, 0, 0]] * 3, [[-0.03, 0.02, 0, 0, 0, 0, 0]] * 3],
                                        np.float32))  # [2, 3, 7]
    state_x = torch.from_numpy(state[None].astype(np.float32))
    imagined = tiny_wm.rollout(z0, state_x, actions)  # [2, 3, N, D]
    per_step = np.stack([tiny_wm.energy(imagined[:, h], z_goal).numpy() for h in range(3)], axis=1)  # [2, 3]
    np.testing.assert_allclose(tiny_wm.rollout_energy(z0, state_x, actions, z_goal).numpy(), per_step[:, -1], rtol=1e-6)
    np.testing.assert_allclose(tiny_wm.rollout_energy(z0, state_x, actions, z_goal, over="min").numpy(),
                               per_step.min(axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="'last' or 'min'"):
        tiny_wm.rollout_energy(z0, state_x, actions, z_goal, over="mean")


def test_planner_with_held_straight_line_plans(tiny_wm, golden):
    """repeat_action + min energy through the planner: a held [H, 7] plan, warm start and hold-unless-better
    work with the one-action distribution."""
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    config = CEMConfig(samples=32, iterations=2, topk=4, horizon=3, repeat_action=True, horizon_energy="min",
                       warm_start=True, keep_elites=0.5, hold_unless_better=True, seed=3)
    planner = CEMPlanner(tiny_wm, config)
    first = planner.plan_sequence(frames[0], state, frames[2])
    assert first.actions.shape == (3, 7) and first.mean.shape == (1, 4)
    assert first.held or np.array_equal(first.actions, np.repeat(first.actions[:1], 3, axis=0))
    np.testing.assert_array_equal(planner._previous_mean, first.mean)  # holding one action: the shift keeps it
    second = planner.plan_sequence(frames[1], state)
    assert second.actions.shape == (3, 7) and np.abs(second.actions[:, :3]).max() <= 0.05


def test_straight_line_options_are_validated():
    with pytest.raises(ValueError, match="horizon_energy"):
        CEMConfig(horizon_energy="mean")
    with pytest.raises(ValueError, match="repeat_action"):
        CEMConfig(repeat_action=1)
    assert CEMConfig().search_horizon == 1 and CEMConfig(horizon=4).search_horizon == 4
    assert CEMConfig(horizon=4, repeat_action=True).search_horizon == 1


def test_goal_change_weights_favour_the_tokens_the_goal_changes(tiny_wm, golden):
    frames = golden["frames_uint8"]
    z0, z_goal = tiny_wm.encode(frames[0]), tiny_wm.encode(frames[2])  # [1, N, D]
    d = (z0 - z_goal).abs().mean(-1)[0].numpy()  # [N]
    full = tiny_wm.goal_change_weights(z0, z_goal, 1.0).numpy()
    np.testing.assert_allclose(full.mean(), 1.0, rtol=1e-6)
    assert np.argmax(full) == np.argmax(d) and np.argmin(full) == np.argmin(d)
    np.testing.assert_allclose(tiny_wm.goal_change_weights(z0, z_goal, 0.0).numpy(), 1.0)
    half = tiny_wm.goal_change_weights(z0, z_goal, 0.5).numpy()
    np.testing.assert_allclose(half, 0.5 + 0.5 * full, rtol=1e-5)
    # uniform weights give the plain L1; the weighted energy is the weighted mean of per-token distances
    z = tiny_wm.encode(frames[1])
    np.testing.assert_allclose(tiny_wm.energy(z, z_goal, torch.ones(len(d))).numpy(), tiny_wm.energy(z, z_goal).numpy(),
                               rtol=1e-6)
    per_token = (z - z_goal).abs().mean(-1)[0].numpy()
    np.testing.assert_allclose(tiny_wm.energy(z, z_goal, torch.from_numpy(full)).numpy(),
                               [(per_token * full).mean()], rtol=1e-5)


def test_weighted_horizon_energy_last_or_min(tiny_wm, golden):
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    z0, z_goal = tiny_wm.encode(frames[0]), tiny_wm.encode(frames[2])
    weights = tiny_wm.goal_change_weights(z0, z_goal, 1.0)
    actions = torch.from_numpy(np.array([[[0.05, 0, 0, 0, 0, 0, 0]] * 3, [[-0.03, 0.02, 0, 0, 0, 0, 0]] * 3],
                                        np.float32))  # [2, 3, 7]
    state_x = torch.from_numpy(state[None].astype(np.float32))
    imagined = tiny_wm.rollout(z0, state_x, actions)  # [2, 3, N, D]
    per_step = np.stack([tiny_wm.energy(imagined[:, h], z_goal, weights).numpy() for h in range(3)], axis=1)
    np.testing.assert_allclose(tiny_wm.rollout_energy(z0, state_x, actions, z_goal, weights=weights).numpy(),
                               per_step[:, -1], rtol=1e-6)
    np.testing.assert_allclose(tiny_wm.rollout_energy(z0, state_x, actions, z_goal, over="min", weights=weights).numpy(),
                               per_step.min(axis=1), rtol=1e-6)


def test_planner_fixes_the_goal_change_weights_per_goal(tiny_wm, golden):
    """The weights come from the first frame planned toward a goal, stay for that goal (distances toward
    it stay comparable), and are made again for a new goal or episode; 0 plans the plain L1."""
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    planner = CEMPlanner(tiny_wm, CEMConfig(samples=16, iterations=2, topk=4, goal_change_weighting=1.0, seed=1))
    planner.set_goal(frames[2])
    planner.plan_sequence(frames[0], state)
    first = planner._token_weights.clone()
    z0, z1, z_goal = (tiny_wm.encode(frames[k]) for k in (0, 1, 2))
    np.testing.assert_allclose(first.numpy(), tiny_wm.goal_change_weights(z0, z_goal, 1.0).numpy())
    planner.plan_sequence(frames[1], state)
    assert torch.equal(planner._token_weights, first)
    np.testing.assert_allclose(planner.goal_distance(z1), float(tiny_wm.energy(z1, z_goal, first)[0]), rtol=1e-6)
    planner.set_goal(frames[1])
    assert planner._token_weights is None
    planner.plan_sequence(frames[0], state)
    assert not torch.equal(planner._token_weights, first)
    plain = CEMPlanner(tiny_wm, CEMConfig(samples=16, iterations=2, topk=4, seed=1))
    plain.set_goal(frames[2])
    plain.plan_sequence(frames[0], state)
    assert plain._token_weights is None
    assert plain.goal_distance(z1) == pytest.approx(float(tiny_wm.energy(z1, z_goal)[0]))
    with pytest.raises(ValueError, match="goal_change_weighting"):
        CEMConfig(goal_change_weighting=1.5)
