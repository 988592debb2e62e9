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


def _state(x: float, y: float = 0.0, z: float = 0.3) -> np.ndarray:
    return np.array([x, y, z, 3.1, 0, 0, 0], np.float64)


def test_pattern_search_walks_to_the_observed_minimum():
    """mpc.refine's search on an L1 bowl 3.5 / -2 / 1 cm off: probes of 2, then 1, then 0.5 cm find it."""
    from jepa_ac.control.controller import PatternSearch

    optimum = _state(0.535, -0.02, 0.31)

    def distance(state):
        return float(np.abs(state[:3] - optimum[:3]).sum())

    start = _state(0.5)
    search = PatternSearch(start, distance(start), MPCConfig(refine_steps=60))
    for probes in range(1, 61):
        reached = search.target()  # the probe lands where it aimed
        assert np.abs(reached[:3] - search.center[:3]).max() == pytest.approx(search.step)
        if search.observe(distance(reached), reached):
            break
    np.testing.assert_allclose(search.center[:3], optimum[:3], atol=1e-9)
    assert search.step < 0.005 and probes < 40
    short = PatternSearch(start, distance(start), MPCConfig(refine_steps=3))
    assert [short.observe(distance(short.target()), short.target()) for _ in range(3)] == [False, False, True]


def test_refine_grasps_probes_the_approach_then_settles_at_its_best():
    """refine="grasps": the open goal before the closed one (not the first open goal) is refined once
    it is done; a probe nearer the goal becomes the centre and its direction is tried again; then the
    schedule settles at the best state and moves on to the grasp."""
    from jepa_ac.control.controller import GoalSchedule

    mpc = MPCConfig(subgoal_patience=1, refine="grasps", refine_steps=4, return_tolerance=0.001)
    schedule = GoalSchedule(mpc, 3, grippers=[0.0, 0.0, 1.0])
    schedule.baseline(1.0, _state(0.5))
    assert schedule.observe(1.2, _state(0.52)) is None and schedule.refine_target is None  # goal 0: no probes
    assert schedule.advance() and schedule.goal_index == 1
    schedule.observe(0.8, _state(0.5))
    schedule.observe(0.9, _state(0.51))  # done: refine around the best state (x = 0.5)
    np.testing.assert_allclose(schedule.refine_target[:3], [0.52, 0.0, 0.3])
    schedule.observe(0.7, _state(0.52))  # nearer: the new centre, the same direction again
    np.testing.assert_allclose(schedule.refine_target[:3], [0.54, 0.0, 0.3])
    schedule.observe(0.75, _state(0.54))  # farther: the next direction (+y; -x leads back)
    np.testing.assert_allclose(schedule.refine_target[:3], [0.52, 0.02, 0.3])
    schedule.observe(0.9, _state(0.52, 0.02))
    assert not schedule.advance()
    schedule.observe(0.9, _state(0.52, -0.02))  # the 4th probe: done, settle at the best (x = 0.52)
    assert schedule.refine_target is None
    np.testing.assert_allclose(schedule.return_target[:3], [0.52, 0.0, 0.3])
    assert schedule.observe(0.7, _state(0.52)) is None and schedule.advance() and schedule.goal_index == 2
    assert schedule.refine_target is None and schedule.return_target is None


def test_controller_sends_probe_moves_while_refining():
    planner = ScriptedPlanner({0: [1.0, 0.8, 0.9, 0.95, 0.7]})
    controller = Controller(planner, MPCConfig(patience=1, refine="all", refine_steps=2))
    controller.set_goal(_goal(0))
    controller.infer(_obs(0.50))
    controller.infer(_obs(0.50))  # 0.8: the best, at x = 0.5
    out = controller.infer(_obs(0.51))  # 0.9: patience is up: probe +2 cm from x = 0.5
    assert out["refining"] and out["planner"]["refined"] and not out["done"]
    assert out["action"][0] == pytest.approx(0.01, abs=1e-6)
    assert planner.plans == 2
    out = controller.infer(_obs(0.52))  # 0.95: worse: probe -x
    assert out["refining"] and out["action"][0] == pytest.approx(-0.04, abs=1e-6)  # to 0.48, within 5 cm
    out = controller.infer(_obs(0.48))  # 0.7: nearer, the budget is spent: done (already at the best)
    assert out["done"] and out["action"] is None
    with pytest.raises(ValueError, match="refine must be one of"):
        MPCConfig(refine="always")
    with pytest.raises(ValueError, match="refine_min_step .* must not exceed"):
        MPCConfig(refine_step=0.01, refine_min_step=0.02)
