"""`python -m jepa_ac.collect`: rollouts written in DROID layout, exact round trip, resume, refusal to mix."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from jepa_ac.model import pose
from jepa_ac.data.collection import CollectConfig, collect, episode_seed, rollout
from jepa_ac.collect import main
from jepa_ac.data import ClipConfig, DroidClips, layout, load_episode, read_trajectory_list

MADE: list["FakeReachEnv"] = []  # every fake env made, to read back what it did


class FakeReachEnv(gym.Env):
    """A point gripper that moves by the action's xyz; renders a square where it is. Logs its states."""

    task_name = "fakereach"
    control_hz = 5.0
    camera_names = ("exterior",)

    def __init__(self, image_size: int = 32) -> None:
        self.image_size = image_size
        self.action_space = gym.spaces.Box(-0.05, 0.05, shape=(7,), dtype=np.float64)
        self.observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
        })
        self.episodes: list[dict] = []
        MADE.append(self)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        rng = self.np_random
        self.state = np.concatenate([rng.uniform(-0.2, 0.2, 3), rng.uniform(-0.3, 0.3, 3), [0.0]])
        self.goal = rng.uniform(-0.2, 0.2, 3)
        self.episodes.append({"seed": seed, "states": [self.state.copy()], "actions": [], "targets": []})
        return self._obs(), self._info()

    def step(self, action):
        target = pose.apply_action(self.state, np.asarray(action))
        self.state = target.copy()
        self.state[:3] += 1e-4  # the "controller" misses the target slightly
        log = self.episodes[-1]
        log["states"].append(self.state.copy())
        log["actions"].append(np.asarray(action).copy())
        log["targets"].append(target)
        info = self._info()
        info["commanded_state"] = target
        return self._obs(), float(info["success"]), False, False, info

    def _obs(self):
        s = self.image_size
        image = np.full((s, s, 3), 60, np.uint8)
        x, y = (np.clip(self.state[:2], -0.5, 0.5) + 0.5) * (s - 8)
        image[int(y) : int(y) + 8, int(x) : int(x) + 8] = (220, 120, 40)
        return {"image": image, "state": self.state.astype(np.float32)}

    def _info(self):
        return {"cartesian_position": self.state[:6].copy(), "gripper_position": float(self.state[6]),
                "joint_positions": np.tile(self.state[:1], 7), "camera_extrinsics": {"exterior": np.arange(6.0)},
                "success": bool(np.linalg.norm(self.state[:3] - self.goal) < 0.05)}

    def goal_image(self):
        return self._obs()["image"]


class FakeExpert:
    def __init__(self, env, noise: float, seed: int) -> None:
        self.env, self.noise, self.rng = env, noise, np.random.default_rng(seed)

    def reset(self) -> None:
        pass

    def act(self, obs):
        env = self.env.unwrapped
        action = np.zeros(7)
        action[:3] = np.clip(env.goal - obs["state"][:3], -0.04, 0.04)
        action[3:6] = 0.01
        action[6] = 0.1
        return action + self.rng.normal(0, self.noise, 7) * np.array([1, 1, 1, 0, 0, 0, 0])


def make_fake_env(config: CollectConfig) -> FakeReachEnv:
    return FakeReachEnv(config.image_size)


def fake_collect(tmp_path, **overrides):
    config = CollectConfig(**{"out": tmp_path / "data", "env": "fake/Reach-v0", "episodes": 3, "noise": 0.02,
                              "image_size": 32, "max_steps": 8, **overrides})
    MADE.clear()
    return config, collect(config, make_fake_env, FakeExpert, progress=False)


def test_collected_episodes_round_trip_exactly(tmp_path):
    config, summary = fake_collect(tmp_path)
    logs = [ep for env in MADE for ep in env.episodes]
    assert [log["seed"] for log in logs] == [episode_seed(0, i) for i in range(3)]
    folders = read_trajectory_list(config.out / layout.TRAJECTORY_LIST_FILE)
    assert [f.name for f in folders] == ["episode_000000", "episode_000001", "episode_000002"]
    successes = 0
    for folder, log in zip(folders, logs):
        episode = load_episode(folder)
        states = np.stack(log["states"])  # [T, 7] what the env went through
        assert len(states) == 9  # reset + 8 steps
        np.testing.assert_array_equal(episode["states"], states)
        np.testing.assert_array_equal(episode["actions"], pose.actions_from_states(states))
        arrays = episode["arrays"]
        np.testing.assert_array_equal(arrays[layout.ACTION_DELTA][:-1], np.stack(log["actions"]))
        np.testing.assert_array_equal(arrays[layout.ACTION_DELTA][-1], np.zeros(7))
        targets = np.concatenate([arrays[layout.ACTION_CARTESIAN_POSITION], arrays[layout.ACTION_GRIPPER_POSITION][:, None]], 1)
        np.testing.assert_array_equal(targets[:-1], np.stack(log["targets"]))
        np.testing.assert_array_equal(arrays[layout.extrinsics_key("exterior")], np.tile(np.arange(6.0), (9, 1)))
        assert episode["fps"] == pytest.approx(5.0)
        assert episode["metadata"]["seed"] == log["seed"] and episode["metadata"]["env_id"] == "fake/Reach-v0"
        successes += episode["metadata"]["success"]
    assert summary["success_rate"] == pytest.approx(successes / 3)
    assert summary["collected_now"] == 3 and summary["resumed"] == 0
    on_disk = json.loads((config.out / layout.SUMMARY_FILE).read_text())
    assert on_disk["successes"] == successes and len(on_disk["per_episode"]) == 3
    info = json.loads((config.out / layout.DATASET_INFO_FILE).read_text())
    assert info["task"] == "fakereach" and info["fps"] == 5.0 and info["cameras"] == ["exterior"]
    clips = DroidClips(config.out / layout.TRAJECTORY_LIST_FILE, ClipConfig(frames_per_clip=3, fps=2.5))
    assert len(clips) == 3 * 3 and clips.strides == [2, 2, 2]  # 9 rows, span 5, starts 0, 2, 4


def test_collect_resumes_and_refuses_to_mix(tmp_path):
    config, first = fake_collect(tmp_path, episodes=2)
    kept = (config.out / "episode_000001" / layout.TRAJECTORY_FILE).stat().st_mtime_ns
    stale = config.out / ".tmp-episode_000002-999999999-abcd"  # a killed run's leftover (dead pid)
    (stale / "recordings").mkdir(parents=True)
    _, second = fake_collect(tmp_path, episodes=4)
    assert second["collected_now"] == 2 and second["resumed"] == 2
    assert not stale.exists()
    assert (config.out / "episode_000001" / layout.TRAJECTORY_FILE).stat().st_mtime_ns == kept
    assert [r["uuid"] for r in second["per_episode"][:2]] == [r["uuid"] for r in first["per_episode"]]
    # episode 3 of the resumed run equals episode 3 of a fresh run (seeds depend on the index only)
    _, _ = fake_collect(tmp_path / "fresh", episodes=4)
    np.testing.assert_array_equal(load_episode(config.out / "episode_000003")["states"],
                                  load_episode(tmp_path / "fresh" / "data" / "episode_000003")["states"])
    with pytest.raises(ValueError, match="noise=0.02, this run has noise=0.5"):
        fake_collect(tmp_path, episodes=4, noise=0.5)


def test_collect_config_validation():
    with pytest.raises(ValueError, match="image_size"):
        CollectConfig(out="x", image_size=33)
    with pytest.raises(ValueError, match="episodes"):
        CollectConfig(out="x", episodes=0)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--episodes" in capsys.readouterr().out


def _real_env_available() -> bool:
    try:
        import jepa_ac.envs.experts  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _real_env_available(), reason="jepa_ac.envs (MuJoCo Franka) not importable")
def test_cli_collects_franka_reach(tmp_path, capsys):
    from jepa_ac.data.collection import make_franka_env, make_franka_expert

    out = tmp_path / "reach"
    assert main(["--env", "jepa_ac/FrankaReach-v0", "--episodes", "2", "--out", str(out), "--image-size", "64",
                 "--max-steps", "6", "--no-progress"]) == 0
    assert "success rate" in capsys.readouterr().out
    # the stored episode equals an independent rollout with the same seed, exactly
    config = CollectConfig(out=out, env="jepa_ac/FrankaReach-v0", image_size=64, max_steps=6)
    env = make_franka_env(config)
    seed = episode_seed(0, 1)
    expected, _ = rollout(env, make_franka_expert(env, config.noise, seed), seed, 6, ("exterior",))
    env.close()
    episode = load_episode(out / "episode_000001")
    np.testing.assert_array_equal(episode["states"], expected.states)
    np.testing.assert_array_equal(episode["arrays"][layout.ACTION_DELTA], expected.actions)
    assert np.abs(episode["frames"].astype(int) - expected.frames["exterior"]).mean() < 3.0


def test_cli_collects_from_the_front_view(tmp_path):
    from jepa_ac.envs import scene

    out = tmp_path / "front"
    assert main(["--env", "jepa_ac/FrankaReach-v0", "--episodes", "1", "--out", str(out), "--image-size", "32",
                 "--max-steps", "2", "--exterior-view", "front", "--no-progress"]) == 0
    episode = load_episode(out / "episode_000000")
    assert episode["metadata"]["exterior_view"] == "front"
    extrinsics = [v for k, v in episode["arrays"].items() if "extrinsics" in k and v.ndim == 2 and v.shape[1] == 6]
    assert extrinsics, sorted(episode["arrays"])
    np.testing.assert_allclose(extrinsics[0][0, :3], scene.EXTERIOR_VIEWS["front"][0], atol=1e-6)
    assert json.loads((out / "collect_summary.json").read_text())["exterior_view"] == "front"
    assert json.loads((out / "dataset_info.json").read_text())["env_options"] == {"exterior_view": "front"}
    with pytest.raises(SystemExit, match="refusing to mix"):  # resuming from another view
        main(["--env", "jepa_ac/FrankaReach-v0", "--episodes", "2", "--out", str(out), "--image-size", "32",
              "--max-steps", "2", "--exterior-view", "side", "--no-progress"])
    for bad, message in ((["--exterior-view", "top"], "exterior_view: unknown exterior view 'top'"), (["--image-size", "7"], "even"),
                         (["--exterior-view", "front+side"], "records one exterior camera; collect each view on its own")):
        with pytest.raises(SystemExit, match=message):  # one line, not a traceback
            main(["--env", "jepa_ac/FrankaReach-v0", "--episodes", "1", "--out", str(tmp_path / "bad"),
                  "--no-progress", *bad])


def test_cli_passes_the_experts_options_and_records_them(tmp_path):
    """--set expert_options.NAME=VALUE reaches the scripted expert; the dataset records the options and
    refuses to be resumed with others; an option the expert lacks is a one-line error."""
    out = tmp_path / "offset"
    args = ["--env", "jepa_ac/FrankaPickPlace-v0", "--episodes", "1", "--out", str(out), "--image-size", "32",
            "--max-steps", "3", "--no-progress", "--noise", "0"]
    assert main([*args, "--set", "expert_options.grasp_offset=0.06", "--set", "expert_options.turn_to_cube=false"]) == 0
    options = {"grasp_offset": 0.06, "turn_to_cube": False}
    assert json.loads((out / "dataset_info.json").read_text())["expert_options"] == options
    assert load_episode(out / "episode_000000")["metadata"]["expert_options"] == options
    plain = tmp_path / "plain"
    assert main([*args[:5], str(plain), *args[6:]]) == 0
    offset_states, plain_states = (load_episode(p / "episode_000000")["states"] for p in (out, plain))
    assert not np.allclose(offset_states, plain_states)  # the same episode, another aim
    with pytest.raises(SystemExit, match="collected with expert_options=.*this run has expert_options=\\{\\}"):
        main([*args, "--episodes", "2"])  # resumed without the options
    with pytest.raises(SystemExit, match="takes no option \\['grip'\\]"):
        main([*args[:5], str(tmp_path / "bad"), *args[6:], "--set", "expert_options.grip=1"])


def test_cli_records_the_env_default_view_when_none_is_given(tmp_path):
    """Without --exterior-view the dataset names the view the env rendered, so it stays readable (and
    refuses to be resumed from another view) after the env's default moves."""
    from jepa_ac.envs import scene

    out = tmp_path / "default"
    assert main(["--env", "jepa_ac/FrankaReach-v0", "--episodes", "1", "--out", str(out), "--image-size", "32",
                 "--max-steps", "2", "--no-progress"]) == 0
    assert load_episode(out / "episode_000000")["metadata"]["exterior_view"] == scene.DEFAULT_EXTERIOR_VIEW
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["env_options"] == {"exterior_view": scene.DEFAULT_EXTERIOR_VIEW}
    other = next(v for v in scene.EXTERIOR_VIEWS if v != scene.DEFAULT_EXTERIOR_VIEW)
    with pytest.raises(SystemExit, match="refusing to mix"):
        main(["--env", "jepa_ac/FrankaReach-v0", "--episodes", "2", "--out", str(out), "--image-size", "32",
              "--max-steps", "2", "--exterior-view", other, "--no-progress"])


@pytest.mark.slow
@pytest.mark.skipif(not _real_env_available(), reason="jepa_ac.envs (MuJoCo Franka) not importable")
def test_parallel_workers_match_serial(tmp_path):
    args = ["--env", "jepa_ac/FrankaReach-v0", "--episodes", "3", "--image-size", "64", "--max-steps", "5",
            "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "serial")]) == 0
    assert main([*args, "--out", str(tmp_path / "parallel"), "--workers", "2"]) == 0
    for i in range(3):
        name = f"episode_{i:06d}"
        np.testing.assert_array_equal(load_episode(tmp_path / "serial" / name)["states"],
                                      load_episode(tmp_path / "parallel" / name)["states"])
