"""The fast planning path (cached rollout, vectorised pose) against the literal upstream reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jepa_ac.model import pose
from jepa_ac.planning.action_spec import ActionSpec
from jepa_ac.planning.cem import CEMConfig, sample_noise
from jepa_ac.planning.reference import compute_new_pose, fast_plan, reference_plan, same_elites

STATE = np.array([0.45, -0.05, 0.30, 3.0, 0.15, -0.4, 0.2], np.float32)


@pytest.fixture(scope="module")
def scene(tiny_wm, golden):
    frames = golden["frames_uint8"]  # [3, 64, 64, 3]
    return frames[0], tiny_wm.encode(frames[-1])  # current frame, goal latent [1, N, D]


def test_cached_rollout_equals_uncached_predictor(tiny_wm):
    rng = np.random.default_rng(1)
    z = tiny_wm.encode(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    state = torch.as_tensor(STATE[None])
    actions = torch.as_tensor(rng.normal(0, 0.04, (12, 3, 7)).astype(np.float32))  # [S, H, 7]
    slow = tiny_wm.rollout_uncached(z, state, actions)  # [S, H, N, D]: full predictor re-run per step
    for chunk in (None, 5):  # auto chunking and an uneven split
        tiny_wm.backend.rollout_chunk = chunk
        fast = tiny_wm.rollout(z, state, actions)
        assert fast.shape == slow.shape == (12, 3, tiny_wm.tokens_per_frame, 192)
        assert (fast - slow).abs().max().item() < 1e-4
    tiny_wm.backend.rollout_chunk = None
    # the cache really is used: a wrong earlier frame changes later predictions
    assert (tiny_wm.rollout(z, state, actions)[:, 1] - tiny_wm.rollout(z * 0.5, state, actions)[:, 1]).abs().max() > 1e-3


def test_rollout_workers_give_the_same_bits_as_one_thread(tiny_wm):
    """CPU planning runs sample chunks on worker threads of one torch thread each; how the samples are
    split (chunks of 4 samples or more) and where they run must not change a single bit of the predictions."""
    rng = np.random.default_rng(3)
    z = tiny_wm.encode(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    state = torch.as_tensor(STATE[None])
    actions = torch.as_tensor(rng.normal(0, 0.04, (50, 2, 7)).astype(np.float32))  # [S, H, 7]
    backend, caller_threads = tiny_wm.backend, torch.get_num_threads()
    try:
        backend.rollout_workers, backend.rollout_chunk = 1, 50
        whole = tiny_wm.rollout(z, state, actions)  # one call, the caller's thread
        for workers, chunk in ((3, None), (2, 9), (4, None)):
            backend.rollout_workers, backend.rollout_chunk = workers, chunk
            chunks = backend._sample_chunks(50, 66)
            assert len(chunks) > 1 and min(c.stop - c.start for c in chunks) >= 4, chunks
            assert torch.equal(tiny_wm.rollout(z, state, actions), whole), (workers, chunk)
        assert torch.get_num_threads() == caller_threads  # the workers' 1 thread stays theirs
    finally:
        backend.rollout_workers, backend.rollout_chunk = 1, None


def test_reference_pose_matches_vectorised_pose():
    rng = np.random.default_rng(2)
    states = rng.normal(0, 1, (50, 1, 7)).astype(np.float32)
    actions = rng.normal(0, 0.2, (50, 1, 7)).astype(np.float32)
    ref = compute_new_pose(torch.as_tensor(states), torch.as_tensor(actions))[:, 0].numpy()
    fast = pose.apply_action(states[:, 0], actions[:, 0])
    assert np.allclose(ref[:, :3], fast[:, :3], atol=1e-6) and np.allclose(ref[:, 6], fast[:, 6])
    rot = lambda a: pose.euler_xyz_to_matrix(a.astype(np.float64))  # noqa: E731  compare rotations, not angles
    assert np.allclose(rot(ref[:, 3:6]), rot(fast[:, 3:6]), atol=1e-5)


@pytest.mark.parametrize("horizon", [1, 2])
def test_fast_path_and_reference_choose_the_same_action(tiny_wm, scene, horizon):
    frame, goal = scene
    config = CEMConfig(samples=96, iterations=3, topk=8, horizon=horizon, seed=3)
    noise = sample_noise(config, ActionSpec(), np.random.default_rng(config.seed))
    ref = reference_plan(tiny_wm, frame, STATE, goal, config, noise)
    fast = fast_plan(tiny_wm, frame, STATE, goal, config, noise)
    assert same_elites(ref.elite_actions, fast.elite_actions)
    assert np.allclose(ref.elite_costs, fast.result.elite_costs, atol=1e-5)
    assert np.allclose(ref.actions, fast.result.actions, atol=1e-6)
    # different noise gives a different plan, so the comparison above can fail
    other = reference_plan(tiny_wm, frame, STATE, goal, config, noise[::-1].copy())
    assert not same_elites(ref.elite_actions, other.elite_actions)


def test_same_elites_ignores_order_but_not_content():
    a = np.random.default_rng(0).normal(size=(2, 4, 1, 7))
    assert same_elites(a, a[:, ::-1])
    b = a.copy()
    b[1, 2, 0, 0] += 1e-3
    assert not same_elites(a, b)


def test_reference_rejects_other_action_layouts(tiny_wm, scene):
    frame, goal = scene
    config = CEMConfig(samples=8, iterations=1, topk=2)
    spec = ActionSpec(frozen=())
    with pytest.raises(ValueError, match="action layout"):
        reference_plan(tiny_wm, frame, STATE, goal, config, sample_noise(config, spec, np.random.default_rng(0)), spec)


def test_mlx_fast_path_matches_torch_reference(tiny_wm, scene):
    pytest.importorskip("mlx.core")
    from jepa_ac.bench.parity import mlx_twin

    frame, goal = scene
    config = CEMConfig(samples=64, iterations=2, topk=8, horizon=1)
    noise = sample_noise(config, ActionSpec(), np.random.default_rng(0))
    ref = reference_plan(tiny_wm, frame, STATE, goal, config, noise)
    mlx_wm = mlx_twin(tiny_wm, "float32", compile=False)
    fast = fast_plan(mlx_wm, frame, STATE, mlx_wm.ops.asarray(goal.numpy()), config, noise)
    assert same_elites(ref.elite_actions, fast.elite_actions)
    assert np.allclose(ref.actions, fast.result.actions, atol=1e-5)


@pytest.mark.slow
def test_compiled_rollout_equals_eager(tiny_wm):
    rng = np.random.default_rng(4)
    z = tiny_wm.encode(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    state, actions = torch.as_tensor(STATE[None]), torch.as_tensor(rng.normal(0, 0.04, (8, 2, 7)).astype(np.float32))
    eager = tiny_wm.rollout(z, state, actions)
    weights = tiny_wm.backend.state_arrays("predictor")
    tiny_wm.backend.set_compile(True)
    try:
        compiled = tiny_wm.rollout(z, state, actions)
        # the graphs are frozen (weights as constants): weights loaded after compiling must still count
        tiny_wm.backend.load_arrays("predictor", {k: 1.1 * v for k, v in weights.items()})
        reloaded = tiny_wm.rollout(z, state, actions)
        tiny_wm.backend.set_compile(False)
        eager_reloaded = tiny_wm.rollout(z, state, actions)
    finally:
        tiny_wm.backend.set_compile(False)
        tiny_wm.backend.load_arrays("predictor", weights)
    assert (compiled - eager).abs().max().item() < 1e-4
    assert (reloaded - eager_reloaded).abs().max().item() < 1e-4 < (reloaded - eager).abs().max().item()
