"""Own env, own robot, own data format: the Recorder, collect with any gymnasium env and hooks, the
control contract and the planning defaults derived from it, LeRobot v2.1 / v3.0 datasets read like
DROID-layout ones, and --init-predictor taking its architecture from the checkpoint."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import own_env
from jepa_ac import collect, encode_dataset, train_predictor
from jepa_ac.data import collection
from jepa_ac.model import pose
from jepa_ac.data import (
    ClipConfig,
    DatasetInfo,
    DroidClips,
    LeRobotSource,
    LeRobotSpec,
    Recorder,
    find_episodes,
    layout,
    load_episode,
    open_episode,
    read_trajectory_list,
    write_trajectory_list,
)
from jepa_ac.data.episode import EpisodeError
from jepa_ac.data.contract import contract_for_dataset, measure_contract, planning_defaults, safety_limits
from jepa_ac.data.layout import ControlContract
from jepa_ac.data.lerobot import SPEC_FORMAT, cut_video
from jepa_ac.data.video import read_mp4, write_mp4
from jepa_ac.model.pose import StateRanges
from jepa_ac.planning.defaults import PlanningDefaults
from jepa_ac.robot.safety import SafetyConfig
from lerobot_layout import episode_frames, episode_rows, write_v3, write_v21


def frame(t: int, size: int = 32) -> np.ndarray:
    image = np.full((size, size, 3), 20, np.uint8)
    image[4:12, t % (size - 8) : t % (size - 8) + 8] = (230, 90, 30)
    return image


# -- the recorder --------------------------------------------------------------------------------------


def record(out, episodes=2, steps=6, scale=0.5, **kwargs):
    """A robot whose xyz moves `scale` x the commanded 3-D velocity x 0.1 m; commands recorded as "env"."""
    rng = np.random.default_rng(0)
    sent = []
    with Recorder(out, env_id="my_lab/arm", task="reach", fps=10.0, command_space="env", **kwargs) as rec:
        for _ in range(episodes):
            state = np.r_[rng.uniform(0.3, 0.6, 3), 0.0, 0.0, 0.1, 0.0]
            for t in range(steps):
                command = rng.uniform(-1, 1, 3)
                rec.add_step(frame(t), state, command=command, joints=np.arange(7.0) + t)
                sent.append(command)
                state = state + np.r_[0.1 * scale * command, 0, 0, 0, 0]
            rec.add_step(frame(steps), state, joints=np.arange(7.0) + steps)  # the final observation
            rec.end_episode(success=True)
    return np.stack(sent)


def test_recorder_writes_what_training_reads_and_measures_the_contract(tmp_path):
    out = tmp_path / "robot"
    sent = record(out)
    folders = read_trajectory_list(out / layout.TRAJECTORY_LIST_FILE)
    assert [f.name for f in folders] == ["episode_000000", "episode_000001"]
    episode = load_episode(folders[0])
    assert episode["frames"].shape == (7, 32, 32, 3) and episode["fps"] == pytest.approx(10.0)
    np.testing.assert_allclose(episode["arrays"][layout.COMMAND][:-1], sent[:6])
    np.testing.assert_array_equal(episode["arrays"][layout.JOINT_POSITIONS][:, 0], np.arange(7.0))
    assert episode["metadata"][layout.COMMAND_KEY_FIELD] == layout.COMMAND and episode["metadata"]["success"]
    info = DatasetInfo.load(out / layout.DATASET_INFO_FILE)
    assert (info.env_id, info.task, info.fps, info.image_size, info.max_steps) == ("my_lab/arm", "reach", 10.0, 32, 6)
    contract = info.control
    assert contract.command_space == "env" and contract.command_dim == 3 and contract.command_lag == 0
    np.testing.assert_allclose(np.asarray(contract.command_to_delta)[:3], 0.05 * np.eye(3), atol=1e-9)
    assert contract.fit_r2[:3] == pytest.approx((1.0, 1.0, 1.0)) and contract.fit_r2[3] is None  # rotation never moved
    assert len(DroidClips(out, ClipConfig(frames_per_clip=3, fps=5.0))) == 2 * 2  # 7 rows: starts 0, 2

    # a second session appends; a recording of something else is refused
    record(out, episodes=1)
    assert [f.name for f in find_episodes(out)][-1] == "episode_000002"
    assert DatasetInfo.load(out / layout.DATASET_INFO_FILE).control.episodes == 3
    with pytest.raises(ValueError, match="fps=10.0"):
        Recorder(out, env_id="my_lab/arm", task="reach", fps=15.0)


def test_recorder_checks_rows_and_keeps_finished_episodes_on_error(tmp_path):
    out = tmp_path / "robot"
    with pytest.raises(RuntimeError, match="robot fault"):
        with Recorder(out, env_id="arm", task="reach", fps=5.0, command_space="delta_pose") as rec:
            x = 0.4
            for t in range(12):
                dx = 0.01 * np.sin(t)
                rec.add_step(frame(t), [x, 0, 0.3, 0, 0, 0, 0], command=[dx, 0, 0, 0, 0, 0, 0])
                x += dx
            rec.add_step(frame(12), [x, 0, 0.3, 0, 0, 0, 0])
            rec.end_episode()
            with pytest.raises(ValueError, match="gripper = 5.0 is outside"):
                rec.add_step(frame(0), [0.4, 0, 0.3, 0, 0, 0, 5.0])
            with pytest.raises(ValueError, match="uint8"):
                rec.add_step(frame(0).astype(np.float32), [0.4, 0, 0.3, 0, 0, 0, 0])
            rec.add_step(frame(0), [0.4, 0, 0.3, 0, 0, 0, 0])
            raise RuntimeError("robot fault")  # mid-episode: the unfinished episode is dropped
    assert [f.name for f in find_episodes(out)] == ["episode_000000"]
    contract = DatasetInfo.load(out / layout.DATASET_INFO_FILE).control
    assert contract.command_space == "delta_pose" and contract.action_scale[0] == pytest.approx(1.0)
    with Recorder(out, env_id="arm", task="reach", fps=5.0, command_space="delta_pose") as rec:
        rec.add_step(frame(0), np.zeros(7) + [0.4, 0, 0.3, 0, 0, 0, 0], command=np.zeros(7))
        rec.add_step(frame(1), np.zeros(7) + [0.4, 0, 0.3, 0, 0, 0, 0])
        rec.add_step(frame(2), np.zeros(7) + [0.4, 0, 0.3, 0, 0, 0, 0])
        with pytest.raises(ValueError, match=r"rows \[1\] have no command"):
            rec.end_episode()


# -- collect with any registered gymnasium env ---------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*render fps")  # OwnReach gives its rate as dt, as Fetch
def test_collect_any_gym_env_with_policy_and_state_hooks(tmp_path, capsys):
    own_env.MADE.clear()
    out = tmp_path / "own"
    argv = ["--env", "own_env:OwnReach-v0", "--policy", "own_env:policy", "--state", "own_env:state",
            "--episodes", "3", "--image-size", "32", "--seed", "3", "--out", str(out), "--no-progress"]
    assert collect.main(argv) == 0
    logs = [log for env in own_env.MADE for log in env.log[1:]]  # the first reset only probes the cameras
    folders = read_trajectory_list(out / layout.TRAJECTORY_LIST_FILE)
    assert len(folders) == 3 and len(logs) == 3
    for folder, log in zip(folders, logs):
        episode = load_episode(folder)
        assert episode["frames"].shape == (13, 32, 32, 3)  # reset + 12 steps, rendered at --image-size
        np.testing.assert_allclose(episode["states"], np.stack([own_env.state(o) for o in log["obs"]]))
        np.testing.assert_allclose(episode["arrays"][layout.COMMAND][:-1], np.stack(log["actions"]), atol=1e-6)
        assert log["seed"] == collection.episode_seed(3, folders.index(folder))
    info = DatasetInfo.load(out / layout.DATASET_INFO_FILE)
    assert (info.task, info.fps, info.cameras) == ("OwnReach", 25.0, ("exterior",))
    assert info.env_options == {"policy": "own_env:policy", "state": "own_env:state"}
    contract = info.control
    assert contract.command_lag == 1 and contract.command_dim == 4  # the env's controller runs a step behind
    gain = np.asarray(contract.command_to_delta)[:3, :3]
    np.testing.assert_allclose(gain, own_env.GAIN * own_env.MAX_MOVE * np.eye(3), atol=1e-9)
    assert "command fit R^2" in capsys.readouterr().out

    assert collect.main(argv) == 0  # resumes: nothing new
    assert json.loads((out / layout.SUMMARY_FILE).read_text())["resumed"] == 3
    with pytest.raises(SystemExit, match="--noise applies to the Franka"):
        collect.main([*argv, "--noise", "0.2"])
    with pytest.raises(SystemExit, match="no scripted expert"):
        collect.main(["--env", "OwnReach-v0", "--out", str(tmp_path / "x"), "--no-progress"])
    with pytest.raises(SystemExit, match="reports no DROID state: pass --state"):
        collect.main(["--env", "own_env:OwnReach-v0", "--out", str(tmp_path / "y"), "--no-progress",
                      "--episodes", "1", "--image-size", "32"])


def test_collect_gymnasium_mujoco_env(tmp_path):
    """A real third-party MuJoCo env (gymnasium Pusher-v5): width/height reach its renderer."""
    out = tmp_path / "pusher"
    collect.main(["--env", "gymnasium:Pusher-v5", "--state", "own_env:pusher_state", "--episodes", "1",
                  "--max-steps", "5", "--image-size", "32", "--out", str(out), "--no-progress"])
    episode = load_episode(out / "episode_000000")
    assert episode["frames"].shape == (6, 32, 32, 3) and episode["frames"].std() > 0
    assert episode["fps"] == pytest.approx(20.0) and episode["arrays"][layout.COMMAND].shape == (6, 7)


# -- the control contract and planning defaults --------------------------------------------------------------


def synthetic_episodes(scale=0.5, lag=1, rotate=False, grip=False, n=4, t=30):
    rng = np.random.default_rng(1)
    for _ in range(n):
        commands = rng.uniform(-0.02, 0.02, (t, 7)) * [1, 1, 1, rotate, rotate, rotate, grip]
        states = [np.r_[rng.uniform(0.3, 0.5, 3), 0, 0, 0, 0.5]]
        for i in range(t - 1):
            sent = commands[i - lag] if i >= lag else np.zeros(7)
            states.append(pose.apply_action(states[-1], scale * sent))
        yield np.stack(states), commands


def test_contract_measures_scale_and_lag_and_derives_planning_defaults():
    contract = measure_contract(synthetic_episodes(), control_hz=15.0, command_space="delta_pose")
    assert contract.command_lag == 1 and contract.action_scale[:3] == pytest.approx((0.5,) * 3, abs=1e-9)
    assert contract.action_scale[3] is None  # never commanded
    assert contract.step_p95[0] == pytest.approx(0.5 * 0.02 * 0.95, rel=0.1)
    planning = planning_defaults(contract, "own_env:OwnReach-v0", image_size=64)
    defaults = PlanningDefaults.from_dict(planning)  # a valid planning.json
    assert defaults.action.max_translation == pytest.approx(math.ceil(max(contract.step_p95[:3]) * 1000) / 1000)
    assert dict(defaults.action.frozen) == {"droll": 0.0, "dpitch": 0.0, "dyaw": 0.0, "dgripper": 0.0}
    assert defaults.action.workspace_min == pytest.approx(tuple(np.asarray(contract.position_min) - 0.02), abs=1e-4)
    assert (defaults.env.control_hz, defaults.env.image_size, defaults.env_id) == (15.0, 64, "own_env:OwnReach-v0")
    safety = SafetyConfig.from_dict(safety_limits(contract))
    assert safety.max_translation >= math.sqrt(3) * defaults.action.max_translation  # never clips a planned step
    assert safety.workspace_max == pytest.approx(tuple(np.asarray(contract.position_max) + 0.05), abs=1e-4)

    moving = measure_contract(synthetic_episodes(rotate=True, grip=True, lag=0), 15.0, "delta_pose")
    action = planning_defaults(moving, "e")["action"]
    assert action["frozen"] == {} and action["max_rotation"] > 0 and 0 < action["max_gripper_delta"] <= 1
    coarse = measure_contract(synthetic_episodes(), 15.0, "delta_pose", stride=3)  # at a 5 Hz clip rate
    assert coarse.step_hz == 5.0 and coarse.step_p95[0] > 1.4 * contract.step_p95[0]  # 3 random steps add up


def test_contract_record_round_trips_and_old_datasets_still_load(tmp_path):
    contract = measure_contract(synthetic_episodes(), 15.0, "delta_pose")
    info = DatasetInfo(env_id="e", task="t", fps=15.0, image_size=(48, 64), cameras=("c",), noise=0, seed=0,
                       max_steps=5, control=contract)
    (tmp_path / "info.json").write_text(json.dumps(info.to_dict()))
    assert DatasetInfo.load(tmp_path / "info.json") == info
    old = {k: v for k, v in info.to_dict().items() if k != "control"}  # written before the contract existed
    assert DatasetInfo.from_dict(old).control is None
    with pytest.raises(ValueError, match="ControlContract.step_p95 must have 7 entries"):
        ControlContract.from_dict({**contract.to_dict(), "step_p95": [0.1] * 6})
    with pytest.raises(ValueError, match="version 2 is not supported"):
        ControlContract.from_dict({**contract.to_dict(), "version": 2})
    # the shipped Franka sample predates command metadata: its action/delta_pose are the commands
    from conftest import FIXTURES

    sample = contract_for_dataset(FIXTURES.parent.parent / "datasets" / "samples")
    assert sample.command_source == layout.ACTION_DELTA and sample.action_scale[0] == pytest.approx(1.0, abs=0.05)


# -- LeRobot datasets ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lerobot_sets(tmp_path_factory):
    pytest.importorskip("pyarrow")
    root = tmp_path_factory.mktemp("lerobot")
    return {"v21": write_v21(root / "v21", [12, 9]), "v3": write_v3(root / "v3", [[12, 9], [10]]),
            "v21_9d": write_v21(root / "v21_9d", [20], state_dim=9, video_key="observation.images.top")}


def test_lerobot_v21_and_v3_read_like_droid_episodes(lerobot_sets):
    v21, v3 = lerobot_sets["v21"], lerobot_sets["v3"]
    refs = find_episodes(v21)
    assert [r.name for r in refs] == ["episode_000000", "episode_000001"]
    record = open_episode(refs[1])
    np.testing.assert_allclose(record.states, episode_rows(1, 9, 7)["states7"])
    assert (record.camera, record.fps, record.metadata["current_task"]) == ("observation.images.front", 10.0,
                                                                            "push the cube")
    clips = DroidClips(v21, ClipConfig(frames_per_clip=4, fps=5.0))  # what train_predictor reads
    item = clips[0]
    assert len(clips) == 3 + 2 and item["frames"].shape == (4, 64, 64, 3) and item["actions"].shape == (3, 7)

    # v3: episodes share parquet and mp4 files; each episode's frames come back exactly (packet copy)
    refs = find_episodes(v3)
    assert len(refs) == 3
    for i, ref in enumerate(refs):
        episode = load_episode(ref)
        original = read_mp4(v3.parent / "v3_episodes" / f"episode_{i:06d}.mp4")
        np.testing.assert_array_equal(episode["frames"], original)
        np.testing.assert_allclose(episode["states"], episode_rows(i, len(original), 8)["states7"])  # the DROID columns
        assert episode["arrays"]["observation.state"].shape == (len(original), 8)
    assert len(DroidClips(v3, ClipConfig(frames_per_clip=4, fps=5.0))) == 3 + 2 + 2
    contract = contract_for_dataset(v3)  # DROID's absolute targets -> commanded deltas
    assert contract.command_space == "delta_pose" and contract.action_scale[:3] == pytest.approx((1.0,) * 3)
    with pytest.raises(Exception, match="not a video feature"):
        open_episode(refs[0], camera_key="observation.images.wrist")


def test_reads_a_dataset_written_by_lerobot_itself(tmp_path, monkeypatch):
    """tests/fixtures/lerobot_v30_real: written by lerobot 0.4.4's LeRobotDataset (see the script beside it)."""
    pytest.importorskip("pyarrow")
    from conftest import FIXTURES
    from jepa_ac.data.lerobot import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))  # cut episode videos go here, not into the fixture
    refs = find_episodes(FIXTURES / "lerobot_v30_real")
    rng = np.random.default_rng(0)
    for episode, (ref, length) in enumerate(zip(refs, (15, 11, 13))):
        loaded = load_episode(ref)
        drawn = np.zeros((length + 1, 64, 64, 3), int)  # the generator's frame(), one frame past the end
        drawn[..., 0] = 30 * episode
        for t in range(length + 1):
            drawn[t, 20:30, 3 * t : 3 * t + 10] = 255
        error = np.abs(loaded["frames"].astype(int)[:, None] - drawn[None]).mean(axis=(2, 3, 4))  # [T, T+1]
        assert loaded["frames"].shape[0] == length and list(error.argmin(axis=1)) == list(range(length))
        assert error[np.arange(length), np.arange(length)].max() < 2  # AV1 at crf 30
        steps = np.stack([np.r_[rng.uniform(-0.02, 0.02, 3), 0, 0, 0, 0] for _ in range(length)])
        states = np.r_[0.5, 0, 0.3, 0, 0, 0, 0] + np.concatenate([np.zeros((1, 7)), np.cumsum(steps, 0)[:-1]])
        np.testing.assert_allclose(loaded["states"], states, atol=1e-6)
        assert loaded["metadata"]["current_task"] == "push"
    assert len(DroidClips(refs, ClipConfig(frames_per_clip=4, fps=5.0))) == 5 + 3 + 4


def test_lerobot_state_mapping_spec_file_and_python_hook(lerobot_sets, tmp_path):
    nine = lerobot_sets["v21_9d"]
    with pytest.raises(ValueError, match="hold 9 entries .* give state_indices, state_keys or a state_fn"):
        find_episodes(nine)
    spec = tmp_path / "nine.json"
    spec.write_text(json.dumps({"format": SPEC_FORMAT, "root": str(nine), "state_indices": [0, 1, 2, 3, 4, 5, 6],
                                "command_keys": ["action"]}))
    refs = find_episodes(spec)
    assert refs == [spec / "episode_000000"]
    np.testing.assert_allclose(open_episode(refs[0]).states, episode_rows(0, 20, 9)["states7"])
    write_trajectory_list(tmp_path / "list.txt", refs)  # references work in trajectory lists too
    assert len(DroidClips(tmp_path / "list.txt", ClipConfig(frames_per_clip=2, fps=None))) == 19
    assert contract_for_dataset(spec).command_dim == 9  # "env" commands: the action column as recorded

    source = LeRobotSource(nine, LeRobotSpec(state_fn=lambda cols: cols["observation.state"][:, :7] * [1, 1, 1, 0, 0, 0, 1]))
    states = open_episode(source.episodes()[0]).states
    assert np.all(states[:, 3:6] == 0) and states[:, 0] == pytest.approx(episode_rows(0, 20, 9)["states7"][:, 0])
    with pytest.raises(ValueError, match="state_fn replaces"):
        LeRobotSpec(state_fn="m:f", state_indices=(0, 1, 2, 3, 4, 5, 6))


def test_lerobot_states_are_checked_once_against_the_callers_ranges(lerobot_sets):
    """A robot whose base sits 5 m away (outside the default 3 m) reads with wider ranges, as DROID
    folders do; the default ranges still refuse it."""
    far = LeRobotSource(lerobot_sets["v21_9d"], LeRobotSpec(state_fn=lambda cols: cols["observation.state"][:, :7] + [5, 0, 0, 0, 0, 0, 0]))
    ref = far.episodes()[0]
    with pytest.raises(EpisodeError, match="bad states: .* x = 5"):
        open_episode(ref)
    assert open_episode(ref, ranges=StateRanges(max_position=10.0)).states[0, 0] > 5


def test_cut_video_reencodes_a_segment_that_starts_between_key_frames(tmp_path):
    frames = episode_frames(0, 12)
    src = write_mp4(tmp_path / "all.mp4", frames, 10)  # x264: one key frame, at frame 0
    cut = cut_video(src, tmp_path / "cut.mp4", 0.5, 6, 10.0)
    decoded = read_mp4(cut)
    assert decoded.shape == (6, 64, 64, 3)
    assert np.abs(decoded.astype(int) - frames[5:11]).mean() < 3  # re-encoded: close, not exact


def test_lerobot_dataset_encodes_and_trains(lerobot_sets, tmp_path, tiny_wm):
    from jepa_ac.world_model.checkpoints import save_checkpoint
    from jepa_ac.data.latent_cache import LatentClips

    encoder = tmp_path / "encoder"
    save_checkpoint(encoder, {"encoder": tiny_wm.backend.state_arrays("encoder")}, tiny_wm.encoder_config, None)
    cache = tmp_path / "v3.zarr"
    encode_dataset.main(["--data", str(lerobot_sets["v3"]), "--checkpoint", str(encoder), "--out", str(cache),
                         "--no-progress", "--device", "cpu"])
    latents = LatentClips(cache, frames_per_clip=4, fps=5.0)
    assert len(latents) == 3 + 2 + 2 and latents[0]["latents"].shape[0] == 4  # as DroidClips
    common = ["--encoder-checkpoint", str(encoder), "--frames", "4", "--fps", "5", "--steps", "2", "--batch-size", "2",
              "--warmup-steps", "0", "--decay-steps", "0", "--val-fraction", "0", "--device", "cpu",
              "--predictor", json.dumps({"predictor_embed_dim": 48, "depth": 1, "num_heads": 2})]
    train_predictor.main(["--data", str(lerobot_sets["v21"]), "--out", str(tmp_path / "video"), *common])
    train_predictor.main(["--data", str(cache), "--out", str(tmp_path / "latents"), *common])
    for run in ("video", "latents"):
        losses = [json.loads(line).get("loss") for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        assert (tmp_path / run / "final").is_dir() and all(math.isfinite(v) for v in losses if v is not None)


# -- --init-predictor ------------------------------------------------------------------------------


def test_init_predictor_takes_the_checkpoints_architecture(tmp_path, tiny_wm, golden):
    from jepa_ac.world_model.checkpoints import read_checkpoint, save_checkpoint
    from jepa_ac.training.clips import InMemoryClips

    encoder = tmp_path / "encoder"
    save_checkpoint(encoder, {"encoder": tiny_wm.backend.state_arrays("encoder")}, tiny_wm.encoder_config, None)
    z = np.asarray(tiny_wm.encode(golden["video_uint8"]))  # [8, N, D]
    rng = np.random.default_rng(0)
    clips = tmp_path / "clips.npz"
    InMemoryClips(rng.uniform(0.0, 0.3, (2, 4, 7)), rng.uniform(-0.05, 0.05, (2, 3, 7)),
                  latents=np.stack([z[:4], z[4:]])).save(clips)

    def run(out, *extra):
        return train_predictor.main(["--data", str(clips), "--encoder-checkpoint", str(encoder), "--out",
                                     str(tmp_path / out), "--frames", "4", "--batch-size", "2", "--val-fraction", "0",
                                     "--warmup-steps", "0", "--decay-steps", "0", "--device", "cpu", *extra])

    arch = {"predictor_embed_dim": 48, "depth": 1, "num_heads": 3}  # not the default architecture
    run("source", "--steps", "1", "--predictor", json.dumps(arch))
    init = ("--init-predictor", str(tmp_path / "source/final"))
    run("tuned", "--steps", "1", "--lr", "0", "--start-lr", "0", "--final-lr", "0", *init)  # no --predictor
    tuned, source = read_checkpoint(tmp_path / "tuned/final"), read_checkpoint(tmp_path / "source/final")
    assert (tuned.predictor_config.predictor_embed_dim, tuned.predictor_config.depth,
            tuned.predictor_config.num_heads) == (48, 1, 3)
    assert all(np.array_equal(tuned.arrays["predictor"][k], v) for k, v in source.arrays["predictor"].items())
    run("same", "--steps", "1", *init, "--predictor", json.dumps(arch))  # given and equal: fine
    with pytest.raises(SystemExit, match="--predictor depth=2 disagrees with .*source/final, whose predictor has depth=1"):
        run("clash", "--steps", "1", *init, "--predictor", json.dumps({**arch, "depth": 2}))
    run("resumed", "--steps", "2", *init, "--stop-after", "1")  # a resumed run rebuilds the same architecture
    run("resumed", "--steps", "2", *init, "--resume", "true")
    assert read_checkpoint(tmp_path / "resumed/final").predictor_config.depth == 1
