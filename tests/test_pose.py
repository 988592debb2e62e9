"""DROID pose conventions against scipy, on numpy and torch, vectorised; the layout's names and checks."""

import re
from pathlib import Path

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


def test_layout_names_agree_with_state_and_action_names():
    assert pose.STATE_NAMES[pose.POSITION] == ("x", "y", "z")
    assert pose.STATE_NAMES[pose.ROTATION] == ("roll", "pitch", "yaw")
    assert pose.STATE_NAMES[pose.CARTESIAN] == pose.STATE_NAMES[pose.POSITION] + pose.STATE_NAMES[pose.ROTATION]
    assert pose.STATE_NAMES[pose.GRIPPER] == "gripper"
    assert pose.STATE_NAMES[pose.GRIPPER_COLUMN] == ("gripper",)
    assert pose.ACTION_NAMES[pose.POSITION] == ("dx", "dy", "dz")
    assert pose.ACTION_NAMES[pose.ROTATION] == ("droll", "dpitch", "dyaw")
    assert pose.ACTION_NAMES[pose.GRIPPER] == "dgripper"
    assert all(a == "d" + s for s, a in zip(pose.STATE_NAMES, pose.ACTION_NAMES, strict=True))
    # position, rotation and gripper cover every dim once
    dims = range(pose.STATE_DIM)
    assert [*dims[pose.POSITION], *dims[pose.ROTATION], pose.GRIPPER] == list(dims)


@pytest.mark.parametrize("backend", ["numpy", "torch", "mlx"])
def test_layout_names_index_every_backend(backend):
    states = random_states(4, 8).reshape(2, 2, 7).astype(np.float32)  # [B, T, 7]; MLX has no float64
    x = {"numpy": np.asarray, "torch": torch.from_numpy, "mlx": lambda a: pytest.importorskip("mlx.core").array(a)}
    x = x[backend](states)
    for part, width in ((pose.POSITION, 3), (pose.ROTATION, 3), (pose.CARTESIAN, 6), (pose.GRIPPER_COLUMN, 1)):
        np.testing.assert_array_equal(np.asarray(x[..., part]), states[..., part])
        assert tuple(x[..., part].shape) == (2, 2, width)
    np.testing.assert_array_equal(np.asarray(x[..., pose.GRIPPER]), states[..., 6])


def test_check_shape_names_the_layout():
    state = np.zeros(7)
    assert pose.check_shape(state) is state
    assert pose.check_shape(np.zeros((3, 7)), batch=True).shape == (3, 7)
    assert pose.check_shape(torch.zeros(2, 5, 7), batch=True).shape == (2, 5, 7)
    with pytest.raises(ValueError, match=r"^state must have shape \[7\] = \[x, y, z, roll, pitch, yaw, gripper\], "
                                         r"got \[6\]$"):
        pose.check_shape(np.zeros(6))
    with pytest.raises(ValueError, match=r"got \[2, 7\]"):
        pose.check_shape(np.zeros((2, 7)))  # one state, not a batch
    with pytest.raises(ValueError, match=r"^goal must have shape \[\.\.\., 7\] = \[dx, .*dgripper\], got \[\]$"):
        pose.check_shape(np.float64(1.0), "goal", batch=True, names=pose.ACTION_NAMES)
    with pytest.raises(ValueError, match=r"got \[7, 2\]"):
        pose.check_states(np.zeros((7, 2)))


def test_check_action():
    action = pose.check_action([0.01, 0, 0, 0, 0, 0.1, 1])
    assert action.dtype == np.float64 and action.shape == (7,)
    with pytest.raises(ValueError, match=r"^action must have shape \[7\] = \[dx, dy, dz, droll, dpitch, dyaw, dgripper\]"):
        pose.check_action(np.zeros((1, 7)))
    with pytest.raises(ValueError, match=r"^move: dyaw = inf is not finite"):
        pose.check_action([0, 0, 0, 0, 0, np.inf, np.nan], "move")


# The layout's raw indices on a state or action, as they were written before pose.py named them:
# `x[:3]`, `x[3:6]`, `x[6]`, `x[..., :3]`, `x[:, 6]`, `x[6:7]`, ... (an index right after a name or bracket,
# so shape comments like `# [6]` do not count).
RAW_LAYOUT_INDEX = re.compile(r"(?<=[\w\])])\[(?:\.\.\.,\s*|:,\s*)?(?::3|0:3|3:6|6|3:|:6|0:6|6:|6:7)\]")
# (path, code on the line, why it is not a 7-D state or action)
NOT_A_POSE = [
    ("jepa_ac/model/preprocess.py", "array[..., :3]", "an RGBA image's colour channels"),
    ("jepa_ac/robot/adapters.py", "image[..., :3]", "a BGRA camera image's colour channels"),
    ("jepa_ac/planning/reference.py", "samples[:, :3]",
     "upstream's 4-D free dims [dx, dy, dz, dgripper], written as upstream writes them"),
    ("jepa_ac/planning/reference.py", "mean[..., :3]", "upstream's 4-D CEM mean over [dx, dy, dz, dgripper]"),
    ("jepa_ac/data/gym_source.py", 'obs["observation"][:3]', "gymnasium-robotics Fetch's observation, in a docstring"),
]


def test_only_pose_py_indexes_the_layout_by_number():
    package = Path(__file__).resolve().parents[1] / "jepa_ac"
    hits, used = [], set()
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()
        if rel == "jepa_ac/model/pose.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not RAW_LAYOUT_INDEX.search(line):
                continue
            allowed = [entry for entry in NOT_A_POSE if entry[0] == rel and entry[1] in line]
            used.update(allowed)
            if not allowed:
                hits.append(f"{rel}:{number}: {line.strip()}")
    assert not hits, ("index states and actions with jepa_ac.model.pose's POSITION, ROTATION, CARTESIAN, GRIPPER, "
                      "GRIPPER_COLUMN (or add a non-pose hit to NOT_A_POSE with a reason):\n" + "\n".join(hits))
    assert not set(NOT_A_POSE) - used, f"NOT_A_POSE entries that match nothing: {sorted(set(NOT_A_POSE) - used)}"
