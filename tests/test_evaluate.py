"""`python -m jepa_ac.evaluate`: seeded episodes shared by planner / random / expert, merged results table."""

import json

import pytest

from planning_helpers import TINY_PLANNING, restore_torch_threads, write_tiny_model  # noqa: F401

from jepa_ac import evaluate
from jepa_ac.data.collection import episode_seed


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("ckpt") / "tiny", planning=TINY_PLANNING)


def run(out, *args):
    return evaluate.main(["--out", str(out), "--no-progress", "--threads", "1", *args])


def episodes(out, task, policy):
    return json.loads((out / "episodes" / f"{task}_{policy}.json").read_text())["episodes"]


def test_baselines_and_planner_on_the_same_seeds_build_one_table(tiny_folder, tmp_path):
    common = ["--checkpoint", str(tiny_folder), "--episodes", "2", "--seed", "5"]
    run(tmp_path, "--env", "reach", "--policy", "random", "expert", *common)
    results = run(tmp_path, "--env", "jepa_ac/FrankaReach-v0", "--policy", "planner", *common)
    rows = results["rows"]
    assert list(rows) == [f"jepa_ac/FrankaReach-v0|{p}" for p in ("planner", "random", "expert")]  # merged, ordered
    seeds = [episode_seed(5, i) for i in range(2)]
    for policy in ("planner", "random", "expert"):
        row = rows[f"jepa_ac/FrankaReach-v0|{policy}"]
        assert row["episode_seeds"] == seeds and row["episodes"] == 2
        assert row["success_rate"] == sum(e["success"] for e in episodes(tmp_path, "FrankaReach-v0", policy)) / 2
        assert row["task_distance_name"] == "ee_to_goal" and row["mean_final_task_distance"] >= 0
        assert row["mean_steps"] <= 3  # the budget from the checkpoint's planning.json
    planner = rows["jepa_ac/FrankaReach-v0|planner"]
    assert planner["plan_s_mean"] > 0 and planner["cem"]["samples"] == 16
    # the planning time is read with the precision, the CPU and the threads it was taken with
    assert planner["dtype"] in ("float32", "bfloat16") and planner["isa"] and planner["threads"] == 1
    assert all(e["final_latent_distance"] is not None for e in episodes(tmp_path, "FrankaReach-v0", "planner"))
    # same seed -> same scene: the three policies start from the same end-effector distance to the goal
    first = {p: episodes(tmp_path, "FrankaReach-v0", p)[0] for p in ("random", "expert")}
    assert first["random"]["seed"] == first["expert"]["seed"] == seeds[0]
    # the expert heads straight for the goal; random actions do not (8 cm/step vs 5 cm/step uniform noise)
    assert first["expert"]["final_task_distance"] < first["random"]["final_task_distance"]
    table = (tmp_path / "results.md").read_text()
    assert table.count("| FrankaReach-v0 |") == 3 and "| planner | 2 |" in table
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"].keys() == rows.keys()


def test_planner_with_sub_goals_gets_its_own_row(tiny_folder, tmp_path):
    common = ["--checkpoint", str(tiny_folder), "--episodes", "1", "--env", "push", "--max-steps", "5"]
    run(tmp_path, "--policy", "planner", *common)
    results = run(tmp_path, "--policy", "planner", "random", "--subgoals", "--mpc", "subgoal_max_steps=1", *common)
    assert list(results["rows"]) == ["jepa_ac/FrankaPush-v0|planner", "jepa_ac/FrankaPush-v0|planner (sub-goals)",
                                     "jepa_ac/FrankaPush-v0|random"]  # baselines ignore goals: no sub-goal row
    row = results["rows"]["jepa_ac/FrankaPush-v0|planner (sub-goals)"]
    assert row["subgoals"] is True and row["mpc"]["subgoal_max_steps"] == 1 and row["mean_goals_attempted"] == 4
    assert episodes(tmp_path, "FrankaPush-v0", "planner_subgoals")[0]["per_step"]["goal_index"] == [0, 1, 2, 3, 3]
    assert "| FrankaPush-v0 | planner (sub-goals) | 1 |" in (tmp_path / "results.md").read_text()


def test_step_budget_above_the_env_time_limit_is_run_in_full(tmp_path):
    # push registers a 60-step limit; a larger mpc.max_steps must not be cut short by it
    results = run(tmp_path, "--env", "push", "--policy", "random", "--episodes", "1", "--max-steps", "63",
                  "--image-size", "64")
    assert results["rows"]["jepa_ac/FrankaPush-v0|random"]["mean_steps"] == 63


def test_exterior_view_flag_reaches_the_env(tmp_path):
    from jepa_ac.control.closed_loop import make_env
    from jepa_ac.planning.defaults import EnvOptions

    env = make_env("jepa_ac/FrankaReach-v0", EnvOptions(image_size=32, exterior_view="front"))
    assert env.unwrapped.config.exterior_view == "front"
    env.close()
    assert make_env("jepa_ac/FrankaReach-v0", EnvOptions(image_size=32)).unwrapped.config.exterior_view == "front"
    results = run(tmp_path, "--env", "reach", "--policy", "random", "--episodes", "1", "--max-steps", "1",
                  "--image-size", "32", "--exterior-view", "front")
    assert results["rows"]["jepa_ac/FrankaReach-v0|random"]["env"]["exterior_view"] == "front"
    for workers in ("1", "2"):  # a message before any episode or worker starts, not a traceback from the env
        with pytest.raises(SystemExit, match="exterior_view: unknown exterior view .top."):
            run(tmp_path, "--env", "reach", "--policy", "random", "--episodes", "2", "--max-steps", "1",
                "--image-size", "32", "--exterior-view", "top", "--workers", workers)


def test_rerun_replaces_its_row_and_is_reproducible(tmp_path):
    first = run(tmp_path, "--env", "push", "--policy", "random", "--episodes", "2", "--max-steps", "2",
                "--image-size", "64")
    again = run(tmp_path, "--env", "push", "--policy", "random", "--episodes", "2", "--max-steps", "2",
                "--image-size", "64")
    key = "jepa_ac/FrankaPush-v0|random"
    assert list(again["rows"]) == [key]
    assert again["rows"][key]["mean_final_task_distance"] == first["rows"][key]["mean_final_task_distance"]
    other = run(tmp_path, "--env", "push", "--policy", "random", "--episodes", "2", "--max-steps", "2",
                "--image-size", "64", "--seed", "1")
    assert other["rows"][key]["episode_seeds"] != first["rows"][key]["episode_seeds"]


def test_env_names_and_errors(tmp_path):
    assert evaluate.resolve_envs(["all"]) == list(evaluate.ENV_IDS)
    assert evaluate.resolve_envs(["pickplace", "reach", "jepa_ac/FrankaReach-v0"]) == [
        "jepa_ac/FrankaPickPlace-v0", "jepa_ac/FrankaReach-v0"]
    with pytest.raises(SystemExit, match="unknown env"):
        evaluate.resolve_envs(["stack"])
    with pytest.raises(SystemExit, match="episodes"):
        run(tmp_path, "--episodes", "0", "--policy", "random")
    assert evaluate.wilson_interval(0, 10)[0] == 0.0 and 0.0 < evaluate.wilson_interval(5, 10)[0] < 0.5


def test_workers_run_the_same_episodes_as_one_process(tiny_folder, tmp_path):
    common = ["--checkpoint", str(tiny_folder), "--env", "reach", "--policy", "planner", "random", "--episodes", "3",
              "--max-steps", "3", "--image-size", "64"]
    serial = run(tmp_path / "serial", *common)
    parallel = run(tmp_path / "parallel", *common, "--workers", "2")
    for policy in ("planner", "random"):
        one = episodes(tmp_path / "serial", "FrankaReach-v0", policy)
        two = episodes(tmp_path / "parallel", "FrankaReach-v0", policy)
        assert [e["index"] for e in two] == [0, 1, 2]
        for a, b in zip(one, two):
            assert (a["seed"], a["steps"], a["success"]) == (b["seed"], b["steps"], b["success"])
            assert a["final_task_distance"] == pytest.approx(b["final_task_distance"], abs=1e-9)
        key = f"jepa_ac/FrankaReach-v0|{policy}"
        assert parallel["rows"][key]["success_rate"] == serial["rows"][key]["success_rate"]
    with pytest.raises(SystemExit, match="workers"):
        run(tmp_path, "--env", "reach", "--policy", "random", "--episodes", "1", "--workers", "0")


def test_a_failed_episode_names_itself_and_stops_the_workers_early(tiny_folder, tmp_path, monkeypatch):
    from planning_helpers import failing_planner

    calls = tmp_path / "calls"
    calls.mkdir()
    monkeypatch.setenv("JEPA_AC_TEST_CALLS", str(calls))
    common = ["--checkpoint", str(tiny_folder), "--env", "reach", "--policy", "planner", "--episodes", "20",
              "--max-steps", "2", "--image-size", "64"]
    for workers in ("1", "2"):
        with pytest.raises(RuntimeError, match=r"episode \d+ \(env seed \d+\) failed: RuntimeError: the planner broke"):
            evaluate.main(["--out", str(tmp_path / workers), "--no-progress", "--threads", "1", *common,
                           "--workers", workers], make_planner=failing_planner)
        started = len(list(calls.iterdir()))
        # those running or already handed to the workers (the pool's call queue) when the failure came back;
        # never all 20 (what every worker played before the fix)
        assert 1 <= started <= 10, f"{started} of 20 episodes started after the first failed ({workers} workers)"
        for f in calls.iterdir():
            f.unlink()


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    common = ["--env", "reach", "--policy", "random", "--max-steps", "2", "--image-size", "64"]
    uninterrupted = run(tmp_path / "whole", *common, "--episodes", "3")
    played = []
    original = evaluate.EpisodeRunner.run

    def run_until_the_third(self, index):
        played.append(index)
        if index == 2:
            raise KeyboardInterrupt  # the user stops the run in episode 2
        return original(self, index)

    monkeypatch.setattr(evaluate.EpisodeRunner, "run", run_until_the_third)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, *common, "--episodes", "3")
    journal = tmp_path / "episodes" / "FrankaReach-v0_random.partial.jsonl"
    assert len(journal.read_text().splitlines()) == 1 + 2  # the settings and the two finished episodes
    with open(journal, "a") as handle:
        handle.write('{"index": 2, "see')  # a kill mid-write leaves a cut line: not an episode

    played.clear()
    monkeypatch.setattr(evaluate.EpisodeRunner, "run", lambda self, index: played.append(index) or original(self, index))
    resumed = run(tmp_path, *common, "--episodes", "3", "--resume")
    assert played == [2] and not journal.exists()
    key = "jepa_ac/FrankaReach-v0|random"
    assert resumed["rows"][key]["resumed_episodes"] == 2
    for a, b in zip(episodes(tmp_path / "whole", "FrankaReach-v0", "random"), episodes(tmp_path, "FrankaReach-v0", "random"),
                    strict=True):
        assert (a["index"], a["seed"], a["steps"]) == (b["index"], b["seed"], b["steps"])
        assert a["final_task_distance"] == pytest.approx(b["final_task_distance"], abs=1e-9)
    assert resumed["rows"][key]["success_rate"] == uninterrupted["rows"][key]["success_rate"]

    played.clear()  # a finished run grows: only the new episodes are played
    longer = run(tmp_path, *common, "--episodes", "4", "--resume")
    assert played == [3] and longer["rows"][key]["episodes"] == 4 and longer["rows"][key]["resumed_episodes"] == 3

    played.clear()  # other settings are never joined to these episodes
    with pytest.raises(SystemExit, match=r"other settings: .*planning\.mpc\.max_steps"):
        run(tmp_path, *common[:-4], "--max-steps", "3", "--image-size", "64", "--episodes", "4", "--resume")
    assert played == []
    run(tmp_path, *common, "--episodes", "2")  # without --resume a run starts over
    assert played == [0, 1]


def test_a_checkpoint_retrained_in_place_is_not_the_same_run(tmp_path):
    from jepa_ac.cli.episode_journal import checkpoint_stamp

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "planning.json").write_text("{}")
    stamp = checkpoint_stamp(folder)
    (folder / "planning.json").write_text("{}")  # copied again, same bytes (a new mtime): the same checkpoint
    assert checkpoint_stamp(folder) == stamp
    (folder / "model.safetensors").write_bytes(b"retrained")
    assert checkpoint_stamp(folder) != stamp and set(checkpoint_stamp(folder)) == {"model.safetensors", "planning.json"}


def test_resume_names_a_setting_only_one_run_has():
    """A setting added since the earlier run (absent there, at its default now) is named, not left out."""
    from jepa_ac.cli.episode_journal import differing_keys

    old = {"planning": {"cem": {"samples": 8}, "mpc": {"max_steps": 3}}}
    new = {"planning": {"cem": {"samples": 8, "predictor": None}, "mpc": {"max_steps": 3}}}
    assert differing_keys(new, old) == ["planning.cem.predictor"]
    assert differing_keys(new, new) == []
    assert differing_keys({"a": {"b": 1}}, {"a": {"b": 2}, "c": None}) == ["a.b", "c"]
