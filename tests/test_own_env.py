"""Planning on an env that is not ours: the adapter's hooks and command map, the control contract a
checkpoint carries from its data, planning defaults derived from it, and plan / evaluate /
action_inference / energy_landscape on a third-party-style env (tests/own_env.py's OwnReach) with a
tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import own_env
from jepa_ac import collect, evaluate, plan, train_predictor
from jepa_ac.cli.args import DEFAULT_CHECKPOINT
from jepa_ac.data.contract import measure_contract
from jepa_ac.planning.checkpoint_control import CONTROL_FILE, CheckpointControl
from jepa_ac.robot.adapters import GymRobot
from jepa_ac.robot.env_adapter import AdapterSpec, CommandMap, EnvAdapter, restore_after

pytestmark = pytest.mark.filterwarnings("ignore:.*render fps")  # OwnReach gives its rate as dt, as Fetch

HOOKS = {"state": "own_env:state", "success": "own_env:success", "goal": "own_env:goal"}


def contract_of(matrix, control_hz=25.0, stride=5, lag=0):
    """The contract measured on episodes whose xyz moves `matrix` [3, 4] @ command each row."""
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(3):
        commands = rng.uniform(-1, 1, (40, 4))
        states = [np.r_[1.3, 0.75, 0.55, 0, 0, 0, 0]]
        for t in range(39):
            sent = commands[t - lag] if t >= lag else np.zeros(4)
            states.append(states[-1] + np.r_[matrix @ sent, 0, 0, 0, 0])
        episodes.append((np.stack(states), commands))
    return measure_contract(episodes, control_hz, "env", "action/command", stride=stride)


# -- the command map ---------------------------------------------------------------------------------


def test_command_map_undoes_gain_axes_and_rate():
    """A controller that reaches 60% of each step, with its x and y axes swapped and y flipped (an
    action frame that is not the state's), at 25 Hz for a model trained at 5 fps."""
    matrix = 0.05 * 0.6 * np.array([[0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]], float)  # [3, 4]: fingers move nothing
    contract = contract_of(matrix)
    command = CommandMap.from_contract(contract)
    assert command.repeat == 5 and command.rows == (0, 1, 2) and command.lag == 0
    np.testing.assert_allclose(command.gain[:3], 0.03, rtol=1e-6)
    move = np.r_[0.02, -0.01, 0.005, 0, 0, 0, 0]  # per env step
    sent = command.command(move)
    np.testing.assert_allclose(matrix @ sent, move[:3], atol=1e-9)  # the fitted move is the one asked for
    np.testing.assert_allclose(sent, [-0.01 / 0.03, -0.02 / 0.03, 0.005 / 0.03, 0.0], atol=1e-6)
    moving = np.zeros((5, 7))
    moving[:, 0] = np.linspace(0.3, 0.4, 5)
    with pytest.raises(ValueError, match="no command fit"):  # the data recorded no commands
        CommandMap.from_contract(measure_contract([(moving, None)], 25.0))


# -- the adapter and GymRobot ---------------------------------------------------------------------------


@pytest.fixture()
def adapter():
    contract = contract_of(own_env.GAIN * own_env.MAX_MOVE * np.eye(3, 4), lag=1)
    return EnvAdapter.load(AdapterSpec(env="own_env:OwnReach-v0", **HOOKS), contract, image_size=16)


def test_adapter_hooks_map_frames_states_moves_success_and_goal(adapter):
    env = adapter.make_env(step_budget=4)
    assert env.spec.max_episode_steps == 4 * 5 + 1  # planned actions x env steps each
    robot = GymRobot(env, adapter=adapter)
    frame, state = robot.reset(seed=1)
    u = env.unwrapped
    assert frame.shape == (16, 16, 3) and frame.dtype == np.uint8  # rendered 16 px (width / height)
    np.testing.assert_allclose(state, own_env.state(u._obs()), atol=1e-6)
    goal = robot.goal_image()  # own_env:goal renders the gripper at the goal; the env is put back
    assert goal.shape == (16, 16, 3) and not np.array_equal(goal, frame)
    np.testing.assert_array_equal(robot.get_observation()[0], frame)
    assert robot.subgoal_images()[-1].shape == goal.shape and robot.goal_grippers(False) == [None]

    planned = np.r_[0.05, -0.02, 0.0, 0, 0, 0, 0]
    robot.apply_action(planned)
    per_step = planned[:3] / 5 / (own_env.GAIN * own_env.MAX_MOVE)  # the gain undone, split over 5 env steps
    assert len(robot.last_commands) == 5
    for command in robot.last_commands:
        np.testing.assert_allclose(command, np.r_[per_step, 0.0], atol=1e-5)
    robot.apply_action(np.zeros(7))  # the env runs one step behind: the last share lands now
    np.testing.assert_allclose(robot.get_observation()[1][:3] - state[:3], planned[:3], atol=1e-5)

    assert not robot.success
    u.grip = u.goal.copy()
    robot.apply_action(np.zeros(7))
    assert robot.success  # own_env:success: within 5 cm of the goal
    with restore_after(env):  # an env with snapshot() / restore() is put back by its own methods
        u.grip = u.grip + 1.0
    np.testing.assert_allclose(u.grip, u.goal)


def test_adapter_defaults_and_errors(adapter):
    bare = EnvAdapter.load(AdapterSpec(env="own_env:OwnReach-v0", state="own_env:state"), adapter.contract, 16)
    env = bare.make_env()
    robot = GymRobot(env, adapter=bare)
    robot.reset(seed=0)
    assert robot.success is False  # info["is_success"]
    with pytest.raises(ValueError, match="has no goal image: pass --goal-hook"):
        robot.goal_image()
    with pytest.raises(ValueError, match="no command fit and no action hook"):
        EnvAdapter(AdapterSpec(env="own_env:OwnReach-v0"), 16)
    with pytest.raises(ValueError, match="no control contract .* --action-hook"):
        EnvAdapter.load(AdapterSpec(env="own_env:OwnReach-v0"), None, 16)
    with pytest.raises(ValueError, match="--goal-hook 'own_env:nope'"):
        EnvAdapter.load(AdapterSpec(env="own_env:OwnReach-v0", goal="own_env:nope"), None, 16)
    with pytest.raises(ValueError, match="AdapterSpec.state must be module:function"):
        AdapterSpec(env="x", state="state")


# -- the contract with the checkpoint, and planning from it -------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_wm):
    """OwnReach data (recorded with its hooks) and a tiny predictor trained on it for 2 steps."""
    from jepa_ac.world_model.checkpoints import save_checkpoint

    root = tmp_path_factory.mktemp("own_env")
    encoder = root / "encoder"
    save_checkpoint(encoder, {"encoder": tiny_wm.backend.state_arrays("encoder")}, tiny_wm.encoder_config, None)
    data = root / "data"
    collect.main(["--env", "own_env:OwnReach-v0", "--policy", "own_env:policy", "--episodes", "3", "--max-steps", "20",
                  "--image-size", "32", "--out", str(data), "--no-progress",
                  *(arg for name, hook in HOOKS.items() for arg in (f"--{name}", hook))])
    train_predictor.main(["--data", str(data), "--encoder-checkpoint", str(encoder), "--out", str(root / "run"),
                          "--frames", "4", "--fps", "5", "--steps", "2", "--batch-size", "2", "--warmup-steps", "0",
                          "--decay-steps", "0", "--val-fraction", "0", "--device", "cpu",
                          "--predictor", json.dumps({"predictor_embed_dim": 48, "depth": 1, "num_heads": 2})])
    return {"root": root, "data": data, "checkpoint": root / "run" / "final", "encoder": encoder}


def test_checkpoint_carries_the_datas_control_contract(trained):
    control = CheckpointControl.for_checkpoint(trained["checkpoint"])
    assert (trained["root"] / "run" / "checkpoint" / CONTROL_FILE).is_file()  # in every checkpoint folder
    assert control.env_id == "own_env:OwnReach-v0" and control.image_size == 32 and control.fps == 5.0
    assert control.env_options == {"policy": "own_env:policy", **HOOKS}  # collect stored success and goal too
    contract = control.contract
    assert (contract.control_hz, contract.step_hz, contract.command_lag) == (25.0, 5.0, 1)  # moves at the clip rate
    np.testing.assert_allclose(np.asarray(contract.command_to_delta)[:3, :3],
                               own_env.GAIN * own_env.MAX_MOVE * np.eye(3), atol=1e-9)
    assert CheckpointControl.from_dict(json.loads(json.dumps(control.to_dict()))) == control


def test_planning_is_derived_from_the_data_without_a_planning_json(trained, tmp_path):
    from jepa_ac.cli.args import env_from_args
    from jepa_ac.data.contract import planning_defaults

    args = evaluate.build_parser().parse_args(["--checkpoint", str(trained["checkpoint"]), "--samples", "16"])
    defaults, adapter = env_from_args(args, "own_env:OwnReach-v0", seed=0)
    control = CheckpointControl.for_checkpoint(trained["checkpoint"])
    derived = planning_defaults(control.contract, "own_env:OwnReach-v0", 32)["action"]
    assert defaults.action.max_translation == derived["max_translation"]
    assert defaults.action.workspace_min == pytest.approx(tuple(derived["workspace_min"]))
    assert dict(defaults.action.frozen) == {"droll": 0.0, "dpitch": 0.0, "dyaw": 0.0}  # the fingers moved
    assert (defaults.env.image_size, defaults.env.control_hz, defaults.cem.samples) == (32, 5.0, 16)  # flags on top
    assert adapter.spec.goal == "own_env:goal" and adapter.repeat == 5 and adapter.image_size == 32
    assert env_from_args(args, "OwnReach-v0", seed=0)[1].spec.env == "own_env:OwnReach-v0"  # the data's module

    planning = tmp_path / "planning.json"  # a planning.json naming the env wins over the data
    planning.write_text(json.dumps({"env_id": "own_env:OwnReach-v0", "action": {"max_translation": 0.01},
                                    "env": {"image_size": 24}}))
    named, _ = env_from_args(evaluate.build_parser().parse_args(
        ["--checkpoint", str(trained["checkpoint"]), "--planning", str(planning)]), "own_env:OwnReach-v0", seed=0)
    assert (named.action.max_translation, named.env.image_size) == (0.01, 24)
    with pytest.raises(SystemExit, match="no planning settings for gymnasium:Pusher-v5"):
        env_from_args(args, "gymnasium:Pusher-v5", seed=0)


def test_evaluate_and_plan_on_a_registered_env_that_is_not_ours(trained, tmp_path):
    small = ["--samples", "8", "--iterations", "1", "--topk", "2", "--max-steps", "2", "--threads", "1"]
    out = tmp_path / "eval"
    results = evaluate.main(["--env", "own_env:OwnReach-v0", "--checkpoint", str(trained["checkpoint"]),
                             "--episodes", "2", "--policy", "planner", "random", "--out", str(out), "--no-progress",
                             *small])
    rows = list(results["rows"].values())
    assert [(r["task"], r["policy"], r["episodes"]) for r in rows] == [("OwnReach-v0", "planner", 2),
                                                                         ("OwnReach-v0", "random", 2)]
    assert rows[0]["adapter"]["repeat"] == 5 and rows[0]["env"]["image_size"] == 32
    planner = json.loads((out / "episodes" / "OwnReach-v0_planner.json").read_text())["episodes"]
    random = json.loads((out / "episodes" / "OwnReach-v0_random.json").read_text())["episodes"]
    assert [e["seed"] for e in planner] == [e["seed"] for e in random]  # the same seeded scenes
    assert all(1 <= e["steps"] <= 2 for e in planner) and all(e["steps"] == 2 for e in random)
    with pytest.raises(SystemExit, match="no scripted expert"):
        evaluate.main(["--env", "own_env:OwnReach-v0", "--checkpoint", str(trained["checkpoint"]), "--episodes", "1",
                       "--policy", "expert", "--out", str(out), "--no-progress"])

    metrics = plan.main(["--checkpoint", str(trained["checkpoint"]), "--out", str(tmp_path / "plan"), "--no-video",
                         "--seed", "3", *small])  # no --env: the env of the checkpoint's data
    assert metrics["env_id"] == "OwnReach-v0" and metrics["adapter"]["goal"] == "own_env:goal"
    assert 1 <= metrics["steps"] <= 2 and (tmp_path / "plan" / "goal.png").is_file()
    shipped = plan.main(["--checkpoint", str(trained["checkpoint"]), "--out", str(tmp_path / "plan2"), "--no-video",
                         "--planning", str(DEFAULT_CHECKPOINT / "planning.json"), *small])  # its planner, our env
    assert shipped["env_id"] == "OwnReach-v0" and shipped["planning"]["mpc"]["return_to_best"] is True
    assert shipped["planning"]["action"]["max_translation"] == metrics["planning"]["action"]["max_translation"]


def test_action_inference_and_energy_landscape_through_the_adapter(trained, tmp_path):
    from jepa_ac import energy_landscape
    from jepa_ac.bench import action_inference

    action_inference.main(["--env", "own_env:OwnReach-v0", "--checkpoint", str(trained["checkpoint"]), "--states", "2",
                           "--min-steps", "1", "--max-steps", "2", "--grid-extent", "0.02", "--grid-step", "0.01",
                           "--max-offset", "0.02", "--threads", "1", "--out", str(tmp_path / "ai")])
    result = json.loads((tmp_path / "ai" / "action_inference.json").read_text())
    summary = result["rows"][0]["summary"]["all"]
    assert summary["cases"] == 2 and "true_mean_cm" in summary and result["setup"]["image_size"] == 32
    landscape = energy_landscape.main(["--env", "own_env:OwnReach-v0", "--checkpoint", str(trained["checkpoint"]),
                                       "--seed", "2", "--grid", "3", "--extent", "0.02", "--threads", "1",
                                       "--out", str(tmp_path / "landscape")])
    assert np.asarray(landscape["energy"]).shape == (3, 3) and landscape["env"] == "own_env:OwnReach-v0"
    assert any(abs(v) > 0 for v in landscape["true_action"][:3])  # the random move moved the gripper


def test_train_predictor_reads_a_lerobot_spec_file(tmp_path, tiny_wm):
    from jepa_ac.world_model.checkpoints import save_checkpoint
    from jepa_ac.data.lerobot import SPEC_FORMAT
    from lerobot_layout import write_v21

    pytest.importorskip("pyarrow")
    encoder = tmp_path / "encoder"
    save_checkpoint(encoder, {"encoder": tiny_wm.backend.state_arrays("encoder")}, tiny_wm.encoder_config, None)
    write_v21(tmp_path / "lerobot", [12, 9])
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"format": SPEC_FORMAT, "root": "lerobot"}))
    train_predictor.main(["--data", str(spec), "--encoder-checkpoint", str(encoder), "--out", str(tmp_path / "run"),
                          "--frames", "4", "--fps", "5", "--steps", "1", "--batch-size", "2", "--warmup-steps", "0",
                          "--decay-steps", "0", "--val-fraction", "0", "--device", "cpu",
                          "--predictor", json.dumps({"predictor_embed_dim": 48, "depth": 1, "num_heads": 2})])
    control = CheckpointControl.for_checkpoint(tmp_path / "run" / "final")
    assert control.data == str(spec) and (control.contract.control_hz, control.contract.step_hz) == (10.0, 5.0)
