"""The one closed-loop controller: goal sequence, sub-goal advance, settling, patience, one encode per step."""

from __future__ import annotations

import numpy as np
import pytest

from jepa_ac.control import Controller
from jepa_ac.planning import ActionSpec
from jepa_ac.planning.cem import CEMResult
from jepa_ac.planning.defaults import MPCConfig


class ScriptedPlanner:
    """A planner whose observed distance to goal k follows a script; counts encodes and plans."""

    def __init__(self, distances: dict[int, list[float]]) -> None:
        self.distances = {k: list(v) for k, v in distances.items()}
        self.base_spec = ActionSpec(max_translation=0.05)
        self.goal = None
        self.encodes = self.plans = 0
        self.grippers: list = []

    def encode_frame(self, frame, what="frame"):
        self.encodes += 1
        return frame

    def set_goal_latent(self, latent, gripper=None):
        self.goal = int(latent[0, 0, 0])  # goal images are filled with their index
        self.grippers.append(gripper)

    def goal_distance(self, z):
        return self.distances[self.goal].pop(0)

    def plan_from_latent(self, z, state):
        self.plans += 1
        action = np.array([0.01, 0, 0, 0, 0, 0, 0], np.float32)
        return CEMResult(actions=action[None], mean=action[None], std=action[None],
                         elite_costs=np.array([[0.5]], np.float32), elites=None, evaluated=8)

    def reset(self):
        pass


def _goal(k: int) -> np.ndarray:
    return np.full((8, 8, 3), k, np.uint8)


def _obs(x: float = 0.5) -> dict:
    return {"image": np.zeros((8, 8, 3), np.uint8), "state": np.array([x, 0, 0.3, 3.1, 0, 0, 0], np.float32)}


def test_sub_goals_advance_then_patience_ends_on_the_goal():
    planner = ScriptedPlanner({0: [1.0, 0.8, 0.9], 1: [0.7, 0.6, 0.65, 0.66]})
    controller = Controller(planner, MPCConfig(patience=2, subgoal_patience=1, subgoal_max_steps=5))
    controller.set_goal([_goal(0), _goal(1)], gripper=[None, 1.0])
    steps = []
    for _ in range(10):
        out = controller.infer(_obs())
        steps.append((out["distance"], out["goal_index"], out["done"]))
        if out["done"]:
            assert out["action"] is None and "patience 2" in out["stop_reason"]
            break
    # goal 0: 1.0 (baseline), 0.8, 0.9 (no better: sub-goal done, goal 1 set); goal 1: 0.6 best, then 2 stale
    assert steps == [(1.0, 0, False), (0.8, 0, False), (0.9, 1, False), (0.7, 1, False), (0.6, 1, False),
                     (0.65, 1, False), (0.66, 1, True)]
    assert planner.grippers == [None, 1.0]  # each goal's gripper, set when it becomes current
    assert planner.encodes == 2 + len(steps)  # each goal once, then one encode per step
    assert planner.plans == len(steps) - 1  # the last step only observed: done


def test_settling_returns_to_the_best_state_before_moving_on():
    planner = ScriptedPlanner({0: [1.0, 0.5, 0.9, 0.9, 0.4]})
    mpc = MPCConfig(patience=1, return_to_best=True, return_tolerance=0.001, return_max_steps=2)
    controller = Controller(planner, mpc)
    controller.set_goal(_goal(0))
    assert not controller.infer(_obs(0.50))["settling"]
    assert not controller.infer(_obs(0.52))["settling"]  # best (0.5) seen at x = 0.52
    out = controller.infer(_obs(0.56))  # 0.9: patience 1 is up; settle back toward x = 0.52
    assert out["settling"] and not out["done"] and out["planner"]["returned"]
    assert out["action"][0] == pytest.approx(-0.04, abs=1e-6)
    out = controller.infer(_obs(0.53))  # one settling move made, not there yet: a second one
    assert out["settling"] and out["action"][0] == pytest.approx(-0.01, abs=1e-6)
    out = controller.infer(_obs(0.525))  # two settling moves: the cap, so the goal is done
    assert out["done"] and "returned toward the best state in 2 moves" in out["stop_reason"]
    assert planner.plans == 2


def test_observe_measures_without_planning_and_goals_are_checked():
    planner = ScriptedPlanner({0: [1.0, 0.9]})
    controller = Controller(planner, MPCConfig(patience=3))
    with pytest.raises(ValueError, match="no goal"):
        controller.infer(_obs())
    with pytest.raises(ValueError, match="2 values for 1 goals"):
        controller.set_goal(_goal(0), gripper=[0.0, 1.0])
    controller.set_goal(_goal(0))
    controller.infer(_obs())
    out = controller.observe(_obs())
    assert out["distance"] == 0.9 and out["action"] is None and planner.plans == 1
    with pytest.raises(ValueError, match="missing 'state'"):
        controller.infer({"image": _obs()["image"]})


def test_one_encode_per_step_with_a_real_world_model(tiny_wm, golden):
    """The real planner: encode calls counted on the world model."""
    from jepa_ac.planning import CEMConfig, CEMPlanner

    calls = []
    encode = tiny_wm.encode

    def counting_encode(frames, *args, **kwargs):
        calls.append(np.asarray(frames).shape)
        return encode(frames, *args, **kwargs)

    tiny_wm.encode = counting_encode
    try:
        planner = CEMPlanner(tiny_wm, CEMConfig(samples=8, iterations=1, topk=2, horizon=1))
        controller = Controller(planner, MPCConfig(patience=None))
        frames = golden["frames_uint8"]
        controller.set_goal([frames[1], frames[2]])
        assert len(calls) == 2
        for _ in range(3):
            out = controller.infer({"image": frames[0], "state": np.array([0.5, 0, 0.3, 3.1, 0, 0, 0])})
            assert out["action"].shape == (7,) and np.isfinite(out["distance"])
        assert len(calls) == 2 + 3
    finally:
        tiny_wm.encode = encode
