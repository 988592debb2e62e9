"""`python -m jepa_ac.plan` closed loop in the 64 px reach env with a tiny random model; planning.json; stop rules."""

import json

import numpy as np
import pytest
from PIL import Image

from planning_helpers import IMAGE_SIZE, TINY_PLANNING, restore_torch_threads, write_tiny_model  # noqa: F401

from jepa_ac import plan
from jepa_ac.cli import args as cli_args
from jepa_ac.cli import goals
from jepa_ac.control.closed_loop import PatienceStop
from jepa_ac.planning.defaults import PlanningDefaults
from jepa_ac.robot import SafetyConfig, run_episode


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("ckpt") / "tiny", planning=TINY_PLANNING)


def run_plan(folder, out, *extra):
    return plan.main(["--checkpoint", str(folder), "--out", str(out), "--threads", "1", *extra])


def test_closed_loop_writes_video_plot_and_metrics(tiny_folder, tmp_path, capsys):
    metrics = run_plan(tiny_folder, tmp_path, "--seed", "1")
    printed = capsys.readouterr().out
    assert printed.count("latent distance") >= 3 and "plan " in printed  # per-step energy and planning time
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert saved["steps"] == 3 and saved["status"] == "max_steps"  # budget from planning.json (patience off)
    assert isinstance(saved["success"], bool) and saved["task_distance_name"] == "ee_to_goal"
    assert saved["final_task_distance"] == pytest.approx(saved["final_info"]["ee_to_goal"])
    per_step = saved["per_step"]
    assert len(per_step["energy"]) == len(per_step["latent_distance"]) == len(per_step["plan_s"]) == 3
    assert saved["final_latent_distance"] == per_step["latent_distance"][-1] > 0
    assert saved["plan_s_mean"] == pytest.approx(np.mean(per_step["plan_s"])) and saved["plan_s_mean"] > 0
    # settings came from the checkpoint's planning.json, with the reach override (gripper frozen)
    assert saved["planning"]["cem"]["samples"] == 16 and saved["planning"]["cem"]["seed"] == 1
    assert saved["planning"]["action"]["frozen"]["dgripper"] == 0.0
    goal = np.asarray(Image.open(tmp_path / "goal.png"))
    assert goal.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    with Image.open(tmp_path / "rollout.gif") as gif:
        assert gif.n_frames == 4  # reset frame + one per step
        assert gif.size[0] > 2 * IMAGE_SIZE  # frame beside the goal
    assert (tmp_path / "rollout.mp4").stat().st_size > 0
    assert Image.open(tmp_path / "energy.png").size[0] > 100


def test_patience_stops_when_the_distance_stops_improving(tiny_folder, tmp_path):
    # no drop can beat a min_improvement of 1e9: every step is "stale" and patience 2 ends the episode
    metrics = run_plan(tiny_folder, tmp_path, "--max-steps", "6", "--patience", "2", "--min-improvement", "1e9",
                       "--no-video")
    assert metrics["status"] == "converged" and metrics["steps"] == 2
    assert "patience 2" in metrics["stop_reason"]
    assert not (tmp_path / "rollout.gif").exists() and (tmp_path / "energy.png").exists()


def test_patience_rule():
    stop = PatienceStop(patience=2, min_improvement=0.01)
    assert stop.update(1.0) is None and stop.update(0.9) is None  # improving
    assert stop.update(0.895) is None  # drop below min_improvement: stale 1
    assert "patience 2" in stop.update(0.95)  # stale 2
    never = PatienceStop(patience=None)
    assert all(never.update(1.0) is None for _ in range(10))


def test_run_episode_should_stop_ends_with_converged():
    class Robot:
        def __init__(self):
            self.sent = []

        def get_observation(self):
            return np.zeros((8, 8, 3), np.uint8), np.array([0.5, 0, 0.3, np.pi, 0, 0, 0], np.float32)

        def apply_action(self, action):
            self.sent.append(action)

    class Policy:
        def reset(self): ...
        def set_goal(self, goal): ...
        def infer(self, obs): return {"action": np.full(7, 0.001, np.float32), "energy": 1.0, "timing": {}}
        def metadata(self): return {}

    robot = Robot()
    result = run_episode(robot, Policy(), np.zeros((8, 8, 3), np.uint8), max_steps=10, safety=SafetyConfig(),
                         should_stop=lambda record: "enough" if record.index == 2 else None)
    assert result.status == "converged" and result.stop_reason == "enough" and len(robot.sent) == 3


def test_goal_image_of_another_size_is_resized(tiny_folder, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "goal_big.png"
    Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(path)
    metrics = run_plan(tiny_folder, tmp_path / "out", "--goal", str(path), "--max-steps", "1", "--no-video")
    assert "resized from 100x80 to 64x64" in metrics["goal_note"]
    assert np.asarray(Image.open(tmp_path / "out" / "goal.png")).shape == (IMAGE_SIZE, IMAGE_SIZE, 3)


def test_bad_goal_images_are_rejected(tiny_folder, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    gray = tmp_path / "gray.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(gray)
    clear = tmp_path / "clear.png"
    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(clear)
    for path, message in ((corrupt, "not a readable image"), (gray, "1-channel"), (clear, "transparent"),
                          (tmp_path / "missing.png", "not found")):
        with pytest.raises(SystemExit, match=message):
            run_plan(tiny_folder, tmp_path / "out", "--goal", str(path))
    assert not (tmp_path / "out").exists()  # rejected before anything ran


def test_opaque_rgba_and_palette_goals_are_accepted(tmp_path):
    rgba = np.full((64, 64, 4), 255, np.uint8)
    rgba[..., 0] = 10
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    image, note = goals.read_goal_image(tmp_path / "rgba.png", 64)
    assert image.shape == (64, 64, 3) and image[0, 0, 0] == 10 and "alpha" in note
    Image.fromarray(rgba[..., :3]).convert("P").save(tmp_path / "palette.png")
    image, note = goals.read_goal_image(tmp_path / "palette.png", 64)
    assert image.shape == (64, 64, 3) and note is None


def test_env_short_names(tiny_folder, tmp_path):
    metrics = run_plan(tiny_folder, tmp_path, "--env", "push", "--max-steps", "1")
    assert metrics["env_id"] == "jepa_ac/FrankaPush-v0"
    with pytest.raises(SystemExit, match="unknown env 'stack'.*push"):
        run_plan(tiny_folder, tmp_path, "--env", "stack")


def test_missing_default_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_args, "DEFAULT_CHECKPOINT", tmp_path / "absent")
    with pytest.raises(SystemExit, match="shipped default model is missing"):
        plan.main(["--out", str(tmp_path / "out")])


def test_planning_defaults_file_and_overrides(tmp_path):
    shipped = PlanningDefaults.for_checkpoint(cli_args.DEFAULT_CHECKPOINT)
    assert "dgripper" not in shipped.for_env("jepa_ac/FrankaReach-v0").action.free_names  # reach freezes it
    assert "dgripper" in shipped.for_env("jepa_ac/FrankaPickPlace-v0").action.free_names  # pick-and-place plans it
    assert shipped.for_env("jepa_ac/FrankaPickPlace-v0").mpc.max_steps == 60
    pick = shipped.for_env("jepa_ac/FrankaPickPlace-v0").mpc  # way-points, each holding its gripper
    assert pick.subgoals and pick.goal_gripper
    assert all(shipped.for_env(e).mpc.return_to_best for e in ("jepa_ac/FrankaReach-v0", "jepa_ac/FrankaPush-v0",
                                                                "jepa_ac/FrankaPickPlace-v0"))
    push = shipped.for_env("jepa_ac/FrankaPush-v0").cem  # straight-line plans 3 steps ahead, reach stays one-step
    assert (push.repeat_action, push.horizon, push.horizon_energy) == (True, 3, "min")
    assert shipped.for_env("jepa_ac/FrankaReach-v0").cem.horizon == 1
    assert shipped.for_env("jepa_ac/FrankaPush-v0").action.max_translation == 0.035  # 3.5 cm push steps
    path = tmp_path / "planning.json"
    path.write_text(json.dumps(TINY_PLANNING))
    loaded = PlanningDefaults.from_json(path)
    assert loaded.cem.samples == 16 and loaded.env.image_size == 64 and loaded.mpc.patience is None
    assert PlanningDefaults.from_dict(loaded.to_dict()) == loaded  # round trip
    assert loaded.for_env("jepa_ac/FrankaPush-v0").action == loaded.action  # no override for push
    boxed = PlanningDefaults.from_dict({"action": {"workspace_min": [0.3, -0.2, 0.05], "workspace_max": [0.7, 0.2, 0.4]}})
    assert boxed.action.workspace_max == (0.7, 0.2, 0.4)
    assert PlanningDefaults.from_dict(json.loads(json.dumps(boxed.to_dict()))) == boxed  # through JSON lists
    for bad, message in (({"cem": {"samples": 0}}, "CEMConfig.samples"), ({"mpc": {"patiense": 3}}, "patiense"),
                         ({"env_overrides": {"x": {"env": {"image_size": 4}}}}, r"env_overrides\['x'\].env"),
                         ({"planner": {}}, "unknown keys"),
                         ({"action": {"workspace_max": [1, 1, 1]}}, "given together")):
        with pytest.raises(ValueError, match=message):
            PlanningDefaults.from_dict(bad)
    assert PlanningDefaults.for_checkpoint(tmp_path / "no_such_folder") == PlanningDefaults()


@pytest.mark.parametrize("section, field, value, where", [
    ("cem", "noise_beta", 2.0, "ColouredNoise sampler of experiments/planning_quality/run.py"),
    ("cem", "min_samples", 32, "AdaptiveSamples sampler of experiments/planning_quality/run.py"),
    ("cem", "close_gripper_after", 1, "mpc.goal_gripper"),
    ("action", "translation_constraint", "l2", "BallStepSpec in experiments/push_directions/ball_step.py"),
])
def test_options_that_left_the_planner_say_where_they_went(section, field, value, where):
    """A file written before may name a removed option at what the planner does now (it loads, as every
    checkpoint folder's planning.json did); any other value is an error that says where it went."""
    from jepa_ac.planning.defaults import REMOVED

    kept = REMOVED[(section, field)][0]
    assert PlanningDefaults.from_dict({section: {field: kept}}) == PlanningDefaults()
    overridden = PlanningDefaults.from_dict({"env_overrides": {"jepa_ac/FrankaPush-v0": {section: {field: kept}}}})
    push = overridden.for_env("jepa_ac/FrankaPush-v0")
    assert (push.cem, push.action) == (PlanningDefaults().cem, PlanningDefaults().action)
    assert field not in json.dumps(overridden.to_dict())  # written back without it
    for bad in ({section: {field: value}}, {"env_overrides": {"jepa_ac/FrankaPush-v0": {section: {field: value}}}}):
        with pytest.raises(ValueError, match=f"{field}={value!r} is no longer a planner option: .*{where}"):
            PlanningDefaults.from_dict(bad)
    with pytest.raises(ValueError, match=f"command-line flags.{section}: {field}="):
        PlanningDefaults().replace("command-line flags", **{section: {field: value}})


def test_sub_goals_advance_on_patience_or_step_cap():
    from jepa_ac.control.closed_loop import GoalSchedule
    from jepa_ac.planning.defaults import MPCConfig

    schedule = GoalSchedule(MPCConfig(patience=2, subgoal_patience=1, subgoal_max_steps=3), num_goals=3)
    schedule.baseline(1.0)
    assert schedule.observe(0.8) is None and not schedule.advance()  # improving on sub-goal 0
    assert schedule.observe(0.9) is None and schedule.advance()  # stale once: patience 1 moves on
    assert schedule.goal_index == 1 and not schedule.advance()  # reported once
    for d in (0.5, 0.4, 0.3):  # always improving, but the cap of 3 steps moves on
        assert schedule.observe(d) is None
    assert schedule.advance() and schedule.goal_index == 2
    assert schedule.observe(0.7) is None  # the last goal starts with a fresh best
    assert schedule.observe(0.7) is None and "patience 2" in schedule.observe(0.7)
    assert not schedule.advance()  # never past the last goal
    blind = GoalSchedule(MPCConfig(subgoal_max_steps=2), num_goals=2)  # no distance: only the cap
    assert blind.observe(None) is None and not blind.advance()
    assert blind.observe(None) is None and blind.advance()


def test_return_to_best_settles_each_goal_at_its_best_state():
    from jepa_ac.control.closed_loop import GoalSchedule
    from jepa_ac.planning.defaults import MPCConfig

    def at(x):  # a state with the TCP at x
        return np.array([x, 0.0, 0.3, np.pi, 0, 0, 0])

    mpc = MPCConfig(patience=1, subgoal_patience=2, subgoal_max_steps=None, return_to_best=True,
                    return_tolerance=0.005, return_max_steps=2)
    schedule = GoalSchedule(mpc, num_goals=2)
    schedule.baseline(1.0, at(0.0))
    assert schedule.observe(0.5, at(0.10)) is None  # best so far
    assert schedule.observe(0.6, at(0.20)) is None and schedule.return_target is None
    assert schedule.observe(0.7, at(0.30)) is None and not schedule.advance()  # done: settle first
    np.testing.assert_array_equal(schedule.return_target, at(0.10))
    assert schedule.observe(0.6, at(0.20)) is None and not schedule.advance()  # one move back, not there yet
    assert schedule.observe(0.5, at(0.103)) is None and schedule.advance()  # within 5 mm: move on
    assert schedule.return_target is None and schedule.goal_index == 1 and schedule.best_state is None
    assert schedule.observe(0.4, at(0.2)) is None
    assert schedule.observe(0.45, at(0.3)) is None  # last goal: patience 1 is out, settle before stopping
    np.testing.assert_array_equal(schedule.return_target, at(0.2))
    assert schedule.observe(0.5, at(0.27)) is None
    reason = schedule.observe(0.5, at(0.24))  # return_max_steps 2 reached, though 4 cm away
    assert "patience 1" in reason and "returned toward the best state in 2 moves" in reason
    # already at the best state when done: no settling moves
    near = GoalSchedule(mpc, num_goals=1)
    near.baseline(1.0, at(0.0))
    assert near.observe(0.5, at(0.1)) is None
    assert "patience 1" in near.observe(0.6, at(0.102)) and near.return_target is None
    # off by default: the goal is done at once
    plain = GoalSchedule(MPCConfig(subgoal_patience=1), num_goals=2)
    plain.baseline(1.0, at(0.0))
    assert plain.observe(1.5, at(0.1)) is None and plain.advance() and plain.return_target is None
    for bad in ({"return_to_best": 1}, {"return_tolerance": -0.01}, {"return_max_steps": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MPCConfig(**bad)


def test_an_empty_grasp_goes_back_to_the_approach():
    from jepa_ac.control.closed_loop import GoalSchedule
    from jepa_ac.planning.defaults import MPCConfig

    def gripper(g, x=0.5):  # a state whose measured closedness is g (TCP at x)
        return np.array([x, 0.0, 0.1, np.pi, 0, 0, g])

    grippers = [0.0, 0.0, 0.5, 0.5, 0.0]  # above, around, closed on it, lifted, released (the env's pick-and-place)
    mpc = MPCConfig(patience=3, subgoal_patience=1, subgoal_max_steps=None, regrasps=1, regrasp_margin=0.2)
    schedule = GoalSchedule(mpc, num_goals=5, grippers=grippers)
    assert [schedule.regrasp_from(k) for k in range(5)] == [None, None, 0, 0, None]
    schedule.baseline(1.0, gripper(0.0))
    for k in (0, 1):  # the approach: open, nothing to check
        assert schedule.observe(0.5, gripper(0.0)) is None and not schedule.advance()
        assert schedule.observe(0.6, gripper(0.0)) is None and schedule.advance() and schedule.goal_index == k + 1
    assert schedule.observe(0.5, gripper(0.45)) is None and not schedule.advance()  # holding: fingers stopped at 0.45
    assert schedule.observe(0.45, gripper(0.7)) is None and not schedule.advance()  # at the margin: still a grasp
    assert schedule.observe(0.5, gripper(0.98)) is None  # closed past the object: empty (before patience)
    assert schedule.advance() and schedule.goal_index == 0 and schedule.regrasps == 1 and schedule.steps_on_goal == 0
    assert not schedule.advance()
    for k in (0, 1):
        assert schedule.observe(0.5, gripper(0.0)) is None and not schedule.advance()
        assert schedule.observe(0.6, gripper(0.0)) is None and schedule.advance() and schedule.goal_index == k + 1
    assert schedule.observe(0.5, gripper(0.98)) is None and not schedule.advance()  # no retries left: carry on
    assert schedule.observe(0.6, gripper(0.98)) is None and schedule.advance() and schedule.goal_index == 3
    assert schedule.regrasps == 1
    # a drop while carrying restarts too; settling does not hold it up
    settle = GoalSchedule(MPCConfig(subgoal_patience=1, return_to_best=True, regrasps=2), num_goals=5, grippers=grippers)
    settle.goal_index = 3
    settle.baseline(1.0, gripper(0.5))
    assert settle.observe(0.5, gripper(0.5)) is None and settle.observe(0.6, gripper(0.5, x=0.6)) is None
    assert settle.return_target is not None and not settle.advance()
    assert settle.observe(0.6, gripper(0.99, x=0.55)) is None and settle.return_target is None
    assert settle.advance() and settle.goal_index == 0
    # off by default, and without goal grippers, or when the goal is a full close (nothing to tell apart)
    for off in (GoalSchedule(MPCConfig(subgoal_patience=5), 5, grippers),
                GoalSchedule(MPCConfig(subgoal_patience=5, regrasps=1), 5),
                GoalSchedule(MPCConfig(subgoal_patience=5, regrasps=1), 3, [0.0, 1.0, 1.0])):
        off.goal_index = 2 if off.num_goals == 5 else 1
        assert off.observe(0.5, gripper(1.0)) is None and not off.advance()
    for bad in ({"regrasps": -1}, {"regrasps": True}, {"regrasp_margin": 0.0}, {"regrasp_margin": 1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MPCConfig(**bad)


def test_move_toward_stays_on_the_line_inside_the_bounds():
    from jepa_ac.planning.action_spec import ActionSpec

    state = np.array([0.5, 0.0, 0.3, np.pi, 0.0, 0.0, 0.2])
    target = np.array([0.6, 0.05, 0.28, np.pi, 0.0, 0.0, 1.0])
    spec = ActionSpec(max_translation=0.05)
    action = spec.move_toward(state, target)
    np.testing.assert_allclose(action[:3], [0.05, 0.025, -0.01], atol=1e-6)  # scaled as a whole, not clipped per axis
    np.testing.assert_allclose(action[3:], [0, 0, 0, 0], atol=1e-6)  # rotation frozen, a planned gripper left alone
    near = spec.move_toward(state, state + np.array([0.01, -0.02, 0, 0, 0, 0, 0]))
    np.testing.assert_allclose(near[:3], [0.01, -0.02, 0], atol=1e-6)  # within the bounds: the whole way
    held = ActionSpec(frozen={"droll": 0, "dpitch": 0, "dyaw": 0, "dgripper": 0.75}).move_toward(state, target)
    assert held[6] == pytest.approx(0.75)  # a frozen gripper keeps its value


def test_closed_loop_returns_to_the_best_state(tiny_folder, tmp_path):
    metrics = run_plan(tiny_folder, tmp_path, "--env", "push", "--subgoals", "--max-steps", "12", "--no-video",
                       "--mpc", "subgoal_patience=1", "subgoal_max_steps=3", "return_to_best=true",
                       "return_max_steps=1")
    returned = metrics["per_step"]["returned"]
    assert any(returned) and metrics["returns"] == sum(returned) and metrics["planning"]["mpc"]["return_to_best"]
    energies = metrics["per_step"]["energy"]
    assert all((e is None) == back for e, back in zip(energies, returned))  # settling moves do not plan
    planned = [t for t, back in zip(metrics["per_step"]["plan_s"], returned) if not back]
    assert metrics["plan_s_mean"] == pytest.approx(np.mean(planned))
    assert Image.open(tmp_path / "energy.png").size[0] > 100  # the plot copes with steps without an energy


def test_goal_gripper_from_the_envs_way_points(tiny_folder, tmp_path, capsys):
    metrics = run_plan(tiny_folder, tmp_path, "--env", "pickplace", "--subgoals", "--max-steps", "6", "--no-video",
                       "--mpc", "subgoal_max_steps=1", "goal_gripper=true", "return_to_best=false")
    # open above and around the cube, closed on it, lifted, over the bowl, then open over the bowl
    assert metrics["goal_grippers"] == pytest.approx([0.0, 0.0, 0.5, 0.5, 0.5, 0.0])
    dgripper = [a[6] for a in metrics["per_step"]["requested"]]
    assert dgripper == pytest.approx([-0.75, -0.75, 0.75, 0.75, 0.75, -0.75])  # held toward each goal's
    user = run_plan(tiny_folder, tmp_path, "--env", "pickplace", "--goal", str(tmp_path / "subgoal_1.png"),
                    str(tmp_path / "goal.png"), "--goal-gripper", "closed", "0", "--max-steps", "2", "--no-video",
                    "--mpc", "subgoal_max_steps=1")
    assert user["goal_grippers"] == [1.0, 0.0]
    assert [a[6] for a in user["per_step"]["requested"]] == pytest.approx([0.75, -0.75])
    capsys.readouterr()
    for bad, message in ((["open"], "1 values for 2"), (["shut", "open"], "'shut'")):
        with pytest.raises(SystemExit, match=message):
            run_plan(tiny_folder, tmp_path, "--env", "pickplace", "--goal", str(tmp_path / "subgoal_1.png"),
                     str(tmp_path / "goal.png"), "--goal-gripper", *bad, "--no-video")


def test_run_episode_hands_the_goal_sequence_to_the_policy():
    """The policy (the controller, or a client to a server running it) gets every goal at once, says
    which one each step aimed at and when it is done; the loop records that and observes the final frame."""
    goals = [np.full((8, 8, 3), i, np.uint8) for i in range(3)]

    class Robot:
        def get_observation(self):
            return np.zeros((8, 8, 3), np.uint8), np.array([0.5, 0, 0.3, np.pi, 0, 0, 0], np.float32)

        def apply_action(self, action): ...

    class Policy:
        def __init__(self, done_at=None, fail=False):
            self.done_at, self.fail, self.calls, self.observed = done_at, fail, 0, 0

        def reset(self): ...

        def set_goal(self, goal, gripper=None):
            if self.fail:
                raise ConnectionError("link down")
            self.goals, self.grippers = [int(g[0, 0, 0]) for g in goal], gripper

        def infer(self, obs):
            self.calls += 1
            if self.calls == self.done_at:
                return {"action": None, "done": True, "stop_reason": "goal reached", "distance": 0.1}
            return {"action": np.zeros(7, np.float32), "energy": 1.0, "timing": {}, "distance": 1.0 / self.calls,
                    "goal_index": min(self.calls // 2, 2)}

        def observe(self, obs):
            self.observed += 1
            return {"distance": 0.05, "done": False}

        def metadata(self): return {}

    policy = Policy()
    result = run_episode(Robot(), policy, goals, max_steps=5, safety=SafetyConfig(), goal_grippers=[0.0, None, 1.0])
    assert policy.goals == [0, 1, 2] and policy.grippers == [0.0, None, 1.0]
    assert [s.goal_index for s in result.steps] == [0, 1, 1, 2, 2] and result.goal_switches == [0, 2]
    assert result.distances == [1.0, 0.5, 1 / 3, 0.25, 0.2, 0.05] and policy.observed == 1
    assert result.status == "max_steps"
    done = run_episode(Robot(), Policy(done_at=3), goals, max_steps=5, safety=SafetyConfig())
    assert done.status == "converged" and done.stop_reason == "goal reached" and len(done.steps) == 2
    assert done.distances == [1.0, 0.5, 0.1]
    for bad, message in (([0.0, 1.0], "2 values for 3 goals"), ([0.0, 1.0, 2.0], "closedness in"),
                         ([True, None, None], "closedness in")):
        with pytest.raises(ValueError, match=message):
            run_episode(Robot(), policy, goals, max_steps=2, safety=SafetyConfig(), goal_grippers=bad)
    failing = run_episode(Robot(), Policy(fail=True), goals, max_steps=6, safety=SafetyConfig())
    assert failing.status == "stopped" and "link down" in failing.stop_reason and not failing.steps
    with pytest.raises(ValueError, match="sequence of such images"):
        run_episode(Robot(), policy, [], max_steps=2, safety=SafetyConfig())


def test_an_empty_grasp_in_the_sim_goes_back_to_the_approach(tiny_folder, tmp_path):
    # the tiny model never reaches the cube: the fingers close on nothing and the schedule retries once
    metrics = run_plan(tiny_folder, tmp_path, "--env", "jepa_ac/FrankaPickPlace-v0", "--subgoals", "--max-steps", "8",
                       "--no-video", "--mpc", "subgoal_max_steps=1", "goal_gripper=true", "regrasps=1")
    assert metrics["goal_grippers"] == [0.0, 0.0, 0.5, 0.5, 0.5, 0.0]
    assert metrics["per_step"]["goal_index"] == [0, 1, 2, 0, 1, 2, 3, 4]
    assert metrics["regrasps"] == 1 and metrics["goals_attempted"] == 5 and not metrics["success"]


class _TwoStepsPerRound:
    """Aims at the first goal, then the last, then says it is done: two actions per round of goals."""

    def __init__(self):
        self.rounds = []

    def reset(self): ...

    def set_goal(self, goal, gripper=None):
        self.rounds.append(len(goal))
        self.calls = 0

    def infer(self, obs):
        self.calls += 1
        if self.calls == 3:
            return {"action": None, "done": True, "stop_reason": "goal settled", "distance": 0.1}
        return {"action": np.zeros(7, np.float32), "energy": 1.0, "timing": {"plan_s": 0.0}, "distance": 1.0,
                "goal_index": 0 if self.calls == 1 else self.rounds[-1] - 1}


def test_subgoal_rounds_replan_the_push_from_where_the_block_lies():
    from jepa_ac.control.closed_loop import make_env, run_closed_loop
    from jepa_ac.planning.defaults import EnvOptions, MPCConfig

    env = make_env("jepa_ac/FrankaPush-v0", EnvOptions(image_size=IMAGE_SIZE))
    # the block does not move: every round leaves it where it was, so the env hands out another
    policy = _TwoStepsPerRound()
    report = run_closed_loop(env, policy, seed=0, mpc=MPCConfig(max_steps=10, subgoals=True, subgoal_rounds=3))
    assert policy.rounds == [4, 4, 4] and report.rounds == 3 and report.num_goals == 12
    assert report.goal_indices == [0, 3, 4, 7, 8, 11] and report.steps == 6
    assert report.status == "converged" and report.distances == [1.0] * 6 + [0.1]
    assert report.metrics()["regrasps"] == 0 and report.metrics()["rounds"] == 3
    start = np.linalg.norm(env.unwrapped._start_block[:2] - env.unwrapped.target_pos)
    np.testing.assert_allclose(report.round_task_distances, [start] * 3, atol=2e-3)  # the block stayed put
    assert len(report.goal_images) == 12 and report.round_starts == [0, 4, 8]
    assert [report.goal_label(k) for k in (0, 3, 5, 11)] == [
        "sub-goal 1/3 (round 1)", "goal (round 1)", "sub-goal 2/3 (round 2)", "goal (round 3)"]
    short = run_closed_loop(env, _TwoStepsPerRound(), seed=0, mpc=MPCConfig(max_steps=5, subgoals=True, subgoal_rounds=3))
    assert short.goal_indices == [0, 3, 4, 7, 8] and short.status == "max_steps"  # the budget is the episode's
    one = run_closed_loop(env, _TwoStepsPerRound(), seed=0, mpc=MPCConfig(max_steps=10, subgoals=True))
    assert one.rounds == 1 and one.goal_indices == [0, 3] and one.status == "converged"
    assert one.goal_label(0) == "sub-goal 1/3" and one.goal_label(3) == "goal"
    held = run_closed_loop(env, _TwoStepsPerRound(), seed=0,
                           mpc=MPCConfig(max_steps=10, subgoals=True, subgoal_rounds=2, goal_gripper=True))
    assert held.rounds == 2 and held.goal_grippers == [1.0] * 8  # push's way-points show closed fingers, each round
    own = run_closed_loop(env, _TwoStepsPerRound(), seed=0, goal=[np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)] * 2,
                          mpc=MPCConfig(max_steps=10, subgoals=True, subgoal_rounds=3))
    assert own.rounds == 1 and own.steps == 2  # the caller's own goal images: no env to ask for a new round
    with pytest.raises(ValueError, match="subgoal_rounds"):
        MPCConfig(subgoal_rounds=0)
    env.close()


def test_plan_cli_plans_a_second_round_of_way_points(tiny_folder, tmp_path, capsys):
    # the tiny model does not move the block: the push round ends on patience and the env hands out another
    metrics = run_plan(tiny_folder, tmp_path, "--env", "push", "--subgoals", "--max-steps", "14", "--patience", "1",
                       "--mpc", "subgoal_max_steps=1", "subgoal_rounds=2", "return_to_best=false")
    out = capsys.readouterr().out
    assert metrics["rounds"] == 2 and metrics["num_goals"] == 8 and "(round 2)" in out and "in up to 2 rounds" in out
    indices = metrics["per_step"]["goal_index"]
    assert indices[:4] == [0, 1, 2, 3] and 4 in indices and indices == sorted(indices)
    with Image.open(tmp_path / "rollout.gif") as gif:
        assert gif.n_frames == metrics["steps"] + 1


def test_closed_loop_through_the_envs_sub_goals(tiny_folder, tmp_path, capsys):
    metrics = run_plan(tiny_folder, tmp_path, "--env", "jepa_ac/FrankaPickPlace-v0", "--subgoals", "--max-steps", "7",
                       "--mpc", "subgoal_max_steps=1")
    assert "5 sub-goals, then the goal" in capsys.readouterr().out
    assert metrics["num_goals"] == 6 and metrics["goals_attempted"] == 6
    assert metrics["per_step"]["goal_index"] == [0, 1, 2, 3, 4, 5, 5]  # one step per sub-goal (the cap)
    assert metrics["planning"]["mpc"]["subgoals"] is True
    for i in range(1, 6):
        assert np.asarray(Image.open(tmp_path / f"subgoal_{i}.png")).shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    with Image.open(tmp_path / "rollout.gif") as gif:
        assert gif.n_frames == 8
    # the user's own images are a sequence too; a single planning step takes only one
    paths = [tmp_path / "subgoal_1.png", tmp_path / "goal.png"]
    metrics = run_plan(tiny_folder, tmp_path / "own", "--goal", *map(str, paths), "--max-steps", "3", "--no-video",
                       "--mpc", "subgoal_max_steps=2")
    assert metrics["per_step"]["goal_index"] == [0, 0, 1] and metrics["goal"] == list(map(str, paths))
    with pytest.raises(SystemExit, match="one --goal image"):
        run_plan(tiny_folder, tmp_path / "single", "--frame", str(paths[0]), "--state", *["0"] * 7,
                 "--goal", *map(str, paths))
    with pytest.raises(SystemExit, match="subgoal_max_steps"):
        run_plan(tiny_folder, tmp_path / "bad", "--mpc", "subgoal_max_steps=0")
