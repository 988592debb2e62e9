"""`python -m jepa_ac.bench action_inference`: argmin of the predicted and the true energy over an action grid."""

import json

import numpy as np
import pytest

from planning_helpers import restore_torch_threads, write_tiny_model  # noqa: F401

from jepa_ac.bench import action_inference


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return write_tiny_model(root / "a", seed=0), write_tiny_model(root / "b", seed=1)


def test_candidate_grid_is_symmetric_and_translation_only():
    grid = action_inference.candidate_actions(0.02, 0.01)
    assert grid.shape == (25, 7) and np.all(grid[:, 2:] == 0)
    assert sorted(set(np.round(grid[:, 0], 6))) == [-0.02, -0.01, 0.0, 0.01, 0.02]
    assert np.any(np.all(grid == 0, axis=1))  # holding still is a candidate


def test_compares_models_on_the_same_states_against_the_true_frames(tiny_folders, tmp_path):
    a, b = tiny_folders
    out = tmp_path / "ai"
    action_inference.main(["--checkpoint", str(a), "--compare", str(b), "--states", "2", "--grid-extent", "0.02",
                           "--grid-step", "0.01", "--max-offset", "0.02", "--min-steps", "2", "--max-steps", "3",
                           "--image-size", "64", "--threads", "1", "--out", str(out)])
    result = json.loads((out / "action_inference.json").read_text())
    assert [r["checkpoint"] for r in result["rows"]] == [str(a), str(b)]
    for row in result["rows"]:
        assert len(row["per_case"]) == 2
        for case in row["per_case"]:
            # errors are distances between points of a 5x5 grid (1 cm apart) and offsets within +-2 cm
            assert 0 <= case["predicted_error_cm"] <= 100 * 0.02 * 2 ** 0.5 * 2 + 1e-6
            assert 0 <= case["true_error_cm"] <= 100 * 0.02 * 2 ** 0.5 * 2 + 1e-6
    # both models saw the same states: the same TCP-object distances
    assert [c["tcp_object_xy"] for c in result["rows"][0]["per_case"]] == \
        [c["tcp_object_xy"] for c in result["rows"][1]["per_case"]]
    # different random encoders: each measured its own true-frame reference
    assert result["rows"][0]["encoder_sha256"] != result["rows"][1]["encoder_sha256"]
    md = (out / "action_inference.md").read_text()
    assert "predicted / true" in md and str(a) in md


def test_true_reference_finds_the_executed_action_when_it_is_on_the_grid(tiny_folders):
    """An offset on the grid is recovered exactly by the true-frame energy (its frame is the goal frame)."""
    import gymnasium as gym

    import jepa_ac
    import jepa_ac.envs  # noqa: F401

    env = gym.make("jepa_ac/FrankaPush-v0", image_size=64)
    cases = action_inference.sample_states(env, 2, seed=0, noise=0.3, steps=(2, 3), max_offset=0.02)
    grid = action_inference.candidate_actions(0.02, 0.01)
    wm = jepa_ac.load_world_model(tiny_folders[0])
    for case in cases:
        case["offset"] = grid[7].copy()  # (-0.01, 0.0): re-run the goal with an on-grid action
        env.unwrapped.restore(case["snapshot"])
        case["goal"] = env.step(case["offset"])[0]["image"]
        env.unwrapped.restore(case["snapshot"])
    run = action_inference.evaluate_model(wm, env, cases, grid, with_true=True)
    assert all(r["true_error_cm"] == 0.0 for r in run["per_case"])
    env.close()


def test_bad_arguments_are_rejected(tiny_folders, tmp_path):
    with pytest.raises(SystemExit, match="states"):
        action_inference.main(["--states", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="grid-step"):
        action_inference.main(["--grid-step", "0.1", "--grid-extent", "0.05", "--out", str(tmp_path)])


def test_models_sharing_an_encoder_share_the_true_reference(tiny_folders, tmp_path):
    """Same encoder weights, another predictor: the true errors are reused, not re-measured (and equal)."""
    import shutil

    from safetensors.numpy import load_file, save_file

    a, b = tiny_folders
    mixed = tmp_path / "mixed"
    shutil.copytree(b, mixed)
    weights_a, weights_b = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    save_file({k: (weights_a if k.startswith("encoder.") else weights_b)[k] for k in weights_b},
              str(mixed / "model.safetensors"))
    out = tmp_path / "ai"
    action_inference.main(["--checkpoint", str(a), "--compare", str(mixed), "--states", "2", "--grid-extent", "0.02",
                           "--grid-step", "0.01", "--max-offset", "0.02", "--min-steps", "2", "--max-steps", "3",
                           "--image-size", "64", "--threads", "1", "--out", str(out)])
    rows = json.loads((out / "action_inference.json").read_text())["rows"]
    assert rows[0]["encoder_sha256"] == rows[1]["encoder_sha256"]
    assert [c["true_error_cm"] for c in rows[0]["per_case"]] == [c["true_error_cm"] for c in rows[1]["per_case"]]
    assert rows[1]["wall_s"] < rows[0]["wall_s"]  # no frames re-rendered and re-encoded
