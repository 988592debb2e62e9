"""`python -m jepa_ac.energy_landscape` on the upstream tiny fixture and on one of our folders."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES
from planning_helpers import restore_torch_threads, write_tiny_model  # noqa: F401

from jepa_ac import energy_landscape
from jepa_ac.model.pose import action_between

TRAJ = FIXTURES / "franka_example_traj.npz"
UPSTREAM = ["--checkpoint", str(FIXTURES / "vjepa2_ac_tiny.pt"), "--arch", str(FIXTURES / "vjepa2_ac_tiny.json")]


def run(out, *args):
    return energy_landscape.main(["--traj", str(TRAJ), "--out", str(out), "--threads", "1", *args])


def test_upstream_fixture_grid_true_action_and_argmin(tmp_path, franka_traj):
    result = run(tmp_path, *UPSTREAM, "--pair", "0", "1", "--axes", "xy", "--extent", "0.1", "--grid", "5")
    saved = json.loads((tmp_path / "landscape_xy.json").read_text())
    assert saved["argmin"] == result["argmin"]
    energy, values = np.array(saved["energy"]), np.array(saved["values"])
    assert energy.shape == (5, 5) and np.all(np.isfinite(energy))
    np.testing.assert_allclose(values, np.linspace(-0.1, 0.1, 5), atol=1e-7)
    states = franka_traj["states"][0].astype(np.float64)
    true = action_between(states[0], states[1])
    np.testing.assert_allclose(saved["true_action"], true, atol=1e-6)
    assert saved["true"]["dx"] == pytest.approx(true[0], abs=1e-6) and saved["true"]["dy"] == pytest.approx(true[1], abs=1e-6)
    # argmin marker = the grid's minimum; energy[r][c] is at (dx=values[c], dy=values[r])
    r, c = np.unravel_index(np.argmin(energy), energy.shape)
    assert (saved["argmin"]["dx"], saved["argmin"]["dy"]) == pytest.approx((values[c], values[r]))
    assert saved["argmin"]["energy"] == pytest.approx(energy.min())
    # other dims held at the true action's values, so the true point's energy matches a grid query there
    assert saved["base_action"] == pytest.approx(saved["true_action"]) and "true action values" in saved["others"]
    assert saved["true"]["inside_grid"] is True and saved["true"]["energy"] >= energy.min() - 1e-6
    assert Image.open(tmp_path / "landscape_xy.png").size[0] > 300


def test_grid_energies_match_single_action_queries(tiny_wm, franka_traj):
    frames, states = franka_traj["observations"][0], franka_traj["states"][0]
    true = action_between(states[0].astype(np.float64), states[1].astype(np.float64)).astype(np.float32)
    values = np.array([-0.05, 0.0, 0.05], np.float32)
    grid = energy_landscape.landscape(tiny_wm, frames[0], frames[1], states[0], true, (0, 2), values, batch=4)
    action = true.copy()
    action[0], action[2] = values[2], values[0]  # column 2 (dx=+0.05), row 0 (dz=-0.05)
    single = energy_landscape._energy_at(tiny_wm, frames[0], frames[1], states[0], action)
    assert grid[0, 2] == pytest.approx(single, rel=1e-5)
    assert len(np.unique(np.round(grid, 7))) > 1  # the energy depends on the action


def test_our_folder_xz_with_other_dims_zero(tmp_path):
    folder = write_tiny_model(tmp_path / "tiny")
    result = run(tmp_path / "out", "--checkpoint", str(folder), "--axes", "xz", "--grid", "4", "--extent", "0.05",
                 "--others", "zero")
    assert result["axes"] == ["dx", "dz"] and result["base_action"] == [0.0] * 7 and "zero" in result["others"]
    assert np.array(result["energy"]).shape == (4, 4)
    assert result["true"]["inside_grid"] is False  # the recorded step is ~9 cm in x: marked at the edge
    assert (tmp_path / "out" / "landscape_xz.png").is_file()


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit, match="outside the trajectory"):
        run(tmp_path, *UPSTREAM, "--pair", "0", "5")
    with pytest.raises(SystemExit, match="trajectory not found"):
        energy_landscape.main(["--traj", str(tmp_path / "none.npz"), *UPSTREAM])


def test_heatmap_marks_the_true_action_and_the_argmin(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(energy_landscape, "plot", lambda path, energy, values, axes, true_xy, argmin_xy, title:
                        drawn.update(energy=energy, true=true_xy, argmin=argmin_xy, axes=axes))
    result = run(tmp_path, *UPSTREAM, "--axes", "xz", "--grid", "3")
    assert drawn["axes"] == "xz"
    assert drawn["true"] == pytest.approx((result["true"]["dx"], result["true"]["dz"]))
    assert drawn["argmin"] == pytest.approx((result["argmin"]["dx"], result["argmin"]["dz"]))
    assert np.min(drawn["energy"]) == pytest.approx(result["argmin"]["energy"])
