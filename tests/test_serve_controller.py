"""The one planning stack behind the server: the controller with the model's own planning settings,
selected per task, sub-goals and settling as in-process, and `python -m jepa_ac.serve` without flags."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jepa_ac.serving.client import PlannerClient, PlannerError
from jepa_ac.control import Controller
from jepa_ac.planning.defaults import MPCConfig, PlanningDefaults
from jepa_ac.serving.server import ControllerFactory, PlanningServer, ServerConfig, ServerThread

ROOT = Path(__file__).resolve().parents[1]
PLANNING = {
    "format": "jepa_ac.planning", "version": 1, "env_id": "jepa_ac/FrankaReach-v0",
    "cem": {"samples": 8, "iterations": 1, "topk": 2, "horizon": 1},
    "mpc": {"max_steps": 12, "patience": 2, "subgoal_patience": 1, "subgoal_max_steps": 2, "return_to_best": True,
            "return_max_steps": 1},
    "env_overrides": {"jepa_ac/FrankaPush-v0": {"cem": {"samples": 12}, "mpc": {"subgoals": True}}},
}


def _obs(frames, k, x=0.5):
    return {"image": frames[k % len(frames)], "state": np.array([x, 0.0, 0.3, 3.1, 0, 0, 0], np.float32)}


def test_subgoals_and_settling_through_the_server_match_in_process(tiny_wm, golden):
    """The same goal sequence, observations and seed: the server's replies (action, distance, goal index,
    settling, done) equal the in-process controller's, step by step."""
    defaults = PlanningDefaults.from_dict(PLANNING)
    factory = ControllerFactory(tiny_wm, defaults)
    frames, goals = golden["frames_uint8"], [golden["frames_uint8"][1], golden["frames_uint8"][2]]
    local = factory("push")
    local.reset(7)
    local.set_goal(goals, [None, 1.0])
    with ServerThread(PlanningServer(factory, ServerConfig(port=0))) as url, PlannerClient(url) as client:
        assert client.metadata()["tasks"] == sorted(defaults.task_names())
        client.task, client.seed = "push", 7
        reply = client.reset()
        assert reply["planning"]["cem"]["samples"] == 12 and reply["planning"]["mpc"]["subgoals"] is True
        client.set_goal(goals, [None, 1.0])
        seen = set()
        for k in range(12):
            a, b = local.infer(_obs(frames, k, 0.5 + 0.01 * k)), client.infer(_obs(frames, k, 0.5 + 0.01 * k))
            for key in ("distance", "goal_index", "num_goals", "settling", "done", "stop_reason"):
                assert a[key] == pytest.approx(b[key]), (k, key)
            if a["action"] is None:
                assert b["action"] is None
                break
            np.testing.assert_allclose(b["action"], np.asarray(a["action"], np.float32), atol=1e-7)
            seen.add((a["goal_index"], a["settling"]))
        assert (1, False) in seen and any(settling for _, settling in seen)  # moved on, and settled
        assert a["done"] and "patience" in a["stop_reason"]
        final = client.observe(_obs(frames, 0))
        assert final["done"] and final["distance"] > 0


def test_unknown_task_and_plain_policies(tiny_wm, golden):
    from jepa_ac.planning import CEMConfig
    from jepa_ac.serving.server import make_planning_policy_factory

    factory = ControllerFactory(tiny_wm, PlanningDefaults.from_dict(PLANNING))
    with ServerThread(PlanningServer(factory, ServerConfig(port=0))) as url, PlannerClient(url) as client:
        with pytest.raises(PlannerError, match=r"unknown task 'wipe'.*'push'"):
            client.reset(task="wipe")
        with pytest.raises(PlannerError, match="one closedness"):
            client.set_goal([golden["frames_uint8"][0]] * 2, [0.0])
    plain = make_planning_policy_factory(tiny_wm, CEMConfig(samples=8, iterations=1, topk=2))
    with ServerThread(PlanningServer(plain, ServerConfig(port=0))) as url, PlannerClient(url) as client:
        with pytest.raises(PlannerError, match="does not pick settings by 'task'"):
            client.reset(task="push")
        client.set_goal(golden["frames_uint8"][1])
        assert client.infer(_obs(golden["frames_uint8"], 0))["action"].shape == (7,)
        observed = client.observe(_obs(golden["frames_uint8"], 0))  # a plain policy has no schedule to report
        assert observed["done"] is False and "distance" not in observed


def test_serve_without_flags_serves_the_default_model_and_its_planning(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "jepa_ac.serve", "--port", "0", "--log-level", "WARNING"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "listening on" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
        assert "listening on" in line, line
        url = line.split("listening on", 1)[1].strip()
        shipped = PlanningDefaults.for_checkpoint(ROOT / "jepa_ac/assets/default_model")
        with PlannerClient(url) as client:
            meta = client.metadata()
            assert meta["policy"]["planning"] == shipped.for_task(None).to_dict()
            assert "push" in meta["tasks"]
            assert client.reset(task="push")["planning"] == shipped.for_task("push").to_dict()
            image = np.zeros((128, 128, 3), np.uint8)
            client.set_goal([image, image], [None, 1.0])
            out = client.infer({"image": image, "state": np.array([0.5, 0, 0.3, 3.1, 0, 0, 0], np.float32)})
            assert out["action"].shape == (7,) and out["num_goals"] == 2 and out["goal_index"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_controller_metadata_names_its_settings(tiny_wm):
    d = PlanningDefaults.from_dict(PLANNING)
    controller = ControllerFactory(tiny_wm, d)("push")
    assert isinstance(controller, Controller) and controller.metadata()["planning"] == d.for_task("push").to_dict()
    assert controller.mpc == d.for_task("push").mpc and isinstance(controller.mpc, MPCConfig)


def test_robot_command_drives_the_simulator_through_the_server(tmp_path):
    """`python -m jepa_ac.robot --robot sim:<env>`: the robot path (client, safety, run_episode) on the sim."""
    import jepa_ac
    from jepa_ac.robot.__main__ import main as robot_main
    from planning_helpers import TINY_PLANNING, write_tiny_model

    folder = write_tiny_model(tmp_path / "model", planning=TINY_PLANNING)
    wm = jepa_ac.load_world_model(folder)
    factory = ControllerFactory(wm, PlanningDefaults.for_checkpoint(folder))
    with ServerThread(PlanningServer(factory, ServerConfig(port=0))) as url:
        record = robot_main(["--server", url, "--robot", "sim:reach", "--seed", "1", "--max-steps", "2",
                             "--out", str(tmp_path / "out")])
        with pytest.raises(ValueError, match="--robot must be"):
            robot_main(["--server", url, "--robot", "ur5"])
    assert record["steps"] == 2 and record["status"] == "max_steps" and record["task"] == "jepa_ac/FrankaReach-v0"
    assert len(record["per_step"]["latent_distance"]) == 2 and record["final_latent_distance"] is not None
    assert (tmp_path / "out" / "episode.json").is_file()


def test_rounds_of_way_points_through_the_server_match_in_process(tiny_wm):
    """A simulated push with two rounds of way-points (the client asks the env for the second round and
    hands it to the server's controller as a new goal sequence): the same actions as in process."""
    from jepa_ac.control.closed_loop import make_env, run_closed_loop
    from jepa_ac.planning.defaults import EnvOptions

    defaults = PlanningDefaults.from_dict(PLANNING)
    factory = ControllerFactory(tiny_wm, defaults)
    mpc = MPCConfig(max_steps=14, patience=1, subgoals=True, subgoal_patience=1, subgoal_max_steps=1, subgoal_rounds=2)
    env = make_env("jepa_ac/FrankaPush-v0", EnvOptions(image_size=tiny_wm.image_size))
    here = run_closed_loop(env, factory("push"), seed=5, mpc=mpc)  # planners seeded by the task's cem.seed
    with ServerThread(PlanningServer(factory, ServerConfig(port=0))) as url, PlannerClient(url) as client:
        client.task = "push"
        there = run_closed_loop(env, client, seed=5, mpc=mpc)
    env.close()
    assert here.rounds == there.rounds == 2 and here.goal_indices == there.goal_indices
    np.testing.assert_allclose(np.array(there.actions), np.array(here.actions), atol=1e-6)
