"""DROID pose conventions against scipy, on numpy and torch, vectorised."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from jepa_ac.model import pose


def random_states(n, seed=0):
    rng = np.random.default_rng(seed)
    states = np.concatenate(
        [rng.uniform(-0.5, 0.5, (n, 3)), rng.uniform([-np.pi, -1.4, -np.pi], [np.pi, 1.4, np.pi], (n, 3)),
         rng.uniform(0, 1, (n, 1))], axis=1)
    return states


def test_euler_matches_scipy():
    angles = random_states(200)[:, 3:6]
    np.testing.assert_allclose(pose.euler_xyz_to_matrix(angles), Rotation.from_euler("xyz", angles).as_matrix(),
                               atol=1e-12)
    matrices = Rotation.from_euler("xyz", angles).as_matrix()
    np.testing.assert_allclose(pose.matrix_to_euler_xyz(matrices), Rotation.from_matrix(matrices).as_euler("xyz"),
                               atol=1e-9)


def test_action_between_matches_upstream_definition():
    a, b = random_states(50, 1), random_states(50, 2)
    action = pose.action_between(a, b)
    for i in range(50):  # the upstream per-sample definition (poses_to_diff)
        r = Rotation.from_euler("xyz", b[i, 3:6]).as_matrix() @ Rotation.from_euler("xyz", a[i, 3:6]).as_matrix().T
        expected = np.concatenate([b[i, :3] - a[i, :3], Rotation.from_matrix(r).as_euler("xyz"), b[i, 6:] - a[i, 6:]])
        np.testing.assert_allclose(action[i], expected, atol=1e-9)


def test_apply_action_inverts_action_between():
    a, b = random_states(100, 3), random_states(100, 4)
    reached = pose.apply_action(a, pose.action_between(a, b))
    np.testing.assert_allclose(reached[:, :3], b[:, :3], atol=1e-12)
    np.testing.assert_allclose(reached[:, 6], b[:, 6], atol=1e-12)
    np.testing.assert_allclose(pose.euler_xyz_to_matrix(reached[:, 3:6]), pose.euler_xyz_to_matrix(b[:, 3:6]),
                               atol=1e-9)


def test_apply_action_clips_gripper():
    state = np.array([0, 0, 0, 0, 0, 0, 0.9])
    assert pose.apply_action(state, np.array([0, 0, 0, 0, 0, 0, 0.5]))[6] == 1.0
    assert pose.apply_action(state, np.array([0, 0, 0, 0, 0, 0, -2.0]))[6] == 0.0


def test_torch_matches_numpy_batched():
    a, b = random_states(64, 5), random_states(64, 6)
    act_np = pose.action_between(a, b)
    act_t = pose.action_between(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(act_t.numpy(), act_np, atol=1e-10)
    # leading batch dims [S, H, 7]
    seq = torch.from_numpy(random_states(24, 7).reshape(4, 6, 7))
    assert pose.actions_from_states(seq).shape == (4, 5, 7)


@pytest.mark.parametrize("bad", [np.zeros(6), np.zeros((2, 3))])
def test_wrong_shapes_fail(bad):
    with pytest.raises((IndexError, ValueError)):
        pose.apply_action(bad, bad)
