"""`experiments/push_directions/ball_step.py`: steps on the L1 / Euclidean ball (not shipped), plugged into the
planner as an `ActionSpec` subclass; the recorded planning file that names it still runs through the script."""

import json

import numpy as np
import pytest

from planning_helpers import TINY_PLANNING, load_experiment, restore_torch_threads, write_tiny_model  # noqa: F401

from jepa_ac.model.array_ops import NUMPY_OPS
from jepa_ac.model.nn_torch.ops import TORCH_OPS

ball_step = load_experiment("push_directions/ball_step.py")


def test_l1_ball():
    spec = ball_step.BallStepSpec(ball="l1")
    free = np.array([[0.05, 0.05, 0.05, 0.0], [0.01, 0.0, 0.0, 2.0]], dtype=np.float32)
    out = spec.constrain(free, NUMPY_OPS)
    assert np.abs(out[0, :3]).sum() == pytest.approx(0.05)
    np.testing.assert_allclose(out[1], [0.01, 0, 0, 0.75])
    state = np.array([0.5, 0.0, 0.3, np.pi, 0.0, 0.0, 0.2])
    move = spec.move_toward(state, np.array([0.6, 0.05, 0.28, np.pi, 0.0, 0.0, 1.0]))
    assert np.abs(move[:3]).sum() == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("ops", [NUMPY_OPS, TORCH_OPS], ids=["numpy", "torch"])
def test_l2_ball_moves_as_far_in_every_direction(ops):
    spec = ball_step.BallStepSpec(ball="l2")
    free = np.array([[0.05, 0.05, 0.05, 0.0], [0.01, 0.0, 0.0, 2.0], [0.2, -0.1, 0.0, 0.0]], dtype=np.float32)
    out = ops.to_numpy(spec.constrain(ops.asarray(free), ops))
    np.testing.assert_allclose(np.linalg.norm(out[[0, 2], :3], axis=1), 0.05, rtol=1e-5)  # onto the ball
    np.testing.assert_allclose(out[0, :3], 0.05 / np.sqrt(3), rtol=1e-5)  # direction kept
    np.testing.assert_allclose(out[2, :2] / np.linalg.norm(out[2, :2]), [2 / np.sqrt(5), -1 / np.sqrt(5)], rtol=1e-5)
    np.testing.assert_allclose(out[1], [0.01, 0, 0, 0.75])  # inside: unchanged; gripper clipped
    move = spec.move_toward(np.zeros(7), np.array([0.1, 0.1, 0.0, 0, 0, 0, 0.0]))
    assert np.linalg.norm(move[:3]) == pytest.approx(0.05, rel=1e-5) and move[0] == pytest.approx(move[1])


def test_the_ball_survives_the_gripper_held_from_a_goal():
    from jepa_ac.planning import ActionSpec

    spec = ball_step.BallStepSpec.of(ActionSpec(max_translation=0.035), "l2")
    held = spec.holding_gripper(1.0)
    assert isinstance(held, ball_step.BallStepSpec) and held.ball == "l2" and held.max_translation == 0.035
    with pytest.raises(ValueError, match="ball"):
        ball_step.BallStepSpec(ball="box")


def test_the_recorded_planning_file_runs_through_the_script_only(tmp_path):
    """The recorded file names the ball for push: plain evaluate refuses it (saying where it went), the
    script takes the ball from it and evaluates with it."""
    from jepa_ac import evaluate

    planning = json.loads(json.dumps(TINY_PLANNING))
    planning["env_overrides"]["jepa_ac/FrankaPush-v0"] = {"action": {"translation_constraint": "l2"}}
    stripped, balls = ball_step.split_balls(planning)
    assert balls == {"jepa_ac/FrankaPush-v0": "l2"} and "translation_constraint" not in json.dumps(stripped)
    assert "translation_constraint" in json.dumps(planning)  # the caller's dict is left as it was
    folder = write_tiny_model(tmp_path / "tiny", planning=planning)
    common = ["--checkpoint", str(folder), "--env", "push", "--episodes", "1", "--threads", "1", "--no-progress",
              "--mpc", "max_steps=2", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="translation_constraint='l2' is no longer a planner option: .*ball_step.py"):
        evaluate.main(common)
    assert ball_step.main(common) == 0
    row = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]["jepa_ac/FrankaPush-v0|planner"]
    assert row["make_planner"] == "BallStepPlanner(ball='l2')" and row["episodes"] == 1
